/**
 * Ensembles across models (`predict -m FOLDER -m FOLDER2`), as `nnUNetv2_ensemble` builds them:
 * each model predicts the case on its own (its plan's preprocessing, patch, network, mirroring and
 * fold ensemble) and exports its probabilities to the input's geometry (softmax per class, or a
 * region model's sigmoid per head; background 1 / heads 0 outside the crop box); the ensemble is
 * their mean, summed in float32 in the order given and divided by the count (average_probabilities:
 * avg = p1; avg += p2 ...; avg /= n), and the mask is LabelManager's conversion of the mean: the
 * argmax over classes (the first of tied classes, as numpy), or the regions written in
 * regions_class_order where the mean is above 0.5.
 *
 * The models must share the label space (dataset.json labels, and the regions and
 * regions_class_order of region models) and the input channels: anything else is refused naming
 * both models (nnU-Net's ensemble takes the first folder's labels for all and checks nothing).
 */
import { InputError, type Logger, SILENT_LOGGER } from '../core/index.js';
import { resolveCheckpoints, type CheckpointChoice, type ModelFold } from '../checkpoint/index.js';
import type { EngineFactory } from './engine.js';
import { Predictor, type CasePrediction, type CaseStageSeconds, type PredictCaseOptions, type PredictorOptions } from './predictor.js';
import { regionsToSegmentation } from './regions.js';
import type { Volume } from '../core/index.js';

/** The models of an ensemble, each a Predictor of its own plan. */
export class PredictorEnsemble {
  readonly description: string;

  constructor(readonly members: readonly Predictor[], readonly modelPaths: readonly string[]) {
    if (members.length < 2) throw new RangeError('an ensemble needs at least two models');
    for (const [index, member] of members.entries()) if (index > 0) checkSameLabels(member, modelPaths[index]!, members[0]!, modelPaths[0]!);
    this.description = `ensemble of ${members.length} models: ${members.map((m) => `${m.description} (mirroring axes [${m.mirrorAxes.join(', ')}])`).join(' + ')}`;
  }

  /** The first model's plan: its labels and channels are every model's. */
  get plan(): Predictor['plan'] {
    return this.members[0]!.plan;
  }

  get numClasses(): number {
    return this.members[0]!.numClasses;
  }

  get regions(): Predictor['regions'] {
    return this.members[0]!.regions;
  }

  get maskLabels(): number[] {
    return this.members[0]!.maskLabels;
  }

  get channelNames(): string[] {
    return this.members[0]!.channelNames;
  }

  get mirrorAxes(): Predictor['mirrorAxes'] {
    return this.members[0]!.mirrorAxes;
  }

  get mirrorRule(): Predictor['mirrorRule'] {
    return this.members[0]!.mirrorRule;
  }

  get precision(): Predictor['precision'] {
    return this.members[0]!.precision;
  }

  get device(): Predictor['device'] {
    return this.members[0]!.device;
  }

  /** Predict the case with every model and convert the mean of their probabilities. */
  async predictCaseAsync(images: readonly Volume[], options: PredictCaseOptions = {}): Promise<CasePrediction> {
    let sum: Float32Array[] | null = null;
    let first: CasePrediction | null = null;
    let seconds: CaseStageSeconds | null = null;
    const peaks = { preprocess: 0, bodyMask: 0, slidingWindow: 0, export: 0 };
    const windows = { total: 0, run: 0 };
    for (const member of this.members) {
      const result = await member.predictCaseAsync(images, { ...options, probabilities: true });
      const probabilities = result.probabilities!.map((volume) => volume.data);
      if (sum === null) {
        sum = probabilities;
        first = result;
      } else {
        if (probabilities[0]!.length !== sum[0]!.length) throw new RangeError('the models exported probabilities of different sizes');
        for (const [k, values] of probabilities.entries()) {
          const total = sum[k]!;
          for (let i = 0; i < total.length; i++) total[i] = total[i]! + values[i]!;
        }
      }
      seconds = seconds === null ? structuredClone(result.seconds) : addSeconds(seconds, result.seconds);
      for (const key of Object.keys(peaks) as (keyof typeof peaks)[]) peaks[key] = Math.max(peaks[key], result.peakRssMiB[key]);
      windows.total += result.windows.total;
      windows.run += result.windows.run;
    }
    const mean = sum!;
    const n = this.members.length;
    for (const values of mean) for (let i = 0; i < values.length; i++) values[i] = values[i]! / n;
    const regions = this.regions;
    const data = regions !== null ? regionsToSegmentation(mean, regions.classOrder) : argmax(mean);
    const template = first!.segmentation;
    return {
      segmentation: { ...template, data },
      probabilities: options.probabilities === true ? first!.probabilities!.map((volume, k) => ({ ...volume, data: mean[k]! })) : null,
      properties: first!.properties,
      seconds: seconds!,
      peakRssMiB: peaks,
      windows,
    };
  }

