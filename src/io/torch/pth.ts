/**
 * PyTorch .pth/.pt checkpoints (the zip format torch.save writes since PyTorch 1.6), read without
 * running anything: `<name>/data.pkl` is a pickle (read by pickle.ts under the allowlist below)
 * whose tensors point, by persistent id, at raw little-endian storages `<name>/data/<key>`.
 *
 * The allowlist is what tensor checkpoints and nnU-Net v2's checkpoint dicts need, and nothing
 * else: torch._utils._rebuild_tensor_v2 and _rebuild_parameter, the storage classes
 * (torch.FloatStorage, HalfStorage, LongStorage, ...) as persistent-id tags, collections.OrderedDict,
 * torch.device (nnU-Net's init_args hold one), and numpy scalars: nnU-Net's `logging` and
 * `_best_ema` hold numpy.float64 values (np.nanmean, np.mean of the validation Dice and losses),
 * pickled as numpy.core.multiarray.scalar(numpy.dtype('f8'), bytes); bytes themselves come through
 * _codecs.encode(text, 'latin1') in protocol 2. A numpy scalar becomes a number here; no numpy
 * array (ndarray) is accepted. Tensors come out as descriptions; `tensor()` reads a storage on
 * demand and returns contiguous host bytes (strided tensors are copied).
 */
import { CheckpointError } from '../../core/index.js';
import { PyDict, PyGlobal, pyTypeName, unpickle, type PyExtension, type PyGlobalHandler, type PyValue, type UnpickleLimits } from './pickle.js';
import type { SafetensorsDtype, SafetensorsEntry } from './safetensors.js';
import { ZipArchive, type ZipLimits } from './zip.js';

export interface PthStorage extends PyExtension {
  readonly pyClass: 'torch.Storage';
  readonly key: string;
  readonly dtype: SafetensorsDtype;
  readonly numel: number;
  readonly location: string;
}

export interface PthTensor extends PyExtension {
  readonly pyClass: 'torch.Tensor';
  readonly storage: PthStorage;
  readonly storageOffset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly requiresGrad: boolean;
}

export interface TorchDevice extends PyExtension {
  readonly pyClass: 'torch.device';
  readonly type: string;
  readonly index: number | null;
}

export function isPthTensor(value: PyValue | undefined): value is PthTensor {
  return typeof value === 'object' && value !== null && (value as { pyClass?: unknown }).pyClass === 'torch.Tensor';
}

const STORAGE_DTYPES: Readonly<Record<string, SafetensorsDtype>> = {
  'torch.FloatStorage': 'F32',
  'torch.DoubleStorage': 'F64',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
  'torch.ShortStorage': 'I16',
  'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8',
  'torch.BoolStorage': 'BOOL',
};

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

const fail = (message: string): never => {
  throw new CheckpointError(message);
};

function nonNegativeInt(value: PyValue | undefined, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) return fail(`${what} must be a non-negative integer, got ${value === undefined ? 'nothing' : pyTypeName(value)}`);
  return value;
}

function intTuple(value: PyValue | undefined, what: string): number[] {
  if (!Array.isArray(value)) return fail(`${what} must be a tuple of integers, got ${value === undefined ? 'nothing' : pyTypeName(value)}`);
  return value.map((item, i) => nonNegativeInt(item, `${what}[${i}]`));
}

function rebuildTensor(args: readonly PyValue[]): PthTensor {
  if (args.length < 6 || args.length > 7) fail(`torch._utils._rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
  const storage = args[0];
  if (typeof storage !== 'object' || storage === null || (storage as { pyClass?: unknown }).pyClass !== 'torch.Storage') {
    fail(`a tensor's storage must be a storage reference, got ${pyTypeName(storage ?? null)}`);
  }
  const shape = intTuple(args[2], 'tensor size');
  const stride = intTuple(args[3], 'tensor stride');
  if (shape.length !== stride.length) fail(`tensor size [${shape.join(', ')}] and stride [${stride.join(', ')}] differ in length`);
  const hooks = args[5];
  if (!(hooks instanceof PyDict) || hooks.size > 0) fail('a tensor with backward hooks is not accepted');
  const storageOffset = nonNegativeInt(args[1], 'storage offset');
  checkView(storage as PthStorage, storageOffset, shape, stride);
  return { pyClass: 'torch.Tensor', storage: storage as PthStorage, storageOffset, shape, stride, requiresGrad: args[4] === true };
}

