/**
 * `export --format nnunet`: a trained model as the folder nnU-Net v2 writes under nnUNet_results
 * and reads with nnUNetv2_predict / nnUNetPredictor.initialize_from_trained_model_folder:
 * plans.json (the run's configuration: 3d_fullres, 2d or 3d_lowres), dataset.json and per fold `fold_K/checkpoint_final.pth`
 * (or checkpoint_best.pth) holding the dict nnUNetTrainer.save_checkpoint writes:
 *
 * - network_weights: the state dict with nnU-Net's alias keys (an OrderedDict of float tensors);
 * - optimizer_state: torch.optim.SGD's state dict (momentum buffers by parameter index, one
 *   parameter group), or None when the checkpoint kept no momentum (checkpoint_best);
 * - grad_scaler_state: torch.cuda.amp.GradScaler's state dict for fp16 runs, else None;
 * - logging: the nnU-Net logger's lists per epoch from our history (NaN where we have no value);
 * - _best_ema, current_epoch (epochs completed, as nnU-Net stores current_epoch + 1);
 * - init_args: plans, configuration, fold, dataset_json (nnU-Net's trainer also records its
 *   torch.device there; it is left out: no loader reads it and it is not a weights-only global);
 * - trainer_name 'nnUNetTrainer' and inference_allowed_mirroring_axes (0, 1, 2), a 2d model's (0, 1).
 *
 * A 2d run's network (built with kernel depth 1) is written as nnU-Net's 2D one: Conv2d weights
 * [out, in, ky, kx] and ConvTranspose2d weights [in, out, sy, sx] (the same bytes).
 *
 * Floats are Python floats, as in nnU-Net's own checkpoints: torch >= 2.0 opens the file with
 * `weights_only=True`; torch 1.13's weights-only loader has no opcode for floats at all, so it
 * refuses every nnU-Net checkpoint, ours included (the test script says how it checks those).
 * Nothing is written until all folds are read and checked; the folder is built beside OUT and
 * renamed into place. A cascade run exports as a dataset folder with its previous stage (nnunet-cascade.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { atomicWriteJsonSync, InputError } from '../core/index.js';
import { withoutSliceAxis, type CheckpointChoice } from '../checkpoint/index.js';
import { PthBuilder, pyFloat, pyOrderedDict, pyTuple, type PickleValue } from '../io/index.js';
import { exportConfiguration, nnunetPlansFromPlan, type NnunetFiles } from './nnunet-plans.js';
import { readExportModel, type ExportEpochRecord, type ExportFold, type ExportModel } from './model.js';
import { withNnunetAliases } from './state-dict.js';
import { writeNnunetCascade } from './nnunet-cascade.js';

export const NNUNET_TRAINER_NAME = 'nnUNetTrainer';

export interface NnunetExportOptions {
  /** A run folder, a checkpoint, or an arm folder of fold_K runs. */
  run: string;
  /** The model folder to create (must not exist, or be empty). */
  out: string;
  checkpoint?: CheckpointChoice;
  task?: string;
}

export interface NnunetExportResult {
  out: string;
  folds: number[];
  files: string[];
  architecture: string;
  task: string | null;
  parameters: number;
  stateDictKeys: number;
}

const asFloat = (value: number | null | undefined): PickleValue => pyFloat(value ?? Number.NaN);