  dispose(): void {
    for (const member of this.members) member.dispose();
  }
}

/** The class of the highest value per voxel; ties keep the lower class (numpy's argmax). */
export function argmax(probabilities: readonly Float32Array[]): Uint8Array {
  const voxels = probabilities[0]?.length ?? 0;
  const best = Float32Array.from(probabilities[0] ?? []);
  const out = new Uint8Array(voxels);
  for (let k = 1; k < probabilities.length; k++) {
    const values = probabilities[k]!;
    for (let i = 0; i < voxels; i++) {
      if (values[i]! > best[i]!) {
        best[i] = values[i]!;
        out[i] = k;
      }
    }
  }
  return out;
}

function addSeconds(total: CaseStageSeconds, more: CaseStageSeconds): CaseStageSeconds {
  const out = { ...total, preprocessSteps: { ...total.preprocessSteps } };
  for (const key of Object.keys(more) as (keyof CaseStageSeconds)[]) {
    if (key !== 'preprocessSteps') out[key] = total[key] + more[key];
  }
  for (const key of Object.keys(more.preprocessSteps) as (keyof CaseStageSeconds['preprocessSteps'])[]) out.preprocessSteps[key] = total.preprocessSteps[key] + more.preprocessSteps[key];
  return out;
}

/** A model's label space, as compared across an ensemble: labels by name, and a region model's heads in order. */
function labelSpace(predictor: Predictor): string {
  const labels = Object.entries(predictor.plan.datasets[0]?.labels ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([name, value]) => `${name}=${value}`);
  const regions = predictor.regions;
  const heads = regions === null ? '' : `; sigmoid heads ${regions.names.map((name, i) => `${name}=[${regions.regions[i]!.join(',')}]->${regions.classOrder[i]}`).join(', ')}`;
  return `{${labels.join(', ')}${heads}}`;
}

function checkSameLabels(member: Predictor, memberPath: string, first: Predictor, firstPath: string): void {
  const ours = labelSpace(member);
  const theirs = labelSpace(first);
  if (ours !== theirs || member.numClasses !== first.numClasses) {
    throw new InputError(`its labels ${ours} differ from those of the first -m ${firstPath} ${theirs}: an ensemble averages the probabilities of the same classes`, { file: memberPath, code: 'ensemble-mismatch' });
  }
  if (member.channelNames.join('\u0000') !== first.channelNames.join('\u0000')) {
    throw new InputError(`it reads the channels ${member.channelNames.join(', ')}, the first -m ${firstPath} reads ${first.channelNames.join(', ')}: an ensemble's models read the same images`, { file: memberPath, code: 'ensemble-mismatch' });
  }
}

export interface LoadModelsOptions extends PredictorOptions {
  /** One model path, or several for an ensemble across models. */
  model: string | readonly string[];
  folds?: ModelFold[];
  checkpoint?: CheckpointChoice;
  engine?: EngineFactory;
}

/** The predictor `-m` names: one model (its folds ensembled), or an ensemble of several models. */
export async function loadModels(options: LoadModelsOptions, logger: Logger = SILENT_LOGGER): Promise<{ predictor: Predictor | PredictorEnsemble; checkpoints: string[] }> {
  const paths = typeof options.model === 'string' ? [options.model] : [...options.model];
  if (paths.length === 0) throw new InputError('no model given (-m)', { code: 'missing-model' });
  const choice = { ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}), ...(options.configuration !== undefined ? { configuration: options.configuration } : {}) };
  // Every path resolves before any network is built.
  const files = paths.map((model) => resolveCheckpoints(model, options.folds, choice));
  const members: Predictor[] = [];
  try {
    for (const [index, checkpoints] of files.entries()) {
      const member = options.engine === undefined
        ? Predictor.fromCheckpoints(checkpoints, { ...options, logger })
        : await Predictor.fromCheckpointsWith(checkpoints, options.engine, { ...options, logger });
      members.push(member);
      if (index > 0) checkSameLabels(member, paths[index]!, members[0]!, paths[0]!);
    }
    const checkpoints = files.flat();
    return { predictor: members.length === 1 ? members[0]! : new PredictorEnsemble(members, paths), checkpoints };
  } catch (error) {
    for (const member of members) member.dispose();
    throw error;
  }
}
