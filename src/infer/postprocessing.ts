/**
 * nnU-Net v2's postprocessing (nnunetv2/postprocessing/remove_connected_components.py), read from
 * the files nnU-Net writes and applied as `nnUNetv2_apply_postprocessing` applies it to a mask.
 *
 * `nnUNetv2_find_best_configuration` (determine_postprocessing) writes `postprocessing.pkl`, a
 * pickle of the pair (functions, kwargs): a list of references to
 * `remove_all_but_largest_component_from_segmentation` and a list of dicts
 * `{'labels_or_regions': L}`, where L is the foreground labels (a list of numpy int64 values, from
 * np.unique) or one label or region (an int, a numpy int, or a tuple of ints); and its JSON twin
 * `postprocessing.json` (`postprocessing_fns`: the functions' names, `postprocessing_kwargs`: the
 * dicts, tuples as lists). The pickle goes through our restricted reader (io/torch/pickle.ts): the
 * function is a name on the allowlist, never looked up nor run; numpy scalars become numbers
 * (pth.ts's handlers); any other global is refused naming the file and the global.
 *
 * One step: the voxels whose label is in L (a region: any of its labels; a list: any of its
 * members, so a list and a tuple of the same labels select the same voxels) form a binary mask;
 * its connected components are labelled with full connectivity (26 neighbours in 3D: acvl_utils'
 * remove_all_but_largest_component calls skimage.measure.label with connectivity=None, which is
 * the image's dimension); every component whose size equals the largest size is kept (acvl_utils
 * keeps all components tied for largest), and the other voxels of the mask become background 0.
 * Steps run in the file's order, each on the previous one's result.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, LesionsegError } from '../core/index.js';
import { PTH_GLOBALS, PyDict, PyGlobal, pyTypeName, unpickle, type PyGlobalHandler, type PyValue } from '../io/index.js';

/** nnU-Net's one postprocessing function, by its full dotted name (the pickle's GLOBAL). */
export const NNUNET_REMOVE_ALL_BUT_LARGEST = 'nnunetv2.postprocessing.remove_connected_components.remove_all_but_largest_component_from_segmentation';
const FUNCTION_NAME = NNUNET_REMOVE_ALL_BUT_LARGEST.slice(NNUNET_REMOVE_ALL_BUT_LARGEST.lastIndexOf('.') + 1);

/** The file names nnU-Net writes, the pickle first (what nnUNetv2_apply_postprocessing reads). */
export const POSTPROCESSING_FILES = ['postprocessing.pkl', 'postprocessing.json'] as const;

/** One step: keep the largest component(s) of the voxels holding any of `labels`; the rest become `backgroundLabel`. */
export interface PostprocessingStep {
  /** The labels (regions flattened) whose voxels form the mask. */
  labels: number[];
  /** As the file gave them: a label, a region (list) or a list of labels/regions. */
  labelsOrRegions: number | (number | number[])[];
  backgroundLabel: number;
}

export interface Postprocessing {
  file: string;
  steps: PostprocessingStep[];
}

/** The globals postprocessing.pkl may name: the function (a name only) and numpy's scalar. */
const POSTPROCESSING_GLOBALS: Readonly<Record<string, PyGlobalHandler>> = Object.freeze({
  [NNUNET_REMOVE_ALL_BUT_LARGEST]: {},
  ...Object.fromEntries(['numpy.dtype', 'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar', '_codecs.encode'].map((name) => [name, PTH_GLOBALS[name]!])),
});

function bad(file: string, message: string): never {
  throw new InputError(`postprocessing: ${message}`, { file, code: 'bad-postprocessing' });
}

const isLabel = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 255;

/** labels_or_regions: an int, a region (tuple or list of ints) or a list of ints and regions. */
function stepOf(file: string, where: string, kwargs: Map<string, unknown>): PostprocessingStep {
  for (const key of kwargs.keys()) {
    if (key !== 'labels_or_regions' && key !== 'background_label') bad(file, `${where} has the argument '${key}' (${FUNCTION_NAME} takes labels_or_regions and background_label)`);
  }
  const value = kwargs.get('labels_or_regions');
  const background = kwargs.get('background_label') ?? 0;
  if (!isLabel(background)) bad(file, `${where}.background_label must be a label value 0..255, got ${JSON.stringify(background)}`);
  const labelText = `${where}.labels_or_regions must be a label value 0..255, a region (a list of them) or a list of labels and regions`;
  if (isLabel(value)) return { labels: [value], labelsOrRegions: value, backgroundLabel: background as number };
  if (!Array.isArray(value) || value.length === 0) return bad(file, `${labelText}, got ${JSON.stringify(value)}`);
  const members = value.map((item: unknown) => {
    if (isLabel(item)) return item;
    if (Array.isArray(item) && item.length > 0 && item.every(isLabel)) return [...item] as number[];
    return bad(file, `${labelText}, got ${JSON.stringify(value)}`);
  });
  return { labels: [...new Set(members.flat())].sort((a, b) => a - b), labelsOrRegions: members, backgroundLabel: background as number };
}

