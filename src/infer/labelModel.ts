/**
 * A second model predicted on the cases `predict` already reads, for some of its labels by name
 * (`predict --lobes-model`: a TotalSegmentator-style lobe model whose masks feed the severity
 * score). It predicts through the same Predictor as `-m` (the model's own plan: its spacing,
 * normalisation, sliding window and mirroring), so its label map comes back on the case's grid by
 * the one export path (export.ts: logits resampled to the input geometry, then argmax); each named
 * label becomes a binary mask of that grid. Labels it has beyond the names asked for are ignored.
 *
 * Refusals, in the order predict meets them (STYLE rule 18): the label names, read from dataset.json
 * or our sidecar's plan without the weights (`requireModelLabels`, before any model loads); then
 * the weights and, per case, its channel count and its window and memory need under this model's
 * plan (`NamedLabelModel.open` and `checkCases`, before any case is predicted).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, InputError, type Logger, SILENT_LOGGER } from '../core/index.js';
import { validatePlan, type Plan } from '../data/index.js';
import { nnunetModelFolderOf, readNifti, readNiftiHeader, readNnunetModelFolder } from '../io/index.js';
import { checkpointBase, checkpointPaths, readSidecar, resolveCheckpoints } from '../checkpoint/index.js';
import type { EngineFactory } from './engine.js';
import type { PredictionCase } from './inputs.js';
import { caseExtent, checkCaseExtent } from './predictChecks.js';
import { Predictor, type PredictorOptions } from './predictor.js';
import { SLIDING_WINDOW_DEFAULTS } from './slidingWindowPredict.js';

/** A model's label names and values, and the file that names them (dataset.json, or our sidecar / plan.json). */
export interface ModelLabels {
  labels: Record<string, number>;
  file: string;
}

function ourPlan(modelPath: string): { plan: unknown; file: string } {
  const first = resolveCheckpoints(modelPath)[0]!;
  const sidecarFile = checkpointPaths(checkpointBase(first)).sidecar;
  const sidecar = readSidecar(sidecarFile);
  if (sidecar.plan !== null && sidecar.plan !== undefined) return { plan: sidecar.plan, file: sidecarFile };
  const planFile = path.join(path.dirname(sidecarFile), 'plan.json');
  if (!fs.existsSync(planFile)) throw new CheckpointError('the checkpoint records no plan and there is no plan.json beside it', { file: sidecarFile });
  try {
    return { plan: JSON.parse(fs.readFileSync(planFile, 'utf8')), file: planFile };
  } catch (cause) {
    throw new CheckpointError(`plan is not valid JSON (${(cause as Error).message})`, { file: planFile, cause });
  }
}

/**
 * The labels a model path names, without reading its weights: an nnU-Net model folder's
 * dataset.json (region-based labels, lists of values, are left out: they are no single value of a
 * label map), or the plan of our checkpoint (its sidecar, else plan.json beside it).
 */
export function modelLabels(modelPath: string): ModelLabels {
  const nnunet = nnunetModelFolderOf(modelPath);
  if (nnunet !== null) {
    const folder = readNnunetModelFolder(nnunet.folder);
    const labels: Record<string, number> = {};
    for (const [name, value] of Object.entries(folder.datasetJson.labels as Record<string, unknown>)) if (typeof value === 'number') labels[name] = value;
    return { labels, file: path.join(nnunet.folder, 'dataset.json') };
  }
  const { plan, file } = ourPlan(modelPath);
  const issues = validatePlan(plan, file);
  if (issues.length > 0) throw new CheckpointError(`the checkpoint's plan is invalid: ${issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join('; ')}`, { file });
  return { labels: { ...((plan as Plan).datasets[0]?.labels ?? {}) }, file };
}

/**
 * The values of `names` among the model's labels; InputError (missing-model-labels, exit 2) naming
 * the labels file and every name it lacks.
 */
export function requireModelLabels<Name extends string>(modelPath: string, names: readonly Name[], option: string): { values: Record<Name, number>; file: string } {
  const { labels, file } = modelLabels(modelPath);
  const missing = names.filter((name) => !Object.hasOwn(labels, name));
  if (missing.length > 0) {
    throw new InputError(`${option}: the model's labels lack ${missing.join(', ')} (it has ${Object.keys(labels).join(', ') || 'none'})`, { file, code: 'missing-model-labels' });
  }
  const values = {} as Record<Name, number>;
  for (const name of names) values[name] = labels[name]!;
  return { values, file };
}

