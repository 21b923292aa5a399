/**
 * The checkpoints a model path names (`predict -m`, `export`, `train --pretrained`): a checkpoint
 * file (`.safetensors`, `.json` or the base), a run folder (its checkpoint_final, or _best), a folder
 * holding fold_K run folders (one checkpoint per fold: an ensemble), or an nnU-Net model folder,
 * one of its fold folders or one of its .pth files (nnunet.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, InputError } from '../core/index.js';
import { nnunetModelFolderOf } from '../io/index.js';
import { nnunetConfigurationFolder, resolveNnunetCheckpoints, resolveNnunetPretrained, type ModelFold } from './nnunet.js';
import { checkpointBase } from './sets.js';

/** The checkpoint a run folder is predicted with. */
export const FINAL_CHECKPOINT = 'checkpoint_final';

/** Which checkpoint of a run or fold to predict with (nnU-Net's -chk checkpoint_final.pth / checkpoint_best.pth). */
export type CheckpointChoice = 'final' | 'best';

/**
 * The checkpoint files `-m` names: a checkpoint (`.safetensors`, `.json` or the base), a run folder
 * (RUN/checkpoint_final, or _best), a folder holding fold_K run folders (one checkpoint per fold
 * in `folds`, default every fold_K found, in K order), or an nnU-Net model folder (its folds'
 * checkpoint_final.pth or _best.pth, see nnunetCheckpoint.ts).
 */
export function resolveCheckpoints(modelPath: string, folds?: readonly ModelFold[], options: { checkpoint?: CheckpointChoice; configuration?: string } = {}): string[] {
  // An nnU-Net results dataset folder: --configuration picks its <trainer>__<plans>__<configuration> model folder.
  const configurationFolder = options.configuration !== undefined && nnunetModelFolderOf(modelPath) === null ? nnunetConfigurationFolder(modelPath, options.configuration) : null;
  if (configurationFolder !== null) return resolveCheckpoints(configurationFolder, folds, { ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}) });
  if (nnunetModelFolderOf(modelPath) !== null) {
    return resolveNnunetCheckpoints(modelPath, { ...(folds !== undefined ? { folds } : {}), ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}) });
  }
  if (folds?.includes('all')) throw new InputError('--folds all names an nnU-Net fold_all; this is not an nnU-Net model folder', { file: modelPath, code: 'bad-fold' });
  const chosen = options.checkpoint === 'best' ? 'checkpoint_best' : FINAL_CHECKPOINT;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(modelPath);
  } catch {
    const base = checkpointBase(modelPath);
    if (fs.existsSync(`${base}.safetensors`) || fs.existsSync(`${base}.json`)) return [`${base}.safetensors`];
    throw new InputError('model not found: give a checkpoint, a run folder or a folder of fold_K runs', { file: modelPath, code: 'missing-model' });
  }
  if (stat.isFile()) {
    if (folds !== undefined) throw new InputError('--folds needs -m to be a folder of fold_K runs, not a checkpoint file', { file: modelPath, code: 'bad-fold' });
    return [`${checkpointBase(modelPath)}.safetensors`];
  }
  const final = path.join(modelPath, chosen);
  const foldDirs = fs.readdirSync(modelPath)
    .map((name) => /^fold_(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ fold: Number(match[1]), dir: path.join(modelPath, match[0]) }))
    .sort((a, b) => a.fold - b.fold);
  if (foldDirs.length === 0 || (folds === undefined && fs.existsSync(`${final}.json`))) {
    if (folds !== undefined) throw new InputError(`--folds ${folds.join(',')}: there are no fold_K folders here`, { file: modelPath, code: 'bad-fold' });
    if (!fs.existsSync(`${final}.json`) && !fs.existsSync(`${final}.safetensors`)) {
      throw new CheckpointError(`no ${chosen}.safetensors and no fold_K folders: not a lesionseg run folder nor an nnU-Net model folder (plans.json, dataset.json)`, { file: modelPath });
    }
    return [`${final}.safetensors`];
  }
  const wanted = folds ?? foldDirs.map((f) => f.fold);
  return wanted.map((fold) => {
    const found = foldDirs.find((f) => f.fold === fold);
    if (found === undefined) {
      throw new InputError(`fold ${fold} is not here: found ${foldDirs.map((f) => `fold_${f.fold}`).join(', ')}`, { file: modelPath, code: 'bad-fold' });
    }
    return path.join(found.dir, `${chosen}.safetensors`);
  });
}

/**
 * The one checkpoint a pre-trained model path names (`train --pretrained`): ours (a checkpoint
 * file or a run folder's checkpoint_final) or one fold of an nnU-Net model.
 */
export function resolvePretrained(modelPath: string): string {
  if (nnunetModelFolderOf(modelPath) !== null) return resolveNnunetPretrained(modelPath);
  const final = path.join(modelPath, FINAL_CHECKPOINT);
  if (fs.statSync(modelPath, { throwIfNoEntry: false })?.isDirectory() === true && fs.existsSync(`${final}.json`)) return final;
  return modelPath;
}
