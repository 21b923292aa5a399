/**
 * nnU-Net v2 trained model folders, as nnUNetv2_train writes them under nnUNet_results
 * (`<Dataset>/<trainer>__<plans>__<configuration>/`: dataset.json, plans.json, fold_K/ with
 * checkpoint_final.pth and checkpoint_best.pth), read as files: the JSON documents (plans.json
 * raw, for data's converter) and each checkpoint's dict (nnUNetTrainer.save_checkpoint:
 * network_weights, optimizer_state, grad_scaler_state, logging, _best_ema, current_epoch,
 * init_args, trainer_name, inference_allowed_mirroring_axes) through the safe .pth reader.
 *
 * A PyTorch state dict of nnU-Net's networks lists every parameter under its canonical name and
 * again under aliases: `<block>.all_modules.<i>.*` (the Sequential inside each conv block: index 0
 * is the conv, the next one with parameters the norm) and `decoder.encoder.*` (the decoder holds
 * the encoder). Each alias is checked to hold exactly its canonical twin's values and dropped, so
 * the weights come out under the names our networks register.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, InputError } from '../../core/index.js';
import { readDatasetJson, type DatasetJson } from './dataset-json.js';
import { PyDict, pyGet, pySequence, pyToJson, pyTypeName, type PyValue } from '../torch/pickle.js';
import { isPthTensor, readPth, stateDictEntries, type PthFile, type PthLimits, type PthTensor } from '../torch/pth.js';
import type { SafetensorsEntry } from '../torch/safetensors.js';

export type NnunetFold = number | 'all';
export type NnunetCheckpointName = 'final' | 'best';

export interface NnunetModelFolder {
  folder: string;
  datasetJson: DatasetJson;
  /** plans.json as parsed (validated by data's nnU-Net plans converter). */
  plans: unknown;
  plansFile: string;
  /** The fold_K folders present, in K order (fold_all last). */
  folds: { fold: NnunetFold; dir: string }[];
}

export interface NnunetSgdState {
  /** Momentum buffers under the canonical parameter names. */
  momentum: Map<string, SafetensorsEntry>;
  lr: number;
  momentumFactor: number;
  nesterov: boolean;
  weightDecay: number;
}

export interface NnunetCheckpoint {
  file: string;
  trainerName: string;
  /** init_args.configuration, e.g. '3d_fullres'. */
  configuration: string;
  fold: NnunetFold | null;
  /** inference_allowed_mirroring_axes (spatial axes of the network input); null (None or absent): no mirroring, as nnU-Net. */
  mirrorAxes: number[] | null;
  /** Epochs completed (nnU-Net stores current_epoch + 1). */
  currentEpoch: number | null;
  /** Canonical parameter names -> values (aliases checked and dropped). */
  weights: Map<string, SafetensorsEntry>;
  aliasesChecked: number;
  /** SGD state, when asked for and present. */
  optimizer: NnunetSgdState | null;
}

/** A folder nnU-Net wrote: plans.json and dataset.json side by side. */
export function isNnunetModelFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'plans.json')) && fs.existsSync(path.join(dir, 'dataset.json'));
}

