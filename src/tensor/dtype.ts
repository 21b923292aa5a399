/**
 * Element types as strings (the public names) and their libtorch ScalarType codes (what the addon
 * takes), plus the default dtype for each host TypedArray.
 */
import { formatDevice, parseDevice, type Device } from '../core/index.js';

export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** c10::ScalarType enum values (stable across libtorch releases). */
export const DTYPE_CODES: Readonly<Record<DType, number>> = Object.freeze({
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15,
});

const DTYPE_BY_CODE: readonly (DType | undefined)[] = (() => {
  const table: (DType | undefined)[] = [];
  for (const [name, code] of Object.entries(DTYPE_CODES)) table[code] = name as DType;
  return table;
})();

export function dtypeCode(dtype: DType): number {
  const code = DTYPE_CODES[dtype];
  if (code === undefined) {
    throw new TypeError(`unknown dtype '${String(dtype)}': use one of ${Object.keys(DTYPE_CODES).join(', ')}`);
  }
  return code;
}

export function dtypeFromCode(code: number): DType {
  const dtype = DTYPE_BY_CODE[code];
  if (dtype === undefined) throw new TypeError(`the addon returned an unsupported dtype code ${code}`);
  return dtype;
}

export function isFloatingDtype(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

/** Host arrays fromArray accepts. Uint16Array widens to int32 and Uint32Array to int64 (libtorch has neither). */
export type HostArray =
  | Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint8ClampedArray
  | Uint16Array | Uint32Array | BigInt64Array;

export function defaultDtypeOf(data: HostArray | readonly number[]): DType {
  if (Array.isArray(data)) return 'float32';
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return 'uint8';
  if (data instanceof Uint16Array) return 'int32';
  if (data instanceof Uint32Array || data instanceof BigInt64Array) return 'int64';
  throw new TypeError('fromArray: data must be a number[] or a supported TypedArray');
}

const deviceCache = new Map<string, Device>();

/** Parses the addon's device strings ('cpu', 'cuda:0') once each. */
export function deviceFromNative(text: string): Device {
  let device = deviceCache.get(text);
  if (device === undefined) {
    device = Object.freeze(parseDevice(text));
    deviceCache.set(text, device);
  }
  return device;
}

export function deviceToNative(device: Device | undefined): string {
  return device === undefined ? 'cpu' : formatDevice(device);
}