/**
 * A tensor must view elements its storage holds, and no more of them than it has: every element
 * it reaches (the last at offset + sum((size_i - 1) * stride_i)) lies inside the storage, and its
 * element count is at most the storage's. So a tensor costs no more than its storage, whose
 * bytes the archive holds (checked when the storage is named): a broadcast view (stride 0) that
 * would expand a few stored elements to gigabytes, or a size whose product overflows, is refused
 * here, before anything is allocated. Checked in floating point with early exits: every product
 * compared stays below 2^53 until it exceeds the storage.
 */
function checkView(storage: PthStorage, storageOffset: number, shape: readonly number[], stride: readonly number[]): void {
  const view = `tensor [${shape.join(', ')}] (stride [${stride.join(', ')}], offset ${storageOffset}) of storage ${storage.key}`;
  if (shape.includes(0)) return;
  let count = 1;
  let last = storageOffset;
  for (let i = 0; i < shape.length; i++) {
    count *= shape[i]!;
    if (count > storage.numel) fail(`${view} has more elements than its storage's ${storage.numel}${stride.includes(0) ? ' (a broadcast view: save it with .contiguous())' : ''}`);
    last += (shape[i]! - 1) * stride[i]!;
    if (last >= storage.numel) fail(`${view} reaches element ${last} of a storage of ${storage.numel}`);
  }
}

function rebuildParameter(args: readonly PyValue[]): PthTensor {
  if (args.length < 3 || args.length > 4 || !isPthTensor(args[0])) return fail('torch._utils._rebuild_parameter needs (tensor, requires_grad, hooks[, state])');
  if (!(args[2] instanceof PyDict) || args[2].size > 0) fail('a parameter with backward hooks is not accepted');
  return args[0];
}

function torchDevice(args: readonly PyValue[]): TorchDevice {
  const [spec, index] = args;
  if (typeof spec !== 'string' || args.length > 2 || (index !== undefined && index !== null && typeof index !== 'number')) {
    return fail('torch.device takes a device string and an optional index');
  }
  const [type, fromSpec] = spec.split(':');
  const resolved = index ?? (fromSpec !== undefined ? Number(fromSpec) : null);
  return { pyClass: 'torch.device', type: type!, index: resolved === null || Number.isNaN(resolved) ? null : resolved };
}

class NumpyDtype implements PyExtension {
  readonly pyClass = 'numpy.dtype';
  byteOrder = '=';
  constructor(readonly code: string) {}
  setState(state: PyValue): void {
    if (!Array.isArray(state) || typeof state[1] !== 'string') fail('numpy.dtype state must be a tuple (version, byteorder, ...)');
    this.byteOrder = (state as PyValue[])[1] as string;
  }
}

/** numpy.core.multiarray.scalar(dtype, bytes): the value of a numpy scalar, as a number (or bigint, bool). */
function numpyScalar(args: readonly PyValue[]): PyValue {
  const [dtype, raw] = args;
  if (!(dtype instanceof NumpyDtype) || !(raw instanceof Uint8Array) || args.length !== 2) return fail('numpy scalar needs (dtype, bytes)');
  if (dtype.byteOrder === '>') fail(`big-endian numpy scalar (${dtype.code}) is not supported`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const readers: Record<string, [number, () => PyValue]> = {
    f8: [8, () => view.getFloat64(0, true)],
    f4: [4, () => view.getFloat32(0, true)],
    i8: [8, () => { const v = view.getBigInt64(0, true); return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }],
    u8: [8, () => { const v = view.getBigUint64(0, true); return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }],
    i4: [4, () => view.getInt32(0, true)],
    u4: [4, () => view.getUint32(0, true)],
    i2: [2, () => view.getInt16(0, true)],
    u2: [2, () => view.getUint16(0, true)],
    i1: [1, () => view.getInt8(0)],
    u1: [1, () => view.getUint8(0)],
    b1: [1, () => view.getUint8(0) !== 0],
  };
  const reader = readers[dtype.code];
  if (reader === undefined) return fail(`numpy scalar of dtype '${dtype.code}' is not supported (supported: ${Object.keys(readers).join(', ')})`);
  if (raw.byteLength !== reader[0]) fail(`numpy ${dtype.code} scalar has ${raw.byteLength} bytes, needs ${reader[0]}`);
  return reader[1]();
}

function numpyDtype(args: readonly PyValue[]): NumpyDtype {
  if (typeof args[0] !== 'string') return fail('numpy.dtype needs a type code string');
  return new NumpyDtype(args[0]);
}

/** _codecs.encode(text, 'latin1'): how protocol 2 pickles bytes. Only Latin-1 is accepted. */
function codecsEncode(args: readonly PyValue[]): Uint8Array {
  const [text, encoding] = args;
  if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) return fail("_codecs.encode is accepted only as (text, 'latin1'), how pickle stores bytes");
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 255) fail('_codecs.encode: text is not Latin-1');
    out[i] = code;
  }
  return out;
}