function isDirectory(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The model folder a path belongs to: the folder itself (fold and file null), one of its fold_K
 * folders (file null), or a .pth in one of them; null when the path is none of these.
 */
export function nnunetModelFolderOf(modelPath: string): { folder: string; fold: string | null; file: string | null } | null {
  const resolved = path.resolve(modelPath);
  if (isDirectory(resolved) && isNnunetModelFolder(resolved)) return { folder: resolved, fold: null, file: null };
  if (isDirectory(resolved) && /^fold_(\d+|all)$/.test(path.basename(resolved)) && isNnunetModelFolder(path.dirname(resolved))) {
    return { folder: path.dirname(resolved), fold: resolved, file: null };
  }
  if (resolved.endsWith('.pth') && isNnunetModelFolder(path.dirname(path.dirname(resolved)))) {
    return { folder: path.dirname(path.dirname(resolved)), fold: path.dirname(resolved), file: resolved };
  }
  return null;
}

/** Read dataset.json (validated), plans.json (parsed) and the fold folders of a model folder. */
export function readNnunetModelFolder(folder: string): NnunetModelFolder {
  const plansFile = path.join(folder, 'plans.json');
  let plans: unknown;
  try {
    plans = JSON.parse(fs.readFileSync(plansFile, 'utf8'));
  } catch (cause) {
    throw new InputError(`cannot read the nnU-Net plans: ${(cause as Error).message}`, { file: plansFile, code: 'bad-plan', cause });
  }
  const datasetJson = readDatasetJson(folder);
  const folds = fs.readdirSync(folder, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => /^fold_(\d+|all)$/.exec(entry.name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ fold: match[1] === 'all' ? ('all' as const) : Number(match[1]), dir: path.join(folder, match[0]) }))
    .sort((a, b) => (a.fold === 'all' ? 1 : b.fold === 'all' ? -1 : a.fold - b.fold));
  return { folder, datasetJson, plans, plansFile, folds };
}

/** `fold_K/checkpoint_final.pth` (or _best). */
export function nnunetCheckpointFile(foldDir: string, checkpoint: NnunetCheckpointName): string {
  return path.join(foldDir, `checkpoint_${checkpoint}.pth`);
}

/** The canonical name an alias key stands for, or null when `key` is canonical. */
export function canonicalTwin(key: string): string | null {
  if (key.startsWith('decoder.encoder.')) return `encoder.${key.slice('decoder.encoder.'.length)}`;
  const match = /^(.*)\.all_modules\.(\d+)\.([^.]+)$/.exec(key);
  if (match === null) return null;
  return `${match[1]}.${match[2] === '0' ? 'conv' : 'norm'}.${match[3]}`;
}

function sameTensor(a: PthTensor, b: PthTensor): boolean {
  return a.storage === b.storage && a.storageOffset === b.storageOffset && a.shape.join() === b.shape.join() && a.stride.join() === b.stride.join();
}

function sameBytes(a: SafetensorsEntry, b: SafetensorsEntry): boolean {
  return a.dtype === b.dtype && a.shape.join() === b.shape.join() && Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
}

/** network_weights without its aliases, each alias checked against its twin. */
function canonicalWeights(pth: PthFile, value: PyValue | undefined): { weights: Map<string, SafetensorsEntry>; order: string[]; aliases: number } {
  let entries = stateDictEntries(value, 'network_weights', pth.file);
  // A checkpoint saved from a DistributedDataParallel wrapper prefixes every key with 'module.'.
  if (entries.size > 0 && [...entries.keys()].every((key) => key.startsWith('module.'))) {
    entries = new Map([...entries].map(([key, tensor]) => [key.slice('module.'.length), tensor]));
  }
  const order: string[] = [];
  let aliases = 0;
  for (const key of entries.keys()) if (canonicalTwin(key) === null) order.push(key);
  const weights = new Map(order.map((key) => [key, pth.tensor(entries.get(key)!)]));
  for (const [key, tensor] of entries) {
    let twin = canonicalTwin(key);
    if (twin === null) continue;
    while (twin !== null && !weights.has(twin) && canonicalTwin(twin) !== null) twin = canonicalTwin(twin);
    const canonical = twin === null ? undefined : weights.get(twin);
    if (canonical === undefined) throw new CheckpointError(`network_weights['${key}'] is an alias of '${twin}', which the state dict lacks`, { file: pth.file });
    const twinTensor = entries.get(twin!);
    if (!(twinTensor !== undefined && sameTensor(tensor, twinTensor)) && !sameBytes(pth.tensor(tensor), canonical)) {
      throw new CheckpointError(`network_weights['${key}'] differs from its canonical twin '${twin}': the state dict is inconsistent`, { file: pth.file });
    }
    aliases++;
  }
  return { weights, order, aliases };
}

