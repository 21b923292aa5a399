/** Tensor creation: from host arrays (always a copy), constants, random (torch's generator), ranges. */
import type { Device } from '../core/index.js';
import { binding } from './binding.js';
import { defaultDtypeOf, deviceToNative, dtypeCode, type DType, type HostArray } from './dtype.js';
import { call, h, Tensor } from './tensor.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

function finish(tensor: Tensor, options: TensorOptions | undefined): Tensor {
  if (options?.requiresGrad === true) tensor.setRequiresGrad(true);
  return tensor;
}

function checkShape(op: string, shape: readonly number[]): void {
  if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
    throw new TypeError(`${op}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
}

/**
 * Copies host data into a new tensor of `shape`. The dtype defaults from the array type
 * (number[] -> float32); `options.dtype` converts (e.g. a Float32Array into bfloat16, a Uint8Array into bool).
 */
export function fromArray(data: HostArray | readonly number[], shape: number[], options?: TensorOptions): Tensor {
  checkShape('fromArray', shape);
  const dtype = options?.dtype ?? defaultDtypeOf(data);
  const host = Array.isArray(data) ? Float64Array.from(data as readonly number[]) : (data as HostArray);
  const device = deviceToNative(options?.device);
  return finish(call('fromArray', [], () => binding.fromTypedArray(host, shape, dtypeCode(dtype), device)), options);
}

function constant(op: 'zeros' | 'ones' | 'randn' | 'rand', shape: number[], options?: TensorOptions): Tensor {
  checkShape(op, shape);
  const dtype = dtypeCode(options?.dtype ?? 'float32');
  const device = deviceToNative(options?.device);
  return finish(call(op, [], () => binding[op](shape, dtype, device)), options);
}

export function zeros(shape: number[], options?: TensorOptions): Tensor {
  return constant('zeros', shape, options);
}

export function ones(shape: number[], options?: TensorOptions): Tensor {
  return constant('ones', shape, options);
}

export function full(shape: number[], value: number, options?: TensorOptions): Tensor {
  checkShape('full', shape);
  const dtype = dtypeCode(options?.dtype ?? 'float32');
  const device = deviceToNative(options?.device);
  return finish(call('full', [], () => binding.full(shape, value, dtype, device)), options);
}

/** Standard normal samples from torch's default generator (seed it with manualSeed). */
export function randn(shape: number[], options?: TensorOptions): Tensor {
  return constant('randn', shape, options);
}

/** Uniform [0, 1) samples from torch's default generator. */
export function rand(shape: number[], options?: TensorOptions): Tensor {
  return constant('rand', shape, options);
}

/** [start, end) in steps; int64 when all of start/end/step are integers (like torch), else float32. */
export function arange(start: number, end: number, step = 1, options?: TensorOptions): Tensor {
  const integral = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  const dtype = dtypeCode(options?.dtype ?? (integral ? 'int64' : 'float32'));
  const device = deviceToNative(options?.device);
  return finish(call('arange', [], () => binding.arange(start, end, step, dtype, device)), options);
}

export function zerosLike(x: Tensor): Tensor {
  return call('zerosLike', [x], (hs) => binding.zerosLike(h(hs, 0)));
}

export function onesLike(x: Tensor): Tensor {
  return call('onesLike', [x], (hs) => binding.onesLike(h(hs, 0)));
}