/** The globals a checkpoint may name, by full dotted name. */
export const PTH_GLOBALS: Readonly<Record<string, PyGlobalHandler>> = Object.freeze({
  'collections.OrderedDict': {
    call: (args: readonly PyValue[]) => {
      if (args.length > 0 && !(Array.isArray(args[0]) && args[0].length === 0)) fail('collections.OrderedDict is accepted only empty (its items follow as SETITEMS)');
      return new PyDict();
    },
  },
  'torch._utils._rebuild_tensor_v2': { call: rebuildTensor },
  'torch._utils._rebuild_parameter': { call: rebuildParameter },
  'torch.device': { call: torchDevice },
  'numpy.dtype': { call: numpyDtype },
  'numpy.core.multiarray.scalar': { call: numpyScalar },
  'numpy._core.multiarray.scalar': { call: numpyScalar },
  '_codecs.encode': { call: codecsEncode },
  ...Object.fromEntries(Object.keys(STORAGE_DTYPES).map((name) => [name, {}])),
});

export interface PthLimits extends Partial<UnpickleLimits>, Partial<ZipLimits> {
  /** The most bytes data.pkl may have (default 256 MiB; a state dict's pickle has kilobytes). */
  maxPickleBytes?: number;
}

/** An open checkpoint: the unpickled root object and on-demand tensor data. */
export interface PthFile {
  readonly file: string;
  readonly root: PyValue;
  /** A tensor's values as contiguous little-endian host bytes (a copy when it is strided). */
  tensor(tensor: PthTensor): SafetensorsEntry;
}

function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape[i + 1]!;
  return strides;
}

function tensorBytes(tensor: PthTensor, storageBytes: Uint8Array, file: string): SafetensorsEntry {
  const { shape, stride, storageOffset, storage } = tensor;
  const width = DTYPE_BYTES[storage.dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  const name = `tensor [${shape.join(', ')}] of storage ${storage.key}`;
  if (count === 0) return { dtype: storage.dtype, shape: [...shape], data: new Uint8Array(0) };
  const last = storageOffset + shape.reduce((sum, n, i) => sum + (n - 1) * stride[i]!, 0);
  if (last >= storage.numel) throw new CheckpointError(`${name} reaches element ${last} of a storage of ${storage.numel}`, { file });
  const contiguous = contiguousStrides(shape);
  if (shape.every((n, i) => n === 1 || stride[i] === contiguous[i])) {
    return { dtype: storage.dtype, shape: [...shape], data: storageBytes.subarray(storageOffset * width, (storageOffset + count) * width) };
  }
  // Strided (a transposed or expanded view was saved): copy element by element in C order.
  const out = new Uint8Array(count * width);
  const index = new Array<number>(shape.length).fill(0);
  let source = storageOffset;
  for (let k = 0; k < count; k++) {
    out.set(storageBytes.subarray(source * width, (source + 1) * width), k * width);
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      index[axis]!++;
      source += stride[axis]!;
      if (index[axis]! < shape[axis]!) break;
      source -= stride[axis]! * shape[axis]!;
      index[axis] = 0;
    }
  }
  return { dtype: storage.dtype, shape: [...shape], data: out };
}

/**
 * Open a PyTorch checkpoint, unpickle its object (allowlist PTH_GLOBALS) and hand it to `use`;
 * the file is closed when `use` returns. CheckpointError names the file for anything refused.
 */
