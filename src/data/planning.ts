/**
 * Experiment planning (3d_fullres), as nnU-Net's ExperimentPlanner does it (NNUNET.md section 1):
 * target spacing (median, with the anisotropy rule), transpose (lowest resolution axis first),
 * median shape at the target spacing, then per preset the patch size, topology and batch size,
 * and the normalisation per channel, and whether the loss uses batch Dice (nnU-Net's rule,
 * planning_batch_dice.ts). One plan may cover several datasets (pooled fingerprint), so that
 * pre-trained weights fit the datasets they are transferred to. The class count excludes each
 * dataset's ignore label (no output channel for it).
 */
import { InputError, type Shape3 } from '../core/index.js';
import { segmentationClassCount } from '../io/index.js';
import { DEFAULT_ARCHITECTURE } from '../models/index.js';
import { searchLowres } from './planning_batch_dice.js';
import type { DatasetFingerprint } from './fingerprint.js';
import { normalizationForChannel } from './normalize.js';
import { getPreset, vramReference, type PlanPreset, type PresetName } from './planning_presets.js';
import {
  PLAN_VERSION,
  type ChannelNormalizationPlan,
  type NetworkPlan,
  type Plan,
  type PlanConfiguration,
} from './planning_schema.js';
import {
  convFeatureMapSize,
  featuresPerStage,
  poolAndConvProps,
  type Topology,
  type TopologyLimits,
  type Triple,
} from './planning_topology.js';
import { computeNewShape, DATA_RESAMPLING, roundHalfEven, SEGMENTATION_RESAMPLING } from './resample.js';
import { median, percentile } from './fingerprint_stats.js';

/** nnU-Net ANISO_THRESHOLD. */
export const ANISOTROPY_THRESHOLD = 3;

/** nnU-Net `determine_fullres_target_spacing` ([z, y, x] spacings and cropped shapes per case). */
export function determineTargetSpacing(spacings: readonly Shape3[], shapesAfterCrop: readonly Shape3[]): Triple {
  const target = [0, 1, 2].map((axis) => median(spacings.map((s) => s[axis]!))) as Triple;
  const targetSize = [0, 1, 2].map((axis) => median(shapesAfterCrop.map((s) => s[axis]!)));
  let worst = 0;
  for (const axis of [1, 2]) if (target[axis]! > target[worst]!) worst = axis;
  const others = [0, 1, 2].filter((axis) => axis !== worst);
  const otherSpacingMax = Math.max(...others.map((axis) => target[axis]!));
  const otherSizeMin = Math.min(...others.map((axis) => targetSize[axis]!));
  const anisotropicSpacing = target[worst]! > ANISOTROPY_THRESHOLD * otherSpacingMax;
  const anisotropicVoxels = targetSize[worst]! * ANISOTROPY_THRESHOLD < otherSizeMin;
  if (anisotropicSpacing && anisotropicVoxels) {
    let spacing = percentile(
      spacings.map((s) => s[worst]!),
      10,
    );
    if (spacing < otherSpacingMax) spacing = Math.max(otherSpacingMax, spacing) + 1e-5;
    target[worst] = spacing;
  }
  return target;
}

/** nnU-Net `determine_transpose`: the lowest-resolution axis first, the others in order. */
export function determineTranspose(targetSpacing: Triple): { forward: Triple; backward: Triple } {
  let worst = 0;
  for (const axis of [1, 2]) if (targetSpacing[axis]! > targetSpacing[worst]!) worst = axis;
  const forward = [worst, ...[0, 1, 2].filter((axis) => axis !== worst)] as Triple;
  const backward = [0, 1, 2].map((axis) => forward.indexOf(axis)) as Triple;
  return { forward, backward };
}

export function transposeTriple<T>(values: readonly T[], order: readonly number[]): [T, T, T] {
  return [values[order[0]!]!, values[order[1]!]!, values[order[2]!]!];
}

export interface ConfigurationInput {
  /** Target spacing in network order. */
  targetSpacing: Triple;
  /** Median shape at the target spacing, network order (may be fractional, as nnU-Net's median). */
  medianShape: readonly number[];
  numInputChannels: number;
  /** Output classes including background (the largest over the datasets for a shared plan). */
  numClasses: number;
  /** Training cases (all datasets together). */
  numTraining: number;
}

export interface ConfigurationResult {
  patchSize: Triple;
  batchSize: number;
  topology: Topology;
  featuresPerStage: number[];
  vramEstimate: number;
}

