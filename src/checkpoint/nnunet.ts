/**
 * The nnU-Net v2 kind of model that model.ts (the one reader of every checkpoint kind) hands
 * prediction, transfer and export: a trained model folder (dataset.json, plans.json,
 * fold_K/checkpoint_*.pth), one of its fold folders, or one .pth in it. The checkpoint's init_args name its configuration
 * (nnU-Net's predictor builds that one; `--configuration` must agree), its
 * inference_allowed_mirroring_axes are the mirroring axes (None: none, as nnU-Net's predictor),
 * plans.json + dataset.json give the plan (data's planFromNnunet) and the network, and the canonical
 * weights are loaded by name. The trainer class is never needed: any trainer_name loads when its
 * weights fit, one for one, the registry's network that plans.json describes (nnUNetTrainerBN's
 * batch norms, say, are refused by name as weights that do not fit).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, InputError } from '../core/index.js';
import { planFromNnunet } from '../data/index.js';
import { nnunetCheckpointFile, nnunetModelFolderOf, readNnunetCheckpoint, readNnunetModelFolder, type NnunetCheckpointName, type NnunetFold, type SafetensorsEntry } from '../io/index.js';
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

/**
 * nnU-Net's num_epochs of a trainer: nnUNetTrainer 1000, nnUNetTrainer_Xepochs and
 * nnUNetTrainer_Xepochs_NoMirroring X; null when the name does not say (any other trainer class
 * loads all the same: its network is what plans.json describes, checked weight by weight).
 */
export function nnunetTrainerEpochs(trainerName: string): number | null {
  if (trainerName === 'nnUNetTrainer') return 1000;
  const match = /^nnUNetTrainer_(\d+)epochs(?:_NoMirroring)?$/.exec(trainerName);
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
  const twoD = plan.configuration.spatialDims === 2;
  const mirrorAxes = checkpoint.mirrorAxes === null ? [] : twoD ? slicewiseMirrorAxes(checkpoint.mirrorAxes, file) : (checkpoint.mirrorAxes as MirrorAxis[]);
  const weights = twoD ? withSliceAxis(checkpoint.weights) : checkpoint.weights;
  const momentum = checkpoint.optimizer === null ? null : twoD ? withSliceAxis(checkpoint.optimizer.momentum) : checkpoint.optimizer.momentum;
  return {
    kind: 'nnunet',
    file,
    sidecarFile: folder.plansFile,
    name: CHECKPOINT_NAMES[path.basename(file)] ?? 'final',
    architecture: { name: network.name, config: network.config as UNetConfig, taskClasses: null },
    plan,
    numEpochs: nnunetTrainerEpochs(checkpoint.trainerName) ?? checkpoint.currentEpoch,
    weights,
    optimizer: momentum,
    mirrorAxes,
    sidecar: null,
    regions,
    description: `nnU-Net ${checkpoint.trainerName} ${checkpoint.configuration} fold ${String(fold ?? '?')} (${network.name}${regions !== null ? `, ${regions.regions.length} sigmoid regions` : ''}, epoch ${checkpoint.currentEpoch ?? '?'}${checkpoint.mirrorAxes === null ? ', inference_allowed_mirroring_axes None: no mirroring' : ''})`,
  };
}

/**
 * A 2D network's weights as the 3D network with kernel depth 1 takes them (nnunetSpatialDims in
 * src/models): every 4D tensor of a 2D U-Net is a Conv2d weight [out, in, ky, kx] or a
 * ConvTranspose2d weight [in, out, sy, sx] and gains a size-1 axis at index 2 (the bytes are unchanged).
 */
function withSliceAxis(weights: ReadonlyMap<string, SafetensorsEntry>): Map<string, SafetensorsEntry> {
  return new Map([...weights].map(([name, entry]) => [name, entry.shape.length === 4 ? { ...entry, shape: [entry.shape[0]!, entry.shape[1]!, 1, entry.shape[2]!, entry.shape[3]!] } : entry]));
}

