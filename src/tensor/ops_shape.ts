/** Reductions, joins, views and re-layouts, indexing, dtype/device moves. */
import type { Device } from '../core/index.js';
import { binding, type NativeHandle } from './binding.js';
import { deviceToNative, dtypeCode, type DType } from './dtype.js';
import { call, h, Tensor } from './tensor.js';

/** Sum over `dims` (every dim when omitted); integer inputs sum to int64 like torch. */
export function sum(x: Tensor, dims?: number[], keepDim = false): Tensor {
  return call('sum', [x], (hs) => binding.sum(h(hs, 0), dims ?? null, keepDim));
}

export function mean(x: Tensor, dims?: number[], keepDim = false): Tensor {
  return call('mean', [x], (hs) => binding.mean(h(hs, 0), dims ?? null, keepDim));
}

export function amax(x: Tensor, dims: number[], keepDim = false): Tensor {
  return call('amax', [x], (hs) => binding.amax(h(hs, 0), dims, keepDim));
}

export function amin(x: Tensor, dims: number[], keepDim = false): Tensor {
  return call('amin', [x], (hs) => binding.amin(h(hs, 0), dims, keepDim));
}

/** Largest element as a scalar tensor. */
export const max = (x: Tensor): Tensor => call('max', [x], (hs) => binding.max(h(hs, 0)));
export const min = (x: Tensor): Tensor => call('min', [x], (hs) => binding.min(h(hs, 0)));
/** L2 norm over all elements, as a scalar tensor. */
export const norm = (x: Tensor): Tensor => call('norm', [x], (hs) => binding.norm(h(hs, 0)));

export function argmax(x: Tensor, dim: number, keepDim = false): Tensor {
  return call('argmax', [x], (hs) => binding.argmax(h(hs, 0), dim, keepDim));
}

export function cat(tensors: Tensor[], dim: number): Tensor {
  return call('cat', tensors, (hs) => binding.cat(hs as NativeHandle[], dim));
}

export function stack(tensors: Tensor[], dim: number): Tensor {
  return call('stack', tensors, (hs) => binding.stack(hs as NativeHandle[], dim));
}

/** A view of `length` entries of `dim` from `start`. */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  return call('narrow', [x], (hs) => binding.narrow(h(hs, 0), dim, start, length));
}

/** x[start:end:step] along dim (a view; negative indices count from the end). */
export function slice(x: Tensor, dim: number, start: number, end: number, step = 1): Tensor {
  return call('slice', [x], (hs) => binding.slice(h(hs, 0), dim, start, end, step));
}

export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  return call('indexSelect', [x, index], (hs) => binding.indexSelect(h(hs, 0), dim, h(hs, 1)));
}

export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  return call('gather', [x, index], (hs) => binding.gather(h(hs, 0), dim, h(hs, 1)));
}

/** int64 labels [...] -> int64 one-hot [..., numClasses] like F.one_hot. */
export function oneHot(labels: Tensor, numClasses: number): Tensor {
  return call('oneHot', [labels], (hs) => binding.oneHot(h(hs, 0), numClasses));
}

export const flip = (x: Tensor, dims: number[]): Tensor => call('flip', [x], (hs) => binding.flip(h(hs, 0), dims));
export const permute = (x: Tensor, dims: number[]): Tensor => call('permute', [x], (hs) => binding.permute(h(hs, 0), dims));
export const reshape = (x: Tensor, shape: number[]): Tensor => call('reshape', [x], (hs) => binding.reshape(h(hs, 0), shape));
export const contiguous = (x: Tensor): Tensor => call('contiguous', [x], (hs) => binding.contiguous(h(hs, 0)));
export const unsqueeze = (x: Tensor, dim: number): Tensor => call('unsqueeze', [x], (hs) => binding.unsqueeze(h(hs, 0), dim));
/** Drops size-1 dims (only `dim` when given). */
export const squeeze = (x: Tensor, dim?: number): Tensor => call('squeeze', [x], (hs) => binding.squeeze(h(hs, 0), dim ?? null));
export const expand = (x: Tensor, shape: number[]): Tensor => call('expand', [x], (hs) => binding.expand(h(hs, 0), shape));
export const transpose = (x: Tensor, dim0: number, dim1: number): Tensor =>
  call('transpose', [x], (hs) => binding.transpose(h(hs, 0), dim0, dim1));

/** Moves and/or converts; always a new handle (sharing data when nothing changes, like torch). */
export function to(x: Tensor, options: { device?: Device; dtype?: DType }): Tensor {
  const device = options.device === undefined ? null : deviceToNative(options.device);
  const dtype = options.dtype === undefined ? null : dtypeCode(options.dtype);
  return call('to', [x], (hs) => binding.to(h(hs, 0), device, dtype));
}

export function cast(x: Tensor, dtype: DType): Tensor {
  const code = dtypeCode(dtype);
  return call('cast', [x], (hs) => binding.cast(h(hs, 0), code));
}

export const clone = (x: Tensor): Tensor => call('clone', [x], (hs) => binding.clone(h(hs, 0)));
