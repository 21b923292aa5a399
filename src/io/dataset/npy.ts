/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0 read; 1.0 written): the magic "\x93NUMPY",
 * a version, a little-endian header length, a Python dict literal {'descr', 'fortran_order',
 * 'shape'} padded with spaces and a newline to a multiple of 64 bytes, then the C-order data.
 */
import * as fs from 'node:fs';
import { atomicWriteFileSync, InputError, type TypedArray } from '../../core/index.js';

export interface NpyArray {
  /** The array-protocol type string as stored, e.g. '<f4', '|u1', '|b1'. */
  dtype: string;
  shape: number[];
  data: TypedArray;
}

type Constructor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

/** Type code (kind + size, without byte order) -> typed array. Booleans read as Uint8Array. */
const KINDS: Readonly<Record<string, Constructor>> = {
  f4: Float32Array as unknown as Constructor,
  f8: Float64Array as unknown as Constructor,
  i1: Int8Array as unknown as Constructor,
  u1: Uint8Array as unknown as Constructor,
  b1: Uint8Array as unknown as Constructor,
  i2: Int16Array as unknown as Constructor,
  u2: Uint16Array as unknown as Constructor,
  i4: Int32Array as unknown as Constructor,
  u4: Uint32Array as unknown as Constructor,
  i8: BigInt64Array as unknown as Constructor,
};

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** numpy leaves room for the first axis to grow to this many digits without rewriting the file. */
const GROWTH_AXIS_MAX_DIGITS = 21;

function descrOf(data: TypedArray): string {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Uint32Array) return '<u4';
  return '<i8';
}

/** Parse numpy's header dict literal (the subset numpy writes). */
function parseHeaderDict(text: string, file: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const bad = (what: string): never => {
    throw new InputError(`invalid .npy header (${what}): ${text.trim()}`, { file, code: 'bad-npy' });
  };
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(text)?.[1] ?? bad('no descr');
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1] ?? bad('no fortran_order');
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1] ?? bad('no shape');
  const shape = shapeText
    .split(',')
    .map((part) => part.trim().replace(/L$/, ''))
    .filter((part) => part.length > 0)
    .map((part) => (/^\d+$/.test(part) ? Number(part) : bad(`shape entry '${part}'`)));
  return { descr, fortranOrder: fortran === 'True', shape };
}

/** Read a .npy file (C order; byte-swapped to native order when stored big-endian). */
export function readNpy(file: string): NpyArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new InputError(`cannot read: ${(error as Error).message}`, { file, code: 'unreadable', cause: error });
  }
  if (bytes.byteLength < 10 || !bytes.subarray(0, 6).equals(MAGIC)) {
    throw new InputError('not a .npy file (missing \\x93NUMPY magic)', { file, code: 'bad-npy' });
  }
  const major = bytes[6]!;
  const lengthBytes = major === 1 ? 2 : 4;
  if (major < 1 || major > 3) throw new InputError(`unsupported .npy format version ${major}`, { file, code: 'bad-npy' });
  if (bytes.byteLength < 8 + lengthBytes) throw new InputError('truncated .npy header', { file, code: 'bad-npy' });
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const dataStart = 8 + lengthBytes + headerLength;
  if (dataStart > bytes.byteLength) throw new InputError('truncated .npy header', { file, code: 'bad-npy' });
  const text = bytes.subarray(8 + lengthBytes, dataStart).toString(major === 3 ? 'utf8' : 'latin1');
  const { descr, fortranOrder, shape } = parseHeaderDict(text, file);
  if (fortranOrder) throw new InputError('Fortran-order .npy arrays are not supported; save a C-order array', { file, code: 'bad-npy' });
  const order = descr[0];
  const kind = descr.slice(1);
  const array = KINDS[kind];
  if (!array || (order !== '<' && order !== '>' && order !== '|')) {
    throw new InputError(`unsupported .npy dtype '${descr}' (supported: ${Object.keys(KINDS).join(', ')})`, { file, code: 'bad-npy' });
  }
  const count = shape.reduce((product, n) => product * n, 1);
  const byteLength = count * array.BYTES_PER_ELEMENT;
  if (bytes.byteLength - dataStart < byteLength) {
    throw new InputError(`truncated: shape (${shape.join(', ')}) of ${descr} needs ${byteLength} data bytes, file has ${bytes.byteLength - dataStart}`, {
      file,
      code: 'truncated',
    });
  }
  // Copy into a fresh buffer: aligned for any element size, and independent of the file buffer.
  const buffer = new ArrayBuffer(byteLength);
  const view = new Uint8Array(buffer);
  view.set(bytes.subarray(dataStart, dataStart + byteLength));
  const size = array.BYTES_PER_ELEMENT;
  if (order === '>' && size > 1) {
    for (let start = 0; start < byteLength; start += size) view.subarray(start, start + size).reverse();
  }
  return { dtype: descr, shape, data: new array(buffer, 0, count) };
}

/** The complete .npy (v1.0) header, byte-identical to what numpy 1.24's np.save writes. */
export function npyHeader(descr: string, shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  const unpadded = MAGIC.byteLength + 2 + 2 + dict.length + 1;
  // Like numpy, always pad (1 to 64 spaces) so that the data starts on a 64-byte boundary.
  dict += ' '.repeat(64 - (unpadded % 64)) + '\n';
  const header = Buffer.alloc(MAGIC.byteLength + 4 + dict.length);
  MAGIC.copy(header, 0);
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(dict.length, 8);
  header.write(dict, 10, 'latin1');
  return header;
}

/** Write `data` with `shape` (C order) as a version 1.0 .npy file, atomically. */
export function writeNpy(file: string, data: TypedArray, shape: number[]): void {
  if (!shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new InputError(`invalid shape (${shape.join(', ')})`, { file, code: 'bad-shape' });
  }
  const count = shape.reduce((product, n) => product * n, 1);
  if (count !== data.length) {
    throw new InputError(`shape (${shape.join(', ')}) holds ${count} values, data has ${data.length}`, { file, code: 'bad-shape' });
  }
  atomicWriteFileSync(file, [npyHeader(descrOf(data), shape), new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
}