/** A pickled value as plain data (ints from numpy scalars included); functions by name. */
function plain(value: PyValue, file: string): unknown {
  if (value instanceof PyGlobal) return value;
  if (typeof value === 'bigint') return bad(file, `the integer ${value} is not a label value`);
  if (Array.isArray(value)) return value.map((item) => plain(item, file));
  if (value instanceof PyDict) {
    const out = new Map<string, unknown>();
    for (const [key, item] of value) {
      if (typeof key !== 'string') bad(file, `a kwargs key of type ${pyTypeName(key)}, not str`);
      out.set(key as string, plain(item, file));
    }
    return out;
  }
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  return bad(file, `a ${pyTypeName(value)} where nnU-Net writes functions, dicts and ints`);
}

function readPickle(file: string, bytes: Uint8Array): Postprocessing {
  let root: PyValue;
  try {
    root = unpickle(bytes, { globals: POSTPROCESSING_GLOBALS });
  } catch (error) {
    // The reader's refusals (a global off the allowlist, a malformed pickle), as this file's.
    if (error instanceof LesionsegError) bad(file, error.message.replace('a checkpoint may name only', 'a postprocessing file may name only'));
    throw error;
  }
  const pair = plain(root, file);
  if (!Array.isArray(pair) || pair.length !== 2 || !Array.isArray(pair[0]) || !Array.isArray(pair[1])) {
    return bad(file, `not nnU-Net's (functions, kwargs) pair: the pickle holds a ${pyTypeName(root)}`);
  }
  const [fns, kwargs] = pair as [unknown[], unknown[]];
  if (fns.length !== kwargs.length) bad(file, `${fns.length} functions but ${kwargs.length} kwargs dicts`);
  return {
    file,
    steps: fns.map((fn, i) => {
      if (!(fn instanceof PyGlobal)) bad(file, `functions[${i}] is not a function reference`);
      if (!(kwargs[i] instanceof Map)) bad(file, `kwargs[${i}] is not a dict`);
      return stepOf(file, `kwargs[${i}]`, kwargs[i] as Map<string, unknown>);
    }),
  };
}

function readJson(file: string, text: string): Postprocessing {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`postprocessing: not JSON (${(cause as Error).message})`, { file, code: 'bad-json', cause });
  }
  const record = json as { postprocessing_fns?: unknown; postprocessing_kwargs?: unknown };
  const fns = record?.postprocessing_fns;
  const kwargs = record?.postprocessing_kwargs;
  if (!Array.isArray(fns) || !Array.isArray(kwargs)) return bad(file, 'needs postprocessing_fns and postprocessing_kwargs lists (as nnU-Net\'s determine_postprocessing writes)');
  if (fns.length !== kwargs.length) bad(file, `${fns.length} functions but ${kwargs.length} kwargs dicts`);
  return {
    file,
    steps: fns.map((fn: unknown, i) => {
      if (fn !== FUNCTION_NAME) bad(file, `postprocessing_fns[${i}] is ${JSON.stringify(fn)}; nnU-Net's postprocessing is ${FUNCTION_NAME}`);
      const entry: unknown = kwargs[i];
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad(file, `postprocessing_kwargs[${i}] is not an object`);
      return stepOf(file, `postprocessing_kwargs[${i}]`, new Map(Object.entries(entry as object)));
    }),
  };
}

