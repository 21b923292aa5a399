/**
 * The nnU-Net v2 kind of model that checkpoint.ts (the one reader of every checkpoint kind)
 * hands prediction: a trained model folder (dataset.json, plans.json, fold_K/checkpoint_*.pth),
 * one of its fold folders, or one .pth in it. The checkpoint's init_args name its configuration
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
import type { InferenceCheckpoint } from './checkpoint.js';
import type { SpatialAxis } from './mirroring.js';

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
    if (options.folds !== undefined) throw new InputError('--folds needs -m to be the model folder, not one of its folds', { file: modelPath, code: 'bad-folds' });
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
      throw new InputError(`fold ${fold} has no checkpoint_${checkpoint}.pth: found ${present.map((f) => `fold_${f.fold}`).join(', ') || 'none'}`, { file: where.folder, code: 'bad-folds' });
    }
    return nnunetCheckpointFile(found.dir, checkpoint);
  });
}

/** Read one nnU-Net checkpoint with its folder's plans for prediction. */
export function readNnunetInferenceCheckpoint(file: string, options: { configuration?: string } = {}): InferenceCheckpoint {
  const where = nnunetModelFolderOf(file);
  if (where === null || where.file === null) throw new CheckpointError('an nnU-Net checkpoint must sit in fold_K/ of a model folder with plans.json and dataset.json', { file });
  const checkpoint = readNnunetCheckpoint(file);
  if (options.configuration !== undefined && options.configuration !== checkpoint.configuration) {
    throw new InputError(`this model was trained as configuration '${checkpoint.configuration}', not '${options.configuration}'`, { file, code: 'bad-configuration' });
  }
  const folder = readNnunetModelFolder(where.folder);
  const { plan, network } = planFromNnunet(folder.plans, folder.datasetJson, { plansFile: folder.plansFile, configuration: checkpoint.configuration });
  const fold: NnunetFold | null = checkpoint.fold;
  return {
    file,
    sidecarFile: folder.plansFile,
    kind: 'nnunet',
    architecture: { name: network.name, config: network.config as UNetConfig },
    plan,
    weights: checkpoint.weights,
    mirrorAxes: checkpoint.mirrorAxes === null ? [] : (checkpoint.mirrorAxes as SpatialAxis[]),
    description: `nnU-Net ${checkpoint.trainerName} ${checkpoint.configuration} fold ${String(fold ?? '?')} (${network.name}, epoch ${checkpoint.currentEpoch ?? '?'})`,
  };
}
