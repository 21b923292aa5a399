/**
 * One shared plan for pre-training and transfer: the weights of a pre-trained network only mean
 * something for inputs preprocessed the same way (spacing, axis order, CT normalisation) and for
 * the same topology and patch size. A target dataset is trained with the pre-trained checkpoint's
 * plan, extended by the target's label space; a plan that differs in any of those settings is
 * refused with each difference named. The batch size and the resampling orders may differ.
 */
import type { Plan, PlanDataset, DatasetInfo } from '../data/index.js';

const show = (value: unknown): string => JSON.stringify(value).replaceAll(',', ', ');

/** Every setting of `candidate` that differs from `reference` in what the weights depend on. */
export function sharedPlanDifferences(reference: Plan, candidate: Plan): string[] {
  const a = reference.configuration;
  const b = candidate.configuration;
  const differences: string[] = [];
  const compare = (what: string, x: unknown, y: unknown): void => {
    if (show(x) !== show(y)) differences.push(`${what}: pre-trained ${show(x)}, given ${show(y)}`);
  };
  compare('patch size', a.patchSize, b.patchSize);
  compare('target spacing (mm)', a.targetSpacing, b.targetSpacing);
  compare('axis transpose', a.transpose.forward, b.transpose.forward);
  compare('channels', a.normalization.length, b.normalization.length);
  a.normalization.forEach((channel, i) => {
    const other = b.normalization[i];
    if (other === undefined) return;
    compare(`normalisation of channel ${i}`, { scheme: channel.scheme, useMaskForNorm: channel.useMaskForNorm, ct: channel.ct ?? null }, { scheme: other.scheme, useMaskForNorm: other.useMaskForNorm, ct: other.ct ?? null });
  });
  compare('network.featuresPerStage', a.network.featuresPerStage, b.network.featuresPerStage);
  compare('network.kernelSizes', a.network.kernelSizes, b.network.kernelSizes);
  compare('network.strides', a.network.strides, b.network.strides);
  compare('network.nConvPerStage', a.network.nConvPerStage, b.network.nConvPerStage);
  compare('network.nConvPerStageDecoder', a.network.nConvPerStageDecoder, b.network.nConvPerStageDecoder);
  compare('network.norm', a.network.norm, b.network.norm);
  compare('network.nonlin', a.network.nonlin, b.network.nonlin);
  compare('deep supervision', a.deepSupervision, b.deepSupervision);
  return differences;
}

/** The plan entry of a raw dataset. */
export function planDatasetOf(info: DatasetInfo): PlanDataset {
  return { name: info.name, labels: { ...info.labels }, channelNames: { ...info.channelNames }, numTraining: info.numTraining, fileEnding: info.fileEnding };
}

/**
 * `plan` extended by the target dataset (its label space decides the new head); the source
 * datasets stay listed, so the plan records where its fingerprint and normalisation came from.
 */
export function planForTarget(plan: Plan, target: DatasetInfo): Plan {
  const datasets = plan.datasets.filter((d) => d.name !== target.name);
  return { ...structuredClone(plan), datasets: [...structuredClone(datasets), planDatasetOf(target)] };
}
