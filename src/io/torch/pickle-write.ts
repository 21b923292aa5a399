/**
 * A pickler (protocol 2) for the plain data a PyTorch checkpoint holds, and nothing else: None,
 * bool, int (number or bigint), float, str, list, tuple, dict, collections.OrderedDict and tensors
 * (torch._utils._rebuild_tensor_v2 over a storage named by persistent id, as torch.save writes
 * them). The opcodes are those PyTorch's restricted `weights_only` loaders read (EMPTY_DICT +
 * SETITEMS, EMPTY_LIST + APPENDS, TUPLEn, BININTn/LONG1, BINUNICODE, GLOBAL + REDUCE, BINPERSID),
 * plus BINFLOAT for floats. The only globals named are collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 and the storage classes (torch.FloatStorage, ...).
 *
 * JavaScript has one number type, so: an integral number up to 2^53 is pickled as an int, any
 * other as a float (a bigint is an int of any size), and `pyFloat(x)` forces a float (a learning
 * rate of 1.0, a Dice of 0). `pyTuple([...])` marks a tuple (a frozen array, as the reader returns
 * tuples), a Map or plain object is a dict (keys str or int), `pyOrderedDict(...)` an OrderedDict.
 */
import type { SafetensorsDtype } from './safetensors.js';

/** A storage: one `data/<key>` record of the archive; tensors view it. */
export interface PickleStorage {
  readonly key: string;
  readonly dtype: SafetensorsDtype;
  /** Elements (not bytes). */
  readonly numel: number;
}

export interface PickleTensor {
  readonly kind: 'tensor';
  readonly storage: PickleStorage;
  readonly storageOffset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

export class PickleFloat {
  constructor(readonly value: number) {}
}

export class PickleOrderedDict {
  constructor(readonly entries: ReadonlyMap<string | number, PickleValue>) {}
}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PickleFloat
  | PickleTensor
  | PickleOrderedDict
  | readonly PickleValue[]
  | ReadonlyMap<string | number, PickleValue>
  | { readonly [key: string]: PickleValue };

export const pyFloat = (value: number): PickleFloat => new PickleFloat(value);
export const pyTuple = (items: PickleValue[]): readonly PickleValue[] => Object.freeze(items);
export const pyOrderedDict = (entries: Iterable<readonly [string | number, PickleValue]>): PickleOrderedDict => new PickleOrderedDict(new Map(entries));

/** A contiguous (C-order) tensor over the whole of `storage`. */
export function pickleTensor(storage: PickleStorage, shape: readonly number[]): PickleTensor {
  const stride = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) stride[i] = stride[i + 1]! * shape[i + 1]!;
  return { kind: 'tensor', storage, storageOffset: 0, shape: [...shape], stride };
}

/** The storage class torch.save names for each dtype (pth.ts reads the same table). */
export const STORAGE_CLASS: Readonly<Record<SafetensorsDtype, string>> = {
  F32: 'FloatStorage',
  F64: 'DoubleStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  I64: 'LongStorage',
  I32: 'IntStorage',
  I16: 'ShortStorage',
  I8: 'CharStorage',
  U8: 'ByteStorage',
  BOOL: 'BoolStorage',
};

const OP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, BINFLOAT: 0x47, BINUNICODE: 0x58,
  EMPTY_DICT: 0x7d, EMPTY_LIST: 0x5d, EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  APPENDS: 0x65, SETITEMS: 0x75, GLOBAL: 0x63, REDUCE: 0x52, BINPERSID: 0x51,
} as const;

/** Items per APPENDS / SETITEMS batch (as CPython's pickler). */
const BATCH = 1000;
/** Deepest nesting accepted (Python's default recursion limit is 1000; a checkpoint nests ~5 deep). */
const MAX_DEPTH = 200;