/** The inverse, for export: a 2D U-Net's 5D weights [a, b, 1, ky, kx] as nnU-Net's Conv2d / ConvTranspose2d weights [a, b, ky, kx]. */
export function withoutSliceAxis(weights: ReadonlyMap<string, SafetensorsEntry>): Map<string, SafetensorsEntry> {
  return new Map([...weights].map(([name, entry]) => {
    if (entry.shape.length !== 5) return [name, entry];
    if (entry.shape[2] !== 1) throw new RangeError(`${name} [${entry.shape.join(', ')}] is not the weight of a 2D network (kernel depth 1)`);
    return [name, { ...entry, shape: [entry.shape[0]!, entry.shape[1]!, entry.shape[3]!, entry.shape[4]!] }];
  }));
}

/** A 2D checkpoint's inference_allowed_mirroring_axes (0 = y, 1 = x of the slice) as axes of our [z, y, x] windows. */
function slicewiseMirrorAxes(axes: readonly number[], file: string): MirrorAxis[] {
  if (axes.some((axis) => axis !== 0 && axis !== 1)) throw new CheckpointError(`inference_allowed_mirroring_axes of a 2D network must list axes 0 and 1 (got [${axes.join(', ')}])`, { file });
  return axes.map((axis) => (axis + 1) as MirrorAxis);
}

/**
 * The model folder of `configuration` in an nnU-Net results dataset folder (nnUNet_results/DatasetX/,
 * holding `<trainer>__<plans>__<configuration>/` folders), as nnUNetv2_predict -d -c finds it; null
 * when `dir` holds no such folder at all (it is another kind of model path). Several trainers or
 * plans of the configuration, or none of it beside others, are refused naming what is there.
 */
export function nnunetConfigurationFolder(dir: string, configuration: string): string | null {
  let names: string[];
  try {
    names = fs.readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch {
    return null;
  }
  const models = names.filter((name) => /^.+__.+__.+$/.test(name) && fs.existsSync(path.join(dir, name, 'plans.json'))).sort();
  if (models.length === 0) return null;
  const matching = models.filter((name) => name.endsWith(`__${configuration}`));
  if (matching.length === 1) return path.join(dir, matching[0]!);
  throw new InputError(
    matching.length === 0
      ? `this nnU-Net dataset folder has no model of configuration '${configuration}' (it holds ${models.join(', ')})`
      : `this nnU-Net dataset folder has ${matching.length} models of configuration '${configuration}' (${matching.join(', ')}): give one of them as -m`,
    { file: dir, code: 'missing-model' },
  );
}

/**
 * The checkpoints of a cascade's previous stage (nnU-Net's 3d_lowres) for the cascade's checkpoints
 * `cascadeFiles`: the model folder beside theirs that nnUNetv2_train names
 * `<trainer>__<plans>__<previousStage>`, the same folds and the same checkpoint (final or best), as
 * nnUNetv2_predict runs both stages with the same -f and -chk.
 */
export function previousStageCheckpoints(cascadeFiles: readonly string[], previousStage: string): string[] {
  const where = nnunetModelFolderOf(cascadeFiles[0]!);
  if (where === null || where.file === null) throw new CheckpointError('a cascade checkpoint must sit in fold_K/ of a model folder', { file: cascadeFiles[0]! });
  const match = /^(.+__.+)__[^_].*$/.exec(path.basename(where.folder));
  const sibling = match === null ? null : path.join(path.dirname(where.folder), `${match[1]}__${previousStage}`);
  if (sibling === null || !fs.existsSync(sibling)) {
    throw new InputError(
      `this cascade model needs its previous stage '${previousStage}': nnUNetv2_train writes it beside this folder as ${sibling ?? `<trainer>__<plans>__${previousStage}`}, which is missing`,
      { file: where.folder, code: 'missing-model' },
    );
  }
  return cascadeFiles.map((file) => {
    const inSibling = path.join(sibling, path.basename(path.dirname(file)), path.basename(file));
    if (!fs.existsSync(inSibling)) {
      throw new InputError(`the previous stage '${previousStage}' has no ${path.basename(path.dirname(file))}/${path.basename(file)} for the cascade's`, { file: sibling, code: 'bad-fold' });
    }
    return inSibling;
  });
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