export function readPth<T>(file: string, use: (pth: PthFile) => T, limits: PthLimits = {}): T {
  const archive = ZipArchive.open(file, limits);
  try {
    const pickles = [...archive.entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
    if (pickles.length !== 1) {
      throw new CheckpointError(
        pickles.length === 0 ? 'a zip, but not a PyTorch checkpoint: no <name>/data.pkl inside' : `a PyTorch checkpoint holds one <name>/data.pkl, this zip ${pickles.length}`,
        { file },
      );
    }
    const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
    const byteOrder = archive.entries.has(`${prefix}byteorder`) ? archive.read(`${prefix}byteorder`, 16).toString('latin1').trim() : 'little';
    if (byteOrder !== 'little') throw new CheckpointError(`the tensors are stored ${byteOrder}-endian; only little-endian checkpoints are read`, { file });
    const storages = new Map<string, PthStorage>();
    const persistentLoad = (pid: PyValue): PyValue => {
      if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') return fail(`unknown persistent id (a ${pyTypeName(pid)}); only tensor storages are accepted`);
      const [, type, key, location, numel] = pid;
      if (!(type instanceof PyGlobal) || !(type.name in STORAGE_DTYPES)) return fail(`a storage of type ${type instanceof PyGlobal ? type.name : pyTypeName(type ?? null)} is not supported`);
      if (typeof key !== 'string' || typeof location !== 'string') return fail('a storage id needs a string key and location');
      const storage: PthStorage = { pyClass: 'torch.Storage', key, dtype: STORAGE_DTYPES[type.name]!, numel: nonNegativeInt(numel, `storage ${key} size`), location };
      const known = storages.get(key);
      if (known !== undefined && (known.dtype !== storage.dtype || known.numel !== storage.numel)) fail(`storage ${key} is declared twice with different types or sizes`);
      const entry = archive.entries.get(`${prefix}data/${key}`);
      if (entry === undefined) return fail(`storage ${key} is not in the archive (${prefix}data/${key})`);
      // The declared size is bounded by the file (zip.ts): a storage is never larger than its entry.
      const bytes = storage.numel * DTYPE_BYTES[storage.dtype];
      if (entry.uncompressedSize !== bytes) fail(`storage ${key} declares ${storage.numel} ${storage.dtype} elements (${bytes} bytes), its entry ${entry.name} holds ${entry.uncompressedSize}`);
      storages.set(key, known ?? storage);
      return known ?? storage;
    };
    let root: PyValue;
    try {
      const pickle = archive.read(pickles[0]!, limits.maxPickleBytes ?? 256 * 2 ** 20);
      root = unpickle(pickle, { ...limits, globals: PTH_GLOBALS, persistentLoad, file });
    } catch (error) {
      if (error instanceof CheckpointError && error.file === undefined) throw new CheckpointError(error.message, { file, cause: error });
      throw error;
    }
    const loaded = new Map<string, Uint8Array>();
    const storageData = (storage: PthStorage): Uint8Array => {
      let bytes = loaded.get(storage.key);
      if (bytes === undefined) {
        const expected = storage.numel * DTYPE_BYTES[storage.dtype];
        bytes = archive.read(`${prefix}data/${storage.key}`);
        if (bytes.byteLength !== expected) throw new CheckpointError(`storage ${storage.key} has ${bytes.byteLength} bytes, its ${storage.numel} ${storage.dtype} elements need ${expected}`, { file });
        loaded.set(storage.key, bytes);
      }
      return bytes;
    };
    return use({ file, root, tensor: (tensor) => tensorBytes(tensor, storageData(tensor.storage), file) });
  } finally {
    archive.close();
  }
}

/** A dict of name -> tensor (a state dict): every key a string, every value a tensor. */
export function stateDictEntries(value: PyValue | undefined, where: string, file: string): Map<string, PthTensor> {
  if (!(value instanceof PyDict)) throw new CheckpointError(`${where} is not a dict of tensors (a ${value === undefined ? 'missing value' : pyTypeName(value)})`, { file });
  const out = new Map<string, PthTensor>();
  for (const [key, item] of value) {
    if (typeof key !== 'string') throw new CheckpointError(`${where} has a key of type ${pyTypeName(key)}, not a parameter name`, { file });
    if (!isPthTensor(item)) throw new CheckpointError(`${where}['${key}'] is a ${pyTypeName(item)}, not a tensor`, { file });
    out.set(key, item);
  }
  return out;
}