/** Read postprocessing.pkl (restricted unpickling) or postprocessing.json; InputError (exit 2) naming the file for anything else. */
export function readPostprocessing(file: string): Postprocessing {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (cause) {
    throw new InputError(`postprocessing: cannot read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { file, code: 'not-found', cause });
  }
  if (file.toLowerCase().endsWith('.json')) return readJson(file, bytes.toString('utf8'));
  if (file.toLowerCase().endsWith('.pkl')) return readPickle(file, bytes);
  return bad(file, 'give nnU-Net\'s postprocessing.pkl or postprocessing.json (or a folder holding one)');
}

/**
 * The postprocessing file `--postprocessing` names: a .pkl or .json, or a folder holding
 * postprocessing.pkl (preferred, as nnUNetv2_apply_postprocessing reads it) or postprocessing.json.
 */
export function resolvePostprocessingFile(given: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(given);
  } catch {
    throw new InputError('--postprocessing: not found', { file: given, code: 'not-found' });
  }
  if (!stat.isDirectory()) return given;
  const found = POSTPROCESSING_FILES.map((name) => path.join(given, name)).find((file) => fs.existsSync(file));
  if (found === undefined) throw new InputError(`--postprocessing: the folder holds neither ${POSTPROCESSING_FILES.join(' nor ')}`, { file: given, code: 'not-found' });
  return found;
}

/** Where a trained nnU-Net model folder keeps the postprocessing find_best_configuration chose: itself or its crossval_results_folds_* folders. */
export function postprocessingFilesIn(modelFolder: string): string[] {
  const folders = [modelFolder];
  try {
    for (const entry of fs.readdirSync(modelFolder, { withFileTypes: true })) {
      if (entry.isDirectory() && entry.name.startsWith('crossval_results_folds_')) folders.push(path.join(modelFolder, entry.name));
    }
  } catch {
    return [];
  }
  return folders.flatMap((folder) => POSTPROCESSING_FILES.map((name) => path.join(folder, name)).filter((file) => fs.existsSync(file)).slice(0, 1));
}

/** The 13 neighbours (dz, dy, dx) of a voxel that a raster scan has already passed (26-connectivity). */
const EARLIER_NEIGHBOURS: readonly (readonly [number, number, number])[] = [
  ...[-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => [-1, dy, dx] as const)),
  [0, -1, -1], [0, -1, 0], [0, -1, 1], [0, 0, -1],
];

/**
 * 1 where `mask` (0/1, `shape` [z, y, x]) belongs to a largest 26-connected component (all the
 * components tied for the largest size); zeros when the mask is empty. Two raster passes with a
 * union-find of provisional labels (each voxel joins the labels of its 13 earlier neighbours).
 */
export function largestComponents26(mask: Uint8Array, shape: readonly [number, number, number]): Uint8Array {
  const [nz, ny, nx] = shape;
  const voxels = nz * ny * nx;
  if (mask.length !== voxels) throw new RangeError(`largestComponents26: ${mask.length} voxels for shape [${shape.join(', ')}]`);
  let count = 0;
  for (let i = 0; i < voxels; i++) if (mask[i] !== 0) count++;
  const out = new Uint8Array(voxels);
  if (count === 0) return out;
  const plane = ny * nx;
  const dzs = EARLIER_NEIGHBOURS.map((n) => n[0]);
  const dys = EARLIER_NEIGHBOURS.map((n) => n[1]);
  const dxs = EARLIER_NEIGHBOURS.map((n) => n[2]);
  const steps = EARLIER_NEIGHBOURS.map(([dz, dy, dx]) => dz * plane + dy * nx + dx);
  const label = new Int32Array(voxels);
  const parent = new Int32Array(count + 1);
  const find = (start: number): number => {
    let a = start;
    while (parent[a] !== a) {
      parent[a] = parent[parent[a]!]!;
      a = parent[a]!;
    }
    return a;
  };
  let next = 1;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      const row = (z * ny + y) * nx;
      for (let x = 0; x < nx; x++) {
        const i = row + x;
        if (mask[i] === 0) continue;
        let root = 0;
        for (let k = 0; k < 13; k++) {
          const dz = dzs[k]!;
          const dy = dys[k]!;
          const dx = dxs[k]!;
          if ((dz < 0 && z === 0) || (dy < 0 && y === 0) || (dy > 0 && y === ny - 1) || (dx < 0 && x === 0) || (dx > 0 && x === nx - 1)) continue;
          const neighbour = label[i + steps[k]!]!;
          if (neighbour === 0) continue;
          const r = find(neighbour);
          if (root === 0) root = r;
          else if (r < root) {
            parent[root] = r;
            root = r;
          } else if (r > root) parent[r] = root;
        }
        if (root === 0) {
          root = next++;
          parent[root] = root;
        }
        label[i] = root;
      }
    }
  }
  const sizes = new Float64Array(next);
  for (let i = 0; i < voxels; i++) {
    if (label[i] === 0) continue;
    const r = find(label[i]!);
    label[i] = r;
    sizes[r]! += 1;
  }
  let largest = 0;
  for (let r = 1; r < next; r++) if (sizes[r]! > largest) largest = sizes[r]!;
  for (let i = 0; i < voxels; i++) if (label[i] !== 0 && sizes[label[i]!] === largest) out[i] = 1;
  return out;
}

/** Apply the steps to a label map in place (as nnUNetv2_apply_postprocessing on the written mask); returns the voxels changed. */
export function applyPostprocessing(segmentation: Uint8Array, shape: readonly [number, number, number], postprocessing: Pick<Postprocessing, 'steps'>): number {
  let changed = 0;
  for (const step of postprocessing.steps) {
    const selected = new Uint8Array(256);
    for (const label of step.labels) selected[label] = 1;
    const mask = new Uint8Array(segmentation.length);
    for (let i = 0; i < segmentation.length; i++) mask[i] = selected[segmentation[i]!]!;
    const keep = largestComponents26(mask, shape);
    for (let i = 0; i < segmentation.length; i++) {
      if (mask[i] === 1 && keep[i] === 0 && segmentation[i] !== step.backgroundLabel) {
        segmentation[i] = step.backgroundLabel;
        changed++;
      }
    }
  }
  return changed;
}

/** One line for logs: the file and its steps. */
export function describePostprocessing(postprocessing: Postprocessing): string {
  if (postprocessing.steps.length === 0) return `${postprocessing.file}: no step (nnU-Net found none that improved the cross-validation Dice)`;
  const steps = postprocessing.steps.map((step) => `keep the largest component of ${JSON.stringify(step.labelsOrRegions)}`);
  return `${postprocessing.file}: ${steps.join('; then ')}`;
}
