/**
 * The nnU-Net v2 kind of model that model.ts (the one reader of every checkpoint kind) hands
 * prediction, transfer and export: a trained model folder (dataset.json, plans.json,
 * fold_K/checkpoint_*.pth), one of its fold folders, or one .pth in it. The checkpoint's init_args name its configuration
 * (nnU-Net's predictor builds that one; `--configuration` must agree), its
 * inference_allowed_mirroring_axes are the mirroring axes, plans.json + dataset.json give the
 * plan (data's planFromNnunet) and the network, and the canonical weights are loaded by name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, InputError } from '../core/index.js';
import { planFromNnunet } from '../data/index.js';
import { nnunetCheckpointFile, nnunetModelFolderOf, readNnunetCheckpoint, readNnunetModelFolder, type NnunetCheckpointName, type NnunetFold } from '../io/index.js';
import type { UNetConfig } from '../models/index.js';
import type { MirrorAxis, ModelCheckpoint, ReadModelOptions } from './model.js';
import type { CheckpointName } from './sets.js';
import { assertFiniteWeights } from './weights.js';

export type ModelFold = number | 'all';

export interface NnunetResolveOptions {
  folds?: readonly ModelFold[];
  checkpoint?: NnunetCheckpointName;
}

/**
 * The .pth files to predict with (one per fold, in fold order), as nnU-Net's
 * auto_detect_available_folds: without `folds`, every fold_K holding the chosen checkpoint.
 */
export function resolveNnunetCheckpoints(modelPath: string, options: NnunetResolveOptions = {}): string[] {
  const where = nnunetModelFolderOf(modelPath);
  if (where === null) throw new InputError('not an nnU-Net model folder (no plans.json and dataset.json here or above the fold folder)', { file: modelPath, code: 'missing-model' });
  const checkpoint = options.checkpoint ?? 'final';
  if (where.file !== null || where.fold !== null) {
    if (options.folds !== undefined) throw new InputError('--folds needs -m to be the model folder, not one of its folds', { file: modelPath, code: 'bad-fold' });
    const file = where.file ?? nnunetCheckpointFile(where.fold!, checkpoint);
    if (!fs.existsSync(file)) throw new CheckpointError(`no ${path.basename(file)} in this fold folder`, { file: where.fold! });
    return [file];
  }
  const folds = readNnunetModelFolder(where.folder).folds;
  const present = folds.filter((f) => fs.existsSync(nnunetCheckpointFile(f.dir, checkpoint)));
  if (options.folds === undefined) {
    if (present.length === 0) {
      throw new CheckpointError(`no fold_K/checkpoint_${checkpoint}.pth here (fold folders: ${folds.map((f) => `fold_${f.fold}`).join(', ') || 'none'})`, { file: where.folder });
    }
    return present.map((f) => nnunetCheckpointFile(f.dir, checkpoint));
  }
  return options.folds.map((fold) => {
    const found = present.find((f) => f.fold === fold);
    if (found === undefined) {
      throw new InputError(`fold ${fold} has no checkpoint_${checkpoint}.pth: found ${present.map((f) => `fold_${f.fold}`).join(', ') || 'none'}`, { file: where.folder, code: 'bad-fold' });
    }
    return nnunetCheckpointFile(found.dir, checkpoint);
  });
}

/** nnU-Net's num_epochs of a trainer: nnUNetTrainer 1000, nnUNetTrainer_Xepochs X; null when the name does not say. */
export function nnunetTrainerEpochs(trainerName: string): number | null {
  if (trainerName === 'nnUNetTrainer') return 1000;
  const match = /^nnUNetTrainer_(\d+)epochs$/.exec(trainerName);
  return match === null ? null : Number(match[1]);
}

const CHECKPOINT_NAMES: Readonly<Record<string, CheckpointName>> = { 'checkpoint_best.pth': 'best', 'checkpoint_latest.pth': 'latest', 'checkpoint_final.pth': 'final' };

/** Read one nnU-Net checkpoint with its folder's plans (and its SGD momentum when asked for). */
export function readNnunetModelCheckpoint(file: string, options: ReadModelOptions = {}): ModelCheckpoint {
  const where = nnunetModelFolderOf(file);
  if (where === null || where.file === null) throw new CheckpointError('an nnU-Net checkpoint must sit in fold_K/ of a model folder with plans.json and dataset.json', { file });
  const checkpoint = readNnunetCheckpoint(file, { optimizer: options.optimizer === true });
  assertFiniteWeights(checkpoint.weights, file);
  if (checkpoint.optimizer !== null) assertFiniteWeights(checkpoint.optimizer.momentum, file, 'momentum buffer');
  if (options.configuration !== undefined && options.configuration !== checkpoint.configuration) {
    throw new InputError(`this model was trained as configuration '${checkpoint.configuration}', not '${options.configuration}'`, { file, code: 'bad-configuration' });
  }
  const folder = readNnunetModelFolder(where.folder);
  const { plan, network, regions } = planFromNnunet(folder.plans, folder.datasetJson, { plansFile: folder.plansFile, configuration: checkpoint.configuration, datasetJsonFile: path.join(where.folder, 'dataset.json') });
  const fold: NnunetFold | null = checkpoint.fold;
  return {
    kind: 'nnunet',
    file,
    sidecarFile: folder.plansFile,
    name: CHECKPOINT_NAMES[path.basename(file)] ?? 'final',
    architecture: { name: network.name, config: network.config as UNetConfig, taskClasses: null },
    plan,
    numEpochs: nnunetTrainerEpochs(checkpoint.trainerName) ?? checkpoint.currentEpoch,
    weights: checkpoint.weights,
    optimizer: checkpoint.optimizer?.momentum ?? null,
    mirrorAxes: checkpoint.mirrorAxes === null ? [] : (checkpoint.mirrorAxes as MirrorAxis[]),
    sidecar: null,
    regions,
    description: `nnU-Net ${checkpoint.trainerName} ${checkpoint.configuration} fold ${String(fold ?? '?')} (${network.name}${regions !== null ? `, ${regions.regions.length} sigmoid regions` : ''}, epoch ${checkpoint.currentEpoch ?? '?'})`,
  };
}

/**
 * The one .pth of an nnU-Net model that `--pretrained` names: the .pth itself, a fold folder's
 * checkpoint_final.pth, or the model folder's only fold with one (several folds: name one).
 */
export function resolveNnunetPretrained(modelPath: string): string {
  const where = nnunetModelFolderOf(modelPath);
  if (where === null) throw new InputError('not an nnU-Net model folder (no plans.json and dataset.json here or above the fold folder)', { file: modelPath, code: 'missing-model' });
  let file = where.file;
  if (file === null && where.fold !== null) file = nnunetCheckpointFile(where.fold, 'final');
  if (file === null) {
    const folds = readNnunetModelFolder(where.folder).folds.filter((f) => fs.existsSync(nnunetCheckpointFile(f.dir, 'final')));
    if (folds.length !== 1) {
      throw new InputError(`--pretrained needs one fold of this nnU-Net model: name it as ${path.join(modelPath, 'fold_K')} (found ${folds.map((f) => `fold_${f.fold}`).join(', ') || 'no fold with checkpoint_final.pth'})`, { file: modelPath, code: 'bad-pretrained' });
    }
    file = nnunetCheckpointFile(folds[0]!.dir, 'final');
  }
  if (!fs.existsSync(file)) throw new CheckpointError(`no ${path.basename(file)} here`, { file: path.dirname(file) });
  return file;
}