function axisToShrink(patch: readonly number[], medianShape: readonly number[]): number {
  // np.argsort(ratios)[-1]: the largest ratio, the last axis among ties.
  let best = 0;
  for (let axis = 1; axis < 3; axis++) if (patch[axis]! / medianShape[axis]! >= patch[best]! / medianShape[best]!) best = axis;
  return best;
}

/** Patch size, topology and batch size for one preset (nnU-Net `get_plans_for_configuration`). */
export function planConfiguration(input: ConfigurationInput, preset: PlanPreset): ConfigurationResult {
  const { targetSpacing, medianShape } = input;
  const rule = preset.patch;
  const limits: TopologyLimits = {
    minFeatureMapSize: preset.minFeatureMapSize,
    maxPoolsPerAxis: [999999, 999999, 999999],
    maxStages: preset.maxStages,
  };
  let initial: number[];
  if (rule.kind === 'fixed') {
    initial = [...rule.patchSize];
    // The pooling must fit the fixed patch: no more halvings than the size has factors of 2.
    limits.maxPoolsPerAxis = rule.patchSize.map((size) => {
      let pools = 0;
      while (size % 2 ** (pools + 1) === 0) pools++;
      return pools;
    }) as Triple;
  } else {
    const volume = rule.kind === 'vram' ? rule.initialVoxels : rule.budgetVoxels;
    const inverse = targetSpacing.map((s) => 1 / s);
    const scale = Math.cbrt(volume / (inverse[0]! * inverse[1]! * inverse[2]!));
    initial = inverse.map((t, axis) => Math.min(roundHalfEven(t * scale), medianShape[axis]!));
  }

  const network = (topology: Topology) => ({
    featuresPerStage: featuresPerStage(topology.strides.length, preset.baseFeatures, preset.maxFeatures),
    strides: topology.strides,
    numClasses: input.numClasses,
  });
  const vram = (topology: Topology): number => convFeatureMapSize(topology.patchSize, network(topology));
  let topology = poolAndConvProps(targetSpacing, initial, limits);
  let patch = [...topology.patchSize];

  if (rule.kind !== 'fixed') {
    const reference = rule.kind === 'vram' ? vramReference(rule) : rule.budgetVoxels;
    const estimate = (t: Topology): number => (rule.kind === 'vram' ? vram(t) : t.patchSize[0] * t.patchSize[1] * t.patchSize[2]);
    let current = estimate(topology);
    for (let guard = 0; current > reference; guard++) {
      const axis = axisToShrink(patch, medianShape);
      const trial = [...patch];
      trial[axis]! -= topology.divisibleBy[axis]!;
      const step = poolAndConvProps(targetSpacing, trial, limits).divisibleBy[axis]!;
      if (patch[axis]! - step < 1 || guard > 10_000) {
        throw new InputError(`preset '${preset.name}': cannot shrink the patch (${patch.join('x')}) under its budget`, {
          code: 'bad-plan',
        });
      }
      patch[axis]! -= step;
      topology = poolAndConvProps(targetSpacing, patch, limits);
      patch = [...topology.patchSize];
      current = estimate(topology);
    }
  }

  const vramEstimate = vram(topology);
  let batchSize: number;
  if (preset.batch.kind === 'fixed') {
    batchSize = preset.batch.batchSize;
  } else if (rule.kind === 'vram') {
    const fromMemory = roundHalfEven((vramReference(rule) / vramEstimate) * rule.referenceBatch);
    const patchVoxels = patch[0]! * patch[1]! * patch[2]!;
    const medianVoxels = medianShape[0]! * medianShape[1]! * medianShape[2]!;
    const cap = roundHalfEven((medianVoxels * input.numTraining * preset.batch.maxDatasetFraction) / patchVoxels);
    batchSize = Math.max(Math.min(fromMemory, cap), preset.batch.minBatch);
  } else {
    throw new InputError(`preset '${preset.name}': the nnU-Net batch rule needs the VRAM patch rule`, { code: 'bad-plan' });
  }
  return {
    patchSize: topology.patchSize,
    batchSize,
    topology,
    featuresPerStage: network(topology).featuresPerStage,
    vramEstimate,
  };
}

function networkPlan(result: ConfigurationResult): NetworkPlan {
  return {
    architecture: DEFAULT_ARCHITECTURE,
    nStages: result.topology.strides.length,
    featuresPerStage: result.featuresPerStage,
    kernelSizes: result.topology.kernelSizes,
    strides: result.topology.strides,
    nConvPerStage: 2,
    nConvPerStageDecoder: 2,
    convBias: true,
    norm: { kind: 'instance', eps: 1e-5, affine: true },
    nonlin: { kind: 'leaky_relu', negativeSlope: 0.01 },
  };
}

