/**
 * What every export format starts from: the trained model of `RUN` as one single-head network in
 * PyTorch's parameter order. RUN is a run folder (its checkpoint_final or _best set), a checkpoint
 * file, or an arm folder of fold_K runs (a study's folds: one model with several folds); infer's
 * src/checkpoint's resolveCheckpoints finds the files and its loadCheckpoint reads each set (sidecar, weights and
 * momentum, digests checked). Architectures as the registry's `nnunetExport` says: as they are
 * (PlainConvUNet, ResidualEncoderUNet); one task at a time (a MultiHeadUNet of multi-lesion
 * pre-training, its `decoder.task_heads.<t>.` renamed to the single head of a PlainConvUNet); or
 * refused with the entry's reason (HybridUNet: two encoders and the fusion units have no
 * single-encoder layout). The folds must agree on architecture and plan.
 *
 * The canonical parameter order is the order the network registers its parameters in (ours follow
 * PyTorch's module order), which is the order of torch's `model.parameters()`: nnU-Net's SGD
 * state refers to parameters by that index.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, CPU, InputError } from '../core/index.js';
import type { Plan, PlanDataset } from '../data/index.js';
import { loadCheckpoint, resolveCheckpoints, type CheckpointChoice, type CheckpointSidecar } from '../checkpoint/index.js';
import type { SafetensorsEntry } from '../io/index.js';
import { architectureEntry, buildArchitecture, headPrefixes, isArchitectureName, NNUNET_EXPORTABLE, type ArchitectureName, type UNetConfig } from '../models/index.js';

/** One epoch of the trainer's history, as much of it as the exports read (src/train EpochRecord). */
export interface ExportEpochRecord {
  train_loss: number;
  val_loss: number | null;
  pseudo_dice: number | null;
  pseudo_dice_per_class: (number | null)[];
  ema_pseudo_dice: number | null;
  lr: number;
  epoch_seconds: number;
}

/**
 * The trainer's part of a sidecar as the exports read it (src/train TrainingSidecar; export may not
 * import train): absent in a sidecar the trainer did not write.
 */
export interface ExportTrainingRecord {
  training?: { schedule: { initialLr: number }; optimizer: { momentum: number; nesterov: boolean; weightDecay: number } };
  state?: { epoch: number; bestEma: number | null; scaler: { scale: number; goodSteps: number } | null };
  history?: ExportEpochRecord[];
}

/** An architecture exported as itself (the registry's `nnunetExport.as === 'itself'`). */
export type ExportArchitecture = ArchitectureName;

export interface ExportFold {
  /** nnU-Net's fold index: K of a fold_K folder, else the run's recorded fold, else 0. */
  fold: number;
  /** The weights file (`<base>.safetensors`). */
  file: string;
  /** The trainer's record; `training`, `state` and `history` may be absent (a sidecar not written by the trainer). */
  sidecar: Omit<CheckpointSidecar, 'training' | 'state' | 'history'> & ExportTrainingRecord;
  /** Canonical names -> values, in parameter order. */
  weights: Map<string, SafetensorsEntry>;
  /** SGD momentum buffers under the same names (absent for checkpoint_best). */
  momentum: Map<string, SafetensorsEntry> | null;
}

export interface ExportModel {
  architecture: ExportArchitecture;
  /** The single-head network's config (numClasses of the exported head). */
  config: UNetConfig;
  plan: Plan;
  /** The dataset whose label space the head predicts. */
  dataset: PlanDataset;
  /** The multi-head task exported, or null. */
  task: string | null;
  checkpoint: CheckpointChoice;
  folds: ExportFold[];
}