class ByteSink {
  private chunks: Buffer[] = [];
  private current = Buffer.alloc(64 * 1024);
  private used = 0;
  byte(value: number): void {
    this.ensure(1);
    this.current[this.used++] = value;
  }
  bytes(data: Uint8Array): void {
    this.ensure(data.byteLength);
    this.current.set(data, this.used);
    this.used += data.byteLength;
  }
  uint16(value: number): void {
    this.ensure(2);
    this.current.writeUInt16LE(value, this.used);
    this.used += 2;
  }
  uint32(value: number): void {
    this.ensure(4);
    this.current.writeUInt32LE(value, this.used);
    this.used += 4;
  }
  int32(value: number): void {
    this.ensure(4);
    this.current.writeInt32LE(value, this.used);
    this.used += 4;
  }
  float64BigEndian(value: number): void {
    this.ensure(8);
    this.current.writeDoubleBE(value, this.used);
    this.used += 8;
  }
  private ensure(n: number): void {
    if (this.used + n <= this.current.byteLength) return;
    this.chunks.push(this.current.subarray(0, this.used));
    this.current = Buffer.alloc(Math.max(64 * 1024, n));
    this.used = 0;
  }
  result(): Buffer {
    return Buffer.concat([...this.chunks, this.current.subarray(0, this.used)]);
  }
}

/** Two's-complement little-endian bytes of an integer, as few as hold its sign (LONG1's payload). */
function longBytes(value: bigint): Uint8Array {
  const out: number[] = [];
  let rest = value;
  for (;;) {
    const byte = Number(rest & 0xffn);
    out.push(byte);
    rest >>= 8n;
    const signClear = (byte & 0x80) === 0;
    if ((rest === 0n && signClear) || (rest === -1n && !signClear)) break;
  }
  return Uint8Array.from(out);
}

function isTensor(value: object): value is PickleTensor {
  return (value as { kind?: unknown }).kind === 'tensor';
}