function channelNormalization(fingerprint: DatasetFingerprint): ChannelNormalizationPlan[] {
  const [first, ...rest] = fingerprint.datasets;
  if (first === undefined) throw new InputError('no dataset to plan', { code: 'bad-plan' });
  const channels = Object.keys(first.channelNames).sort((a, b) => Number(a) - Number(b));
  for (const other of rest) {
    const names = Object.keys(other.channelNames);
    const sameSchemes = channels.every(
      (c) =>
        other.channelNames[c] !== undefined &&
        normalizationForChannel(other.channelNames[c]!) === normalizationForChannel(first.channelNames[c]!),
    );
    if (names.length !== channels.length || !sameSchemes) {
      throw new InputError(
        `dataset '${other.name}' has channels ${JSON.stringify(other.channelNames)}, '${first.name}' has ` +
          `${JSON.stringify(first.channelNames)}: one shared plan needs the same channels`,
        { file: other.path, code: 'channel-mismatch' },
      );
    }
  }
  return channels.map((key, index) => {
    const scheme = normalizationForChannel(first.channelNames[key]!);
    const properties = fingerprint.summary.foregroundIntensityPropertiesPerChannel[index]!;
    const plan: ChannelNormalizationPlan = {
      channel: first.channelNames[key]!,
      scheme,
      // nnU-Net: only z-score uses the nonzero mask, and only when cropping removed a lot.
      useMaskForNorm: scheme === 'zscore' && fingerprint.summary.medianRelativeSizeAfterCropping < 0.75,
    };
    if (scheme === 'ct') {
      plan.ct = {
        mean: properties.mean,
        std: properties.std,
        percentile_00_5: properties.percentile_00_5,
        percentile_99_5: properties.percentile_99_5,
      };
    }
    return plan;
  });
}

/** Plan one configuration from a (possibly pooled) fingerprint with a preset. */
export function planExperiment(fingerprint: DatasetFingerprint, preset: PresetName | PlanPreset): Plan {
  const spec = typeof preset === 'string' ? getPreset(preset) : preset;
  const { summary } = fingerprint;
  const spacings = summary.cases.map((c) => c.spacing);
  const shapes = summary.cases.map((c) => c.shapeAfterCrop);
  if (spacings.length === 0) throw new InputError('the fingerprint holds no cases', { code: 'bad-plan' });
  const fullresSpacing = determineTargetSpacing(spacings, shapes);
  const transpose = determineTranspose(fullresSpacing);
  const newShapes = summary.cases.map((c) => computeNewShape(c.shapeAfterCrop, c.spacing, fullresSpacing));
  const medianShape = [0, 1, 2].map((axis) => median(newShapes.map((s) => s[axis]!)));
  const targetSpacing = transposeTriple(fullresSpacing, transpose.forward);
  const medianShapeTransposed = transposeTriple(medianShape, transpose.forward);
  const numClasses = Math.max(...fingerprint.datasets.map((d) => segmentationClassCount(d.labels)));
  const numInputChannels = Object.keys(fingerprint.datasets[0]!.channelNames).length;
  const numTraining = fingerprint.datasets.reduce((sum, d) => sum + d.numTraining, 0);
  const result = planConfiguration({ targetSpacing, medianShape: medianShapeTransposed, numInputChannels, numClasses, numTraining }, spec);
  const lowres = searchLowres(
    targetSpacing,
    medianShapeTransposed,
    result.patchSize,
    (spacing, shape) => planConfiguration({ targetSpacing: spacing, medianShape: shape, numInputChannels, numClasses, numTraining }, spec).patchSize,
  );
  const configuration: PlanConfiguration = {
    patchSize: result.patchSize,
    batchSize: result.batchSize,
    targetSpacing,
    medianShape: medianShapeTransposed,
    transpose,
    normalization: channelNormalization(fingerprint),
    resampling: { data: { ...DATA_RESAMPLING }, segmentation: { ...SEGMENTATION_RESAMPLING } },
    network: networkPlan(result),
    deepSupervision: true,
    // nnU-Net: 3d_fullres uses batch Dice exactly when the planner also makes a 3d_lowres.
    batchDice: lowres.lowres,
    vramEstimate: result.vramEstimate,
  };
  return {
    version: PLAN_VERSION,
    preset: spec.name,
    datasets: fingerprint.datasets.map((d) => ({
      name: d.name,
      labels: d.labels,
      channelNames: d.channelNames,
      numTraining: d.numTraining,
      fileEnding: d.fileEnding,
    })),
    fingerprint: summary,
    configuration,
  };
}