export interface ReadExportOptions {
  checkpoint?: CheckpointChoice;
  /** MultiHeadUNet: the task (its dataset's name) whose head is exported. */
  task?: string;
  /** The option that named RUN, for messages. */
  option?: string;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function foldOf(file: string, sidecar: Pick<CheckpointSidecar, 'data'>): number {
  const match = /^fold_(\d+)$/.exec(path.basename(path.dirname(file)));
  if (match !== null) return Number(match[1]);
  const recorded = sidecar.data?.fold;
  return typeof recorded === 'number' && Number.isInteger(recorded) && recorded >= 0 ? recorded : 0;
}

/** Task names of a multi-head run: its recorded tasks' datasets, else the plan's datasets in order. */
function taskNames(sidecar: Pick<CheckpointSidecar, 'data' | 'plan'>, count: number): string[] {
  const tasks = sidecar.data?.tasks;
  if (Array.isArray(tasks) && tasks.length === count && tasks.every((t) => isRecord(t) && typeof t.dataset === 'string')) {
    return tasks.map((t) => (t as { dataset: string }).dataset);
  }
  const names = (sidecar.plan?.datasets ?? []).map((d: PlanDataset) => d.name);
  return names.length === count ? names : Array.from({ length: count }, (_, i) => `task${i}`);
}

function datasetOf(plan: Plan, sidecar: Pick<CheckpointSidecar, 'data'>, numClasses: number, file: string): PlanDataset {
  const named = sidecar.data?.dataset;
  if (typeof named === 'string') {
    const found = plan.datasets.find((d) => d.name === named);
    if (found !== undefined) return found;
  }
  if (plan.datasets.length === 1) return plan.datasets[0]!;
  const fitting = plan.datasets.filter((d) => Object.keys(d.labels).length === numClasses);
  if (fitting.length === 1) return fitting[0]!;
  throw new CheckpointError(`cannot tell which of the plan's datasets (${plan.datasets.map((d) => d.name).join(', ')}) the head predicts: the sidecar names none`, { file });
}

/** Keep task `task`'s heads (under `taskHeads`) as the single head `head`; drop the other tasks'. */
function selectTask(weights: ReadonlyMap<string, SafetensorsEntry>, task: number, taskHeads: string, head: string): Map<string, SafetensorsEntry> {
  const out = new Map<string, SafetensorsEntry>();
  const prefix = `${taskHeads}${task}.`;
  for (const [name, value] of weights) {
    if (name.startsWith(prefix)) out.set(`${head}${name.slice(prefix.length)}`, value);
    else if (!name.startsWith(taskHeads)) out.set(name, value);
  }
  return out;
}

/** The parameter names of `architecture` built from `config`, in registration (PyTorch) order. */
function parameterOrder(architecture: ExportArchitecture, config: UNetConfig): string[] {
  const network = buildArchitecture({ name: architecture, config: { ...config, deepSupervision: false } }, CPU);
  try {
    return [...network.namedParameters()].map(([name]) => name);
  } finally {
    network.dispose();
  }
}

function ordered(weights: ReadonlyMap<string, SafetensorsEntry>, order: readonly string[], file: string, what: string): Map<string, SafetensorsEntry> {
  const missing = order.filter((name) => !weights.has(name));
  const known = new Set(order);
  const unexpected = [...weights.keys()].filter((name) => !known.has(name));
  if (missing.length + unexpected.length > 0) {
    const problems = [...missing.map((n) => `missing ${n}`), ...unexpected.map((n) => `unexpected ${n}`)];
    throw new CheckpointError(`the ${what} do not fit the recorded architecture: ${problems.slice(0, 6).join('; ')}${problems.length > 6 ? `; and ${problems.length - 6} more` : ''}`, { file });
  }
  return new Map(order.map((name) => [name, weights.get(name)!]));
}

/** Read RUN's model for export (see the file comment); InputError or CheckpointError name what is wrong. */
export function readExportModel(run: string, options: ReadExportOptions = {}): ExportModel {
  const option = options.option ?? 'RUN';
  const checkpoint = options.checkpoint ?? 'final';
  if (fs.existsSync(path.join(run, 'plans.json')) && fs.existsSync(path.join(run, 'dataset.json'))) {
    throw new InputError(`${option} is already an nnU-Net model folder (plans.json, dataset.json); export reads lesionseg runs`, { file: run, code: 'bad-model' });
  }
  const files = resolveCheckpoints(run, undefined, { checkpoint });
  const folds: ExportFold[] = [];
  let reference: { architecture: ExportArchitecture; config: UNetConfig; plan: Plan; dataset: PlanDataset; task: string | null; order: string[]; file: string } | null = null;
  for (const file of files) {
    const loaded = loadCheckpoint(file);
    const sidecar = loaded.sidecar as unknown as ExportFold['sidecar'];
    const name = sidecar.architecture.name;
    const how = architectureEntry(name)?.nnunetExport;
    const exportable = `${NNUNET_EXPORTABLE.slice(0, -1).join(', ')} or ${NNUNET_EXPORTABLE.at(-1)!}`;
    if (how === undefined) {
      throw new InputError(`architecture '${name}' cannot be exported (export takes ${exportable})`, { file, code: 'unsupported-architecture' });
    }
    if (how.as === 'refused') {
      throw new InputError(`${path.basename(file)} is a ${name} (${how.reason}): it has no nnU-Net v2 layout; export ${exportable}`, { file, code: 'unsupported-architecture' });
    }
    const plan = sidecar.plan;
    if (plan === null) throw new CheckpointError('the checkpoint records no plan, which the exported model needs for its preprocessing', { file });
    let weights = loaded.weights;
    let momentum = loaded.optimizer;
    let config: UNetConfig = { ...sidecar.architecture.config, deepSupervision: false };
    let task: string | null = null;
    let dataset: PlanDataset;
    let architecture = name as ExportArchitecture;
    if (how.as === 'task-heads') {
      if (!isArchitectureName(how.architecture)) throw new Error(`the registry exports ${name} as an unknown '${how.architecture}'`);
      architecture = how.architecture;
      const classes = sidecar.architecture.taskClasses ?? [];
      const names = taskNames(sidecar, classes.length);
      if (options.task === undefined) {
        throw new InputError(`${option} is a multi-head (multi-lesion) model with tasks ${names.join(', ')}: nnU-Net has one head per model, so export one task at a time with --task NAME (each into its own folder)`, { file, code: 'needs-task' });
      }
      const index = names.indexOf(options.task);
      if (index < 0) throw new InputError(`--task ${options.task} is not a task of this model: use one of ${names.join(', ')}`, { file, code: 'bad-task' });
      task = options.task;
      const head = headPrefixes(architecture)[0]!;
      weights = selectTask(weights, index, how.taskHeads, head);
      momentum = momentum === null ? null : selectTask(momentum, index, how.taskHeads, head);
      config = { ...config, numClasses: classes[index]! };
      const found = plan.datasets.find((d: PlanDataset) => d.name === task);
      if (found === undefined) throw new CheckpointError(`the plan has no dataset '${task}' for task ${index}`, { file });
      dataset = found;
    } else {
      if (options.task !== undefined) throw new InputError(`--task applies to multi-head models; this is a ${name}`, { file, code: 'bad-task' });
      dataset = datasetOf(plan, sidecar, config.numClasses, file);
    }
    if (reference === null) {
      reference = { architecture, config, plan, dataset, task, order: parameterOrder(architecture, config), file };
    } else {
      const differences = [
        architecture !== reference.architecture ? `architecture ${architecture} vs ${reference.architecture}` : '',
        JSON.stringify(config) !== JSON.stringify(reference.config) ? 'network config' : '',
        JSON.stringify(plan.configuration) !== JSON.stringify(reference.plan.configuration) ? 'plan configuration (patch, spacing, normalisation, network)' : '',
        dataset.name !== reference.dataset.name || JSON.stringify(dataset.labels) !== JSON.stringify(reference.dataset.labels) ? `dataset ${dataset.name} vs ${reference.dataset.name}` : '',
      ].filter((text) => text !== '');
      if (differences.length > 0) {
        throw new InputError(`the folds are not one model: ${path.relative(run, file) || file} differs from ${path.relative(run, reference.file) || reference.file} in ${differences.join(', ')}`, { file: run, code: 'inconsistent-folds' });
      }
    }
    const fold = foldOf(file, sidecar);
    if (folds.some((f) => f.fold === fold)) throw new InputError(`two checkpoints are fold ${fold}`, { file: run, code: 'inconsistent-folds' });
    folds.push({
      fold,
      file,
      sidecar,
      weights: ordered(weights, reference.order, file, 'weights'),
      // Frozen parameters have no momentum buffer: the buffers are a subset, in parameter order.
      momentum: momentum === null ? null : ordered(momentum, reference.order.filter((n) => momentum.has(n)), file, 'momentum buffers'),
    });
  }
  if (reference === null) throw new CheckpointError('no checkpoint found', { file: run });
  return { architecture: reference.architecture, config: reference.config, plan: reference.plan, dataset: reference.dataset, task: reference.task, checkpoint, folds };
}