/** Pickle `root` (protocol 2); TypeError names the path of any value that has no pickled form. */
export function pickle(root: PickleValue): Buffer {
  const out = new ByteSink();
  const text = (value: string): void => {
    const encoded = Buffer.from(value, 'utf8');
    out.byte(OP.BINUNICODE);
    out.uint32(encoded.byteLength);
    out.bytes(encoded);
  };
  const global = (module: string, name: string): void => {
    out.byte(OP.GLOBAL);
    out.bytes(Buffer.from(`${module}\n${name}\n`, 'utf8'));
  };
  const integer = (value: number | bigint, where: string): void => {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new TypeError(`${where}: ${value} is beyond 2^53; pass a bigint`);
    const big = BigInt(value);
    if (big >= 0n && big < 256n) {
      out.byte(OP.BININT1);
      out.byte(Number(big));
    } else if (big >= 0n && big < 65536n) {
      out.byte(OP.BININT2);
      out.uint16(Number(big));
    } else if (big >= -(2n ** 31n) && big < 2n ** 31n) {
      out.byte(OP.BININT);
      out.int32(Number(big));
    } else {
      const bytes = longBytes(big);
      if (bytes.byteLength > 255) throw new TypeError(`${where}: an integer of ${bytes.byteLength} bytes is too long for LONG1`);
      out.byte(OP.LONG1);
      out.byte(bytes.byteLength);
      out.bytes(bytes);
    }
  };
  const dictItems = (entries: Iterable<readonly [string | number, PickleValue]>, where: string, depth: number): void => {
    let pending = 0;
    for (const [key, value] of entries) {
      if (pending === 0) out.byte(OP.MARK);
      if (typeof key === 'string') text(key);
      else if (typeof key === 'number' && Number.isInteger(key)) integer(key, `${where} key`);
      else throw new TypeError(`${where}: a dict key must be a str or an int, got ${typeof key}`);
      write(value, `${where}[${JSON.stringify(key)}]`, depth + 1);
      if (++pending === BATCH) {
        out.byte(OP.SETITEMS);
        pending = 0;
      }
    }
    if (pending > 0) out.byte(OP.SETITEMS);
  };
  const emptyOrderedDict = (): void => {
    global('collections', 'OrderedDict');
    out.byte(OP.EMPTY_TUPLE);
    out.byte(OP.REDUCE);
  };
  const tensor = (value: PickleTensor, where: string): void => {
    const { storage, shape, stride } = value;
    if (shape.length !== stride.length) throw new TypeError(`${where}: tensor shape and stride differ in length`);
    global('torch._utils', '_rebuild_tensor_v2');
    out.byte(OP.MARK);
    // Persistent id ('storage', torch.<Type>Storage, key, location, numel): the loader maps it to data/<key>.
    out.byte(OP.MARK);
    text('storage');
    global('torch', STORAGE_CLASS[storage.dtype]);
    text(storage.key);
    text('cpu');
    integer(storage.numel, `${where} numel`);
    out.byte(OP.TUPLE);
    out.byte(OP.BINPERSID);
    integer(value.storageOffset, `${where} offset`);
    sequence(shape, true, `${where} shape`, 0);
    sequence(stride, true, `${where} stride`, 0);
    out.byte(OP.NEWFALSE); // requires_grad
    emptyOrderedDict(); // backward hooks
    out.byte(OP.TUPLE);
    out.byte(OP.REDUCE);
  };
  const sequence = (items: readonly PickleValue[], asTuple: boolean, where: string, depth: number): void => {
    if (asTuple) {
      const codes = [OP.EMPTY_TUPLE, OP.TUPLE1, OP.TUPLE2, OP.TUPLE3];
      if (items.length > 3) out.byte(OP.MARK);
      items.forEach((item, i) => write(item, `${where}[${i}]`, depth + 1));
      out.byte(items.length <= 3 ? codes[items.length]! : OP.TUPLE);
      return;
    }
    out.byte(OP.EMPTY_LIST);
    for (let start = 0; start < items.length; start += BATCH) {
      out.byte(OP.MARK);
      for (let i = start; i < Math.min(items.length, start + BATCH); i++) write(items[i]!, `${where}[${i}]`, depth + 1);
      out.byte(OP.APPENDS);
    }
  };
  const write = (value: PickleValue, where: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new TypeError(`${where}: nested more than ${MAX_DEPTH} deep (a cycle?)`);
    if (value === null) return out.byte(OP.NONE);
    if (value === true) return out.byte(OP.NEWTRUE);
    if (value === false) return out.byte(OP.NEWFALSE);
    if (typeof value === 'bigint') return integer(value, where);
    if (typeof value === 'number') {
      if (Number.isInteger(value) && !Object.is(value, -0) && Number.isSafeInteger(value)) return integer(value, where);
      out.byte(OP.BINFLOAT);
      return out.float64BigEndian(value);
    }
    if (typeof value === 'string') return text(value);
    if (value instanceof PickleFloat) {
      out.byte(OP.BINFLOAT);
      return out.float64BigEndian(value.value);
    }
    if (Array.isArray(value)) return sequence(value, Object.isFrozen(value), where, depth);
    if (value instanceof PickleOrderedDict) {
      emptyOrderedDict();
      return dictItems(value.entries, where, depth);
    }
    if (value instanceof Map) {
      out.byte(OP.EMPTY_DICT);
      return dictItems(value as ReadonlyMap<string | number, PickleValue>, where, depth);
    }
    if (typeof value === 'object') {
      if (isTensor(value)) return tensor(value as PickleTensor, where);
      if (ArrayBuffer.isView(value)) throw new TypeError(`${where}: raw bytes have no pickled form here; store them as a tensor`);
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null) throw new TypeError(`${where}: a ${(value as object).constructor.name} has no pickled form`);
      out.byte(OP.EMPTY_DICT);
      return dictItems(Object.entries(value as Record<string, PickleValue>), where, depth);
    }
    throw new TypeError(`${where}: a ${typeof value} has no pickled form`);
  };
  out.byte(OP.PROTO);
  out.byte(2);
  write(root, 'root', 0);
  out.byte(OP.STOP);
  return out.result();
}