/** The nnU-Net logger's lists (nnunet_logger.py LocalLogger.my_fantastic_logging) from our epoch history. */
function loggingOf(fold: ExportFold): PickleValue {
  const history: ExportEpochRecord[] = fold.sidecar.history ?? [];
  // Epoch wall times: ours are durations; anchor them so that the last epoch ends when the checkpoint was written.
  const end = Date.parse(fold.sidecar.writtenAt) / 1000 || 0;
  const total = history.reduce((sum, record) => sum + record.epoch_seconds, 0);
  let clock = end - total;
  const starts: PickleValue[] = [];
  const ends: PickleValue[] = [];
  for (const record of history) {
    starts.push(pyFloat(clock));
    clock += record.epoch_seconds;
    ends.push(pyFloat(clock));
  }
  return {
    mean_fg_dice: history.map((r) => asFloat(r.pseudo_dice)),
    ema_fg_dice: history.map((r) => asFloat(r.ema_pseudo_dice)),
    dice_per_class_or_region: history.map((r) => r.pseudo_dice_per_class.map(asFloat)),
    train_losses: history.map((r) => asFloat(r.train_loss)),
    val_losses: history.map((r) => asFloat(r.val_loss)),
    lrs: history.map((r) => asFloat(r.lr)),
    epoch_start_timestamps: starts,
    epoch_end_timestamps: ends,
  };
}

/** torch.optim.SGD.state_dict(): momentum buffers keyed by the parameter's index in model.parameters(). */
function optimizerStateOf(fold: ExportFold, builder: PthBuilder): PickleValue {
  const training = fold.sidecar.training;
  if (fold.momentum === null || training === undefined) return null;
  const names = [...fold.weights.keys()];
  const state = new Map<number, PickleValue>();
  names.forEach((name, index) => {
    const buffer = fold.momentum!.get(name);
    if (buffer !== undefined) state.set(index, { momentum_buffer: builder.tensor(buffer) });
  });
  const history: ExportEpochRecord[] = fold.sidecar.history ?? [];
  const lr = history.length > 0 ? history[history.length - 1]!.lr : training.schedule.initialLr;
  return {
    state,
    param_groups: [
      {
        lr: pyFloat(lr),
        momentum: pyFloat(training.optimizer.momentum),
        dampening: 0,
        weight_decay: pyFloat(training.optimizer.weightDecay),
        nesterov: training.optimizer.nesterov,
        maximize: false,
        foreach: null,
        differentiable: false,
        initial_lr: pyFloat(training.schedule.initialLr),
        params: names.map((_, index) => index),
      },
    ],
  };
}

function gradScalerStateOf(fold: ExportFold): PickleValue {
  const scaler = fold.sidecar.state?.scaler;
  if (scaler === null || scaler === undefined) return null;
  return { scale: pyFloat(scaler.scale), growth_factor: pyFloat(2), backoff_factor: pyFloat(0.5), growth_interval: 2000, _growth_tracker: scaler.goodSteps };
}

/** The checkpoint dict of one fold (tensors registered with `builder`). */
export function nnunetCheckpointDict(fold: ExportFold, plans: Record<string, unknown>, datasetJson: Record<string, unknown>, builder: PthBuilder, configuration = '3d_fullres', twoD = false): PickleValue {
  const stateDict = withNnunetAliases(fold.weights);
  const tensors = new Map([...fold.weights].map(([name, value]) => [value, builder.tensor(value)] as const));
  const bestEma = fold.sidecar.state?.bestEma;
  return {
    network_weights: pyOrderedDict([...stateDict].map(([name, value]) => [name, tensors.get(value)!] as const)),
    optimizer_state: optimizerStateOf(fold, builder),
    grad_scaler_state: gradScalerStateOf(fold),
    logging: loggingOf(fold),
    _best_ema: bestEma === null || bestEma === undefined ? null : pyFloat(bestEma),
    current_epoch: fold.sidecar.state?.epoch ?? 0,
    init_args: { plans: plans as PickleValue, configuration, fold: fold.fold, dataset_json: datasetJson as PickleValue },
    trainer_name: NNUNET_TRAINER_NAME,
    // nnU-Net's trainer allows mirroring over every axis of its patch: (0, 1) in 2D, (0, 1, 2) in 3D.
    inference_allowed_mirroring_axes: pyTuple(twoD ? [0, 1] : [0, 1, 2]),
  };
}