function sgdState(pth: PthFile, value: PyValue | undefined, order: readonly string[], weights: ReadonlyMap<string, SafetensorsEntry>): NnunetSgdState | null {
  if (value === undefined || value === null) return null;
  const file = pth.file;
  const groups = pySequence(pyGet(value, 'param_groups'));
  const state = pyGet(value, 'state');
  if (groups === null || groups.length !== 1 || !(state instanceof PyDict)) throw new CheckpointError('optimizer_state is not the state dict of one SGD parameter group', { file });
  const group = groups[0]!;
  const number = (key: string): number => {
    const item = pyGet(group, key);
    if (typeof item !== 'number') throw new CheckpointError(`optimizer_state param_groups[0].${key} is a ${item === undefined ? 'missing value' : pyTypeName(item)}, not a number (not SGD?)`, { file });
    return item;
  };
  const params = pySequence(pyGet(group, 'params'));
  if (params === null || params.length !== order.length) {
    throw new CheckpointError(`optimizer_state covers ${params?.length ?? 0} parameters, network_weights holds ${order.length}`, { file });
  }
  const momentum = new Map<string, SafetensorsEntry>();
  for (const [index, entry] of state) {
    const keys = entry instanceof PyDict ? [...entry.keys()] : [];
    const buffer = pyGet(entry, 'momentum_buffer');
    if (keys.length !== 1 || !isPthTensor(buffer)) throw new CheckpointError(`optimizer_state.state[${String(index)}] holds ${keys.join(', ') || 'no tensor'}, not an SGD momentum buffer`, { file });
    const position = params.indexOf(index as PyValue);
    const name = order[position];
    if (name === undefined) throw new CheckpointError(`optimizer_state.state[${String(index)}] names no parameter of the group`, { file });
    const data = pth.tensor(buffer);
    if (data.shape.join() !== weights.get(name)!.shape.join()) throw new CheckpointError(`the momentum of ${name} has shape [${data.shape.join(', ')}], the weight [${weights.get(name)!.shape.join(', ')}]`, { file });
    momentum.set(name, data);
  }
  return { momentum, lr: number('lr'), momentumFactor: number('momentum'), nesterov: pyGet(group, 'nesterov') === true, weightDecay: number('weight_decay') };
}

/** Read one nnU-Net checkpoint (`fold_K/checkpoint_final.pth`); the optimizer state only when asked for. */
export function readNnunetCheckpoint(file: string, options: { optimizer?: boolean; limits?: PthLimits } = {}): NnunetCheckpoint {
  return readPth(file, (pth) => {
    const root = pth.root;
    if (!(root instanceof PyDict) || !root.has('network_weights')) {
      throw new CheckpointError(`not an nnU-Net checkpoint: its object is a ${pyTypeName(root)} without 'network_weights'`, { file });
    }
    const { weights, order, aliases } = canonicalWeights(pth, root.get('network_weights'));
    const trainerName = root.get('trainer_name');
    const initArgs = root.get('init_args');
    const configuration = pyGet(initArgs, 'configuration');
    if (typeof trainerName !== 'string' || typeof configuration !== 'string') {
      throw new CheckpointError('not an nnU-Net v2 checkpoint: trainer_name or init_args.configuration is missing', { file });
    }
    const fold = pyGet(initArgs, 'fold');
    const axes = root.get('inference_allowed_mirroring_axes');
    const axisList = pySequence(axes);
    if (axes !== undefined && axes !== null && (axisList === null || axisList.some((a) => a !== 0 && a !== 1 && a !== 2))) {
      throw new CheckpointError(`inference_allowed_mirroring_axes must list spatial axes 0, 1, 2 (got ${JSON.stringify(pyToJson(axes, 'axes'))})`, { file });
    }
    const epoch = root.get('current_epoch');
    return {
      file,
      trainerName,
      configuration,
      fold: typeof fold === 'number' || fold === 'all' ? fold : null,
      mirrorAxes: axisList === null ? null : (axisList as number[]).slice(),
      currentEpoch: typeof epoch === 'number' ? epoch : null,
      weights,
      aliasesChecked: aliases,
      optimizer: options.optimizer === true ? sgdState(pth, root.get('optimizer_state'), order, weights) : null,
    };
  }, options.limits);
}