export interface NamedLabelModelOptions extends PredictorOptions {
  /** Builds each checkpoint's engine (e.g. ONNX); default the libtorch network. */
  engine?: EngineFactory;
  /** Most bytes one image may decode to (io's readNifti limit). */
  maxImageBytes?: number;
}

/** A model opened for some of its labels by name; `predictMasks` gives one binary mask per name on the case's grid. */
export class NamedLabelModel<Name extends string> {
  private constructor(
    readonly modelPath: string,
    readonly option: string,
    readonly values: Readonly<Record<Name, number>>,
    readonly predictor: Predictor,
    private readonly maxImageBytes: number | undefined,
    private readonly logger: Logger,
  ) {}

  /** Check the names (as requireModelLabels), then load every fold's weights as `predict -m` would. */
  static async open<Name extends string>(modelPath: string, names: readonly Name[], option: string, options: NamedLabelModelOptions = {}): Promise<NamedLabelModel<Name>> {
    const { values } = requireModelLabels(modelPath, names, option);
    const checkpoints = resolveCheckpoints(modelPath);
    const { engine, maxImageBytes, ...predictorOptions } = options;
    const predictor = engine === undefined ? Predictor.fromCheckpoints(checkpoints, predictorOptions) : await Predictor.fromCheckpointsWith(checkpoints, engine, predictorOptions);
    return new NamedLabelModel(modelPath, option, values, predictor, maxImageBytes, options.logger ?? SILENT_LOGGER);
  }

  /** The channels of a case this model reads: all of them when it takes as many, else the first (the CT) for a one-channel model. */
  private channelsOf(item: PredictionCase): string[] {
    const wanted = this.predictor.channelNames.length;
    if (wanted === item.channelFiles.length) return item.channelFiles;
    if (wanted === 1) return item.channelFiles.slice(0, 1);
    throw new InputError(`${this.option}: case '${item.caseId}' has ${item.channelFiles.length} channel image(s), this model's plan expects ${wanted} (${this.predictor.channelNames.join(', ')})`, { file: item.channelFiles[0], code: 'channel-mismatch' });
  }

  /** Per case, from the headers: the channels this model reads, its windows and memory need under this model's plan. */
  async checkCases(cases: readonly PredictionCase[], limits: { stepFraction?: number; maxMemoryBytes: number }): Promise<void> {
    const stepFraction = limits.stepFraction ?? SLIDING_WINDOW_DEFAULTS.stepFraction;
    for (const item of cases) {
      const files = this.channelsOf(item);
      const headers = await Promise.all(files.map((file) => readNiftiHeader(file)));
      const extent = caseExtent(item.caseId, headers, this.predictor.plan, { numClasses: this.predictor.numClasses, stepFraction, probabilities: false });
      try {
        checkCaseExtent(extent, files[0]!, { stepFraction, maxMemoryBytes: limits.maxMemoryBytes });
      } catch (error) {
        if (error instanceof InputError) throw new InputError(`${this.option}: ${error.message}`, { file: files[0], code: error.code, cause: error });
        throw error;
      }
    }
  }

  /** Predict the case and cut its label map into one 0/1 mask per name (the case's grid, channel 0's). */
  async predictMasks(item: PredictionCase): Promise<Record<Name, Uint8Array>> {
    const start = performance.now();
    const images = [];
    for (const file of this.channelsOf(item)) images.push(await readNifti(file, this.maxImageBytes !== undefined ? { maxBytes: this.maxImageBytes } : {}));
    const { segmentation } = await this.predictor.predictCaseAsync(images, { caseId: item.caseId });
    const labels = segmentation.data;
    const masks = {} as Record<Name, Uint8Array>;
    for (const name of Object.keys(this.values) as Name[]) {
      const value = this.values[name];
      masks[name] = Uint8Array.from(labels, (v) => (v === value ? 1 : 0));
    }
    this.logger.info(`${item.caseId}: ${this.option} ${this.predictor.description} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    return masks;
  }

  dispose(): void {
    this.predictor.dispose();
  }
}
