/**
 * State dicts as named host buffers, in the shape safetensors stores them (dtype tag, shape, raw
 * little-endian bytes), so io can write them and PyTorch can read them under the same names.
 * Loading is partial by prefix and always reports what it did: loaded, missing, unexpected and
 * shape-mismatched names; nothing is dropped silently.
 */
import { cast, copyInPlace, fromArray, noGrad, scope, type Tensor } from '../tensor/index.js';
import { type Module, type Parameter } from './module.js';

export type HostDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Structurally identical to io's SafetensorsEntry. */
export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  data: Uint8Array;
}

export interface LoadReport {
  loaded: string[];
  /** Model parameters not found in the state (and not skipped). */
  missing: string[];
  /** State entries with no parameter of that name (and not skipped). */
  unexpected: string[];
  shapeMismatch: { name: string; expected: number[]; found: number[] }[];
  /** Names left alone on purpose because of `skip` / `only`. */
  skipped: string[];
}

/** Copy a tensor to a host buffer (float tensors as F32). */
export function tensorToHost(tensor: Tensor): HostTensor {
  const array = scope(() => (tensor.dtype === 'float32' ? tensor : cast(tensor, 'float32')).toFloat32Array());
  return { dtype: 'F32', shape: [...tensor.shape], data: new Uint8Array(array.buffer, array.byteOffset, array.byteLength) };
}

/** Decode a host buffer into float32 values (F32, F64, F16, BF16, and integer types). */
export function hostToFloat32(entry: HostTensor): Float32Array {
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const bytes = entry.data;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  const width = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 }[entry.dtype];
  if (bytes.byteLength !== count * width) {
    throw new Error(`${entry.dtype} tensor of shape [${entry.shape.join(', ')}] needs ${count * width} bytes, has ${bytes.byteLength}`);
  }
  for (let i = 0; i < count; i++) {
    switch (entry.dtype) {
      case 'F32': out[i] = view.getFloat32(i * 4, true); break;
      case 'F64': out[i] = view.getFloat64(i * 8, true); break;
      case 'F16': out[i] = halfToFloat(view.getUint16(i * 2, true)); break;
      case 'BF16': out[i] = bfloat16ToFloat(view.getUint16(i * 2, true)); break;
      case 'I64': out[i] = Number(view.getBigInt64(i * 8, true)); break;
      case 'I32': out[i] = view.getInt32(i * 4, true); break;
      case 'I16': out[i] = view.getInt16(i * 2, true); break;
      case 'I8': out[i] = view.getInt8(i); break;
      case 'U8': case 'BOOL': out[i] = view.getUint8(i); break;
    }
  }
  return out;
}

const scratch = new DataView(new ArrayBuffer(4));
function bfloat16ToFloat(bits: number): number {
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Every parameter of the module as a host buffer, by dotted name. */
export function stateDict(module: Module): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, parameter] of module.namedParameters()) out.set(name, tensorToHost(parameter.value));
  return out;
}

export interface LoadOptions {
  /** Leave parameters whose name starts with one of these alone (e.g. the heads). */
  skip?: readonly string[];
  /** Only consider names starting with one of these. */
  only?: readonly string[];
  /** Map a model name to the name in the state (e.g. to load `encoder.` into `adapted_encoder.`). */
  rename?: (modelName: string) => string;
}

function selected(name: string, options: LoadOptions): boolean {
  if (options.skip?.some((prefix) => name.startsWith(prefix))) return false;
  if (options.only && !options.only.some((prefix) => name.startsWith(prefix))) return false;
  return true;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Copy values from a state into a parameter (same device and dtype as the parameter). */
export function assignParameter(parameter: Parameter, entry: HostTensor): void {
  const values = hostToFloat32(entry);
  noGrad(() =>
    scope(() => {
      const source = fromArray(values, entry.shape, { device: parameter.value.device });
      copyInPlace(parameter.value, parameter.value.dtype === 'float32' ? source : cast(source, parameter.value.dtype));
    }),
  );
}

/**
 * Load the selected entries of `state` into `module`. Shape mismatches are not loaded and are
 * reported; the caller decides whether anything in the report is fatal.
 */
export function loadStateDict(module: Module, state: ReadonlyMap<string, HostTensor>, options: LoadOptions = {}): LoadReport {
  const report: LoadReport = { loaded: [], missing: [], unexpected: [], shapeMismatch: [], skipped: [] };
  const used = new Set<string>();
  for (const [name, parameter] of module.namedParameters()) {
    if (!selected(name, options)) {
      report.skipped.push(name);
      continue;
    }
    const sourceName = options.rename ? options.rename(name) : name;
    const entry = state.get(sourceName);
    if (entry === undefined) {
      report.missing.push(name);
      continue;
    }
    used.add(sourceName);
    if (!sameShape(entry.shape, parameter.value.shape)) {
      report.shapeMismatch.push({ name, expected: [...parameter.value.shape], found: [...entry.shape] });
      continue;
    }
    assignParameter(parameter, entry);
    report.loaded.push(name);
  }
  for (const name of state.keys()) {
    if (used.has(name)) continue;
    if (!selected(name, options) && !options.rename) report.skipped.push(name);
    else report.unexpected.push(name);
  }
  return report;
}

/** A one-line summary of a load report, for logs. */
export function describeLoadReport(report: LoadReport): string {
  return `loaded ${report.loaded.length}, missing ${report.missing.length}, unexpected ${report.unexpected.length}, shape mismatches ${report.shapeMismatch.length}, skipped ${report.skipped.length}`;
}