/** Throws InputError unless `out` can become the model folder: absent or an empty folder, in a writable place. */
export function checkNnunetOutput(out: string, option = '--out'): void {
  let entries: string[] | null = null;
  try {
    if (fs.statSync(out).isDirectory()) entries = fs.readdirSync(out);
    else throw new InputError(`${option}: is a file; give a folder for the nnU-Net model`, { file: out, code: 'bad-output' });
  } catch (error) {
    if (error instanceof InputError) throw error;
  }
  if (entries !== null && entries.length > 0) throw new InputError(`${option}: the folder exists and is not empty; give a new folder for the nnU-Net model`, { file: out, code: 'bad-output' });
  const parent = path.dirname(path.resolve(out));
  try {
    fs.accessSync(parent, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw new InputError(`${option}: cannot create the folder (${parent} is missing or not writable)`, { file: out, code: 'bad-output' });
  }
}

/**
 * Write one model folder into `dir` (plans.json, dataset.json, fold_K/checkpoint_X.pth); the paths
 * of its checkpoints as they will be under `finalDir`, and the state dict's key count.
 */
export function writeNnunetModelFolder(model: ExportModel, files: NnunetFiles, configuration: string, dir: string, finalDir: string): { files: string[]; keys: number } {
  const name = `checkpoint_${model.checkpoint}.pth`;
  const written: string[] = [];
  let keys = 0;
  fs.mkdirSync(dir, { recursive: true });
  atomicWriteJsonSync(path.join(dir, 'plans.json'), files.plans);
  atomicWriteJsonSync(path.join(dir, 'dataset.json'), files.datasetJson);
  const twoD = model.plan.configuration.spatialDims === 2;
  for (const ours of model.folds) {
    // A 2D network's weights are nnU-Net's Conv2d ones (the slice axis our 3D build adds dropped).
    const fold = twoD ? { ...ours, weights: withoutSliceAxis(ours.weights), momentum: ours.momentum === null ? null : withoutSliceAxis(ours.momentum) } : ours;
    const builder = new PthBuilder();
    const dict = nnunetCheckpointDict(fold, files.plans, files.datasetJson, builder, configuration, twoD);
    keys = (dict as { network_weights: { entries: Map<string, unknown> } }).network_weights.entries.size;
    const file = path.join(dir, `fold_${fold.fold}`, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    builder.write(file, dict);
    written.push(path.join(finalDir, `fold_${fold.fold}`, name));
  }
  return { files: written, keys };
}

/** Build `out` in a staging folder beside it with `write(staging)`, then rename it into place (removed on failure). */
export function writeStaged<T>(out: string, write: (staging: string) => T): T {
  const staging = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const result = write(staging);
    if (fs.existsSync(out)) fs.rmdirSync(out); // empty, checked before
    fs.renameSync(staging, out);
    return result;
  } catch (error) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/** Write the model folder for an already read model. */
export function writeNnunetModel(model: ExportModel, out: string): NnunetExportResult {
  const nnunetFiles = nnunetPlansFromPlan(model.plan, model.architecture, model.config, model.dataset);
  const { files, keys } = writeStaged(out, (staging) => writeNnunetModelFolder(model, nnunetFiles, exportConfiguration(model.plan), staging, out));
  return {
    out,
    folds: model.folds.map((f) => f.fold),
    files,
    architecture: model.architecture,
    task: model.task,
    parameters: model.folds[0]!.weights.size,
    stateDictKeys: keys,
  };
}

/** `lesionseg export RUN --format nnunet --out DIR`: check the output, read every fold, then write. */
export function exportNnunet(options: NnunetExportOptions): NnunetExportResult {
  checkNnunetOutput(options.out);
  const model = readExportModel(options.run, {
    ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}),
    ...(options.task !== undefined ? { task: options.task } : {}),
  });
  // A cascade stage goes out with its previous stage, as nnUNet_results holds both (nnunet-cascade.ts).
  if (model.plan.configuration.previousStage !== undefined) return writeNnunetCascade(model, options.out);
  return writeNnunetModel(model, options.out);
}
