/**
 * Test support for checkpoints: a copy of an nnU-Net model folder (plans.json, dataset.json) whose
 * fold_0/checkpoint_final.pth holds the given weights, written with our own .pth writer in the
 * layout nnUNetTrainer.save_checkpoint uses (network_weights, trainer_name, init_args,
 * current_epoch, inference_allowed_mirroring_axes; no optimizer state). Only tests import this file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PthBuilder, pyOrderedDict, pyTuple, readNnunetCheckpoint, type PickleValue, type SafetensorsEntry } from '../io/index.js';

export const NNUNET_PLAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nnunet/models/Dataset901_Tiny/nnUNetTrainer__nnUNetPlans__3d_fullres');

/** The canonical weights of the committed PlainConvUNet fixture's fold 0 (fresh copies, safe to edit). */
export function plainFixtureWeights(): Map<string, SafetensorsEntry> {
  const { weights } = readNnunetCheckpoint(path.join(NNUNET_PLAIN, 'fold_0', 'checkpoint_final.pth'));
  return new Map([...weights].map(([name, entry]) => [name, { ...entry, shape: [...entry.shape], data: entry.data.slice() }]));
}

/** What writeNnunetModelCopy may write differently from nnUNetTrainer's defaults (nnU-Net's trainer variants). */
export interface NnunetCopyOptions {
  /** The model folder whose plans.json and dataset.json are copied (default: the PlainConvUNet fixture). */
  source?: string;
  fold?: number;
  trainerName?: string;
  /** inference_allowed_mirroring_axes; null writes None, as nnUNetTrainerNoMirroring saves it. */
  mirrorAxes?: readonly number[] | null;
}

/** Write `folder` as a fixture's model folder with `weights` in fold_K/checkpoint_final.pth; returns the .pth. */
export function writeNnunetModelCopy(folder: string, weights: ReadonlyMap<string, SafetensorsEntry>, options: NnunetCopyOptions = {}): string {
  const fold = options.fold ?? 0;
  const axes = options.mirrorAxes === undefined ? [0, 1, 2] : options.mirrorAxes;
  fs.mkdirSync(path.join(folder, `fold_${fold}`), { recursive: true });
  for (const name of ['plans.json', 'dataset.json']) fs.copyFileSync(path.join(options.source ?? NNUNET_PLAIN, name), path.join(folder, name));
  const builder = new PthBuilder();
  const file = path.join(folder, `fold_${fold}`, 'checkpoint_final.pth');
  builder.write(file, new Map<string, PickleValue>([
    ['network_weights', pyOrderedDict([...weights].map(([name, entry]) => [name, builder.tensor(entry)] as const))],
    ['optimizer_state', null],
    ['trainer_name', options.trainerName ?? 'nnUNetTrainer'],
    ['init_args', new Map<string, PickleValue>([['configuration', '3d_fullres'], ['fold', fold]])],
    ['current_epoch', 3],
    ['inference_allowed_mirroring_axes', axes === null ? null : pyTuple([...axes])],
  ]));
  return file;
}

/** Set element `index` of an F32 tensor to `value` (NaN, Infinity). */
export function poison(entry: SafetensorsEntry, index: number, value: number): void {
  new DataView(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength).setFloat32(index * 4, value, true);
}
