/**
 * Neural-network ops with torch.nn.functional semantics: convolutions, normalisation, linear,
 * softmax, losses, resampling, padding and pooling. Spatial options take one number per spatial
 * dim (or a single number for all three).
 */
import { binding } from './binding.js';
import { call, h, Tensor } from './tensor.js';

type Triple = number[] | number;

function triple(op: string, name: string, value: Triple | undefined, fallback: number): number[] {
  if (value === undefined) return [fallback, fallback, fallback];
  if (typeof value === 'number') return [value, value, value];
  if (!Array.isArray(value)) throw new TypeError(`${op}: ${name} must be a number or an array of numbers`);
  return value;
}

export interface Conv3dOptions { stride?: Triple; padding?: Triple; dilation?: Triple; groups?: number }

/** F.conv3d: x [N, Cin, D, H, W], weight [Cout, Cin/groups, kD, kH, kW]. */
export function conv3d(x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv3dOptions = {}): Tensor {
  const stride = triple('conv3d', 'stride', options.stride, 1);
  const padding = triple('conv3d', 'padding', options.padding, 0);
  const dilation = triple('conv3d', 'dilation', options.dilation, 1);
  const groups = options.groups ?? 1;
  return call('conv3d', [x, weight, bias], (hs) =>
    binding.conv3d(h(hs, 0), h(hs, 1), hs[2] ?? null, stride, padding, dilation, groups));
}

export interface ConvTranspose3dOptions { stride?: Triple; padding?: Triple; outputPadding?: Triple; groups?: number; dilation?: Triple }

/** F.conv_transpose3d: weight [Cin, Cout/groups, kD, kH, kW]. */
export function convTranspose3d(x: Tensor, weight: Tensor, bias: Tensor | null, options: ConvTranspose3dOptions = {}): Tensor {
  const stride = triple('convTranspose3d', 'stride', options.stride, 1);
  const padding = triple('convTranspose3d', 'padding', options.padding, 0);
  const outputPadding = triple('convTranspose3d', 'outputPadding', options.outputPadding, 0);
  const dilation = triple('convTranspose3d', 'dilation', options.dilation, 1);
  const groups = options.groups ?? 1;
  return call('convTranspose3d', [x, weight, bias], (hs) =>
    binding.convTranspose3d(h(hs, 0), h(hs, 1), hs[2] ?? null, stride, padding, outputPadding, groups, dilation));
}

/** torch.instance_norm with statistics from the input (no running stats), affine when weight/bias given. */
export function instanceNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  return call('instanceNorm', [x, weight, bias], (hs) => binding.instanceNorm(h(hs, 0), hs[1] ?? null, hs[2] ?? null, eps));
}

/**
 * leaky_relu(instance_norm(x, weight, bias, eps), negativeSlope): nnU-Net's norm + non-linearity as
 * one op. Affine float32 on the CPU outside autocast runs the addon's fused kernel with its own
 * backward (three passes over the activation forward, five backward, against five and eight
 * composed), affine bfloat16 (a conv's output under bf16 autocast) its bf16 kernel where the CPU
 * has AVX-512; anything else runs instanceNorm then leaky ReLU in place.
 */
export function instanceNormLeakyRelu(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, negativeSlope: number): Tensor {
  return call('instanceNormLeakyRelu', [x, weight, bias], (hs) => binding.instanceNormLeakyRelu(h(hs, 0), hs[1] ?? null, hs[2] ?? null, eps, negativeSlope));
}

export function layerNorm(x: Tensor, normalizedShape: number[], weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  return call('layerNorm', [x, weight, bias], (hs) =>
    binding.layerNorm(h(hs, 0), normalizedShape, hs[1] ?? null, hs[2] ?? null, eps));
}

/** x @ weight^T + bias, weight [out, in]. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  return call('linear', [x, weight, bias], (hs) => binding.linear(h(hs, 0), h(hs, 1), hs[2] ?? null));
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return call('matmul', [a, b], (hs) => binding.matmul(h(hs, 0), h(hs, 1)));
}

export function softmax(x: Tensor, dim: number): Tensor {
  return call('softmax', [x], (hs) => binding.softmax(h(hs, 0), dim));
}

export function logSoftmax(x: Tensor, dim: number): Tensor {
  return call('logSoftmax', [x], (hs) => binding.logSoftmax(h(hs, 0), dim));
}

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions { ignoreIndex?: number; reduction?: Reduction; weight?: Tensor; labelSmoothing?: number }

/** F.cross_entropy: logits [N, C, ...], target int64 class ids [N, ...] (no channel dim). */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const reduction = options.reduction ?? 'mean';
  const ignoreIndex = options.ignoreIndex ?? -100;
  const labelSmoothing = options.labelSmoothing ?? 0;
  return call('crossEntropy', [logits, target, options.weight], (hs) =>
    binding.crossEntropy(h(hs, 0), h(hs, 1), hs[2] ?? null, reduction, ignoreIndex, labelSmoothing));
}

/** F.nll_loss on log-probabilities [N, C, ...]. */
export function nllLoss(logProbabilities: Tensor, target: Tensor, options: Omit<CrossEntropyOptions, 'labelSmoothing'> = {}): Tensor {
  const reduction = options.reduction ?? 'mean';
  const ignoreIndex = options.ignoreIndex ?? -100;
  return call('nllLoss', [logProbabilities, target, options.weight], (hs) =>
    binding.nllLoss(h(hs, 0), h(hs, 1), hs[2] ?? null, reduction, ignoreIndex));
}

export type InterpolateMode = 'nearest' | 'nearest-exact' | 'trilinear' | 'area' | 'bilinear' | 'linear';

/** F.interpolate to an explicit spatial size ([N, C, ...spatial]). */
export function interpolate(x: Tensor, options: { size: number[]; mode: InterpolateMode; alignCorners?: boolean }): Tensor {
  const linearMode = options.mode === 'trilinear' || options.mode === 'bilinear' || options.mode === 'linear';
  if (options.alignCorners === true && !linearMode) {
    throw new TypeError(`interpolate: alignCorners only applies to linear modes, not '${options.mode}'`);
  }
  const alignCorners = linearMode ? options.alignCorners ?? false : null;
  return call('interpolate', [x], (hs) => binding.interpolate(h(hs, 0), options.size, options.mode, alignCorners));
}

/** F.grid_sample: x [N, C, D, H, W], grid [N, D', H', W', 3] with (x, y, z) in [-1, 1]. */
export function gridSample(x: Tensor, grid: Tensor, options: { mode: 'bilinear' | 'nearest'; paddingMode: 'zeros' | 'border' | 'reflection'; alignCorners: boolean }): Tensor {
  return call('gridSample', [x, grid], (hs) =>
    binding.gridSample(h(hs, 0), h(hs, 1), options.mode, options.paddingMode, options.alignCorners));
}

/** F.pad: pads in torch order, last dim first ([wLeft, wRight, hTop, hBottom, dFront, dBack]). */
export function pad(x: Tensor, pads: number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value = 0): Tensor {
  return call('pad', [x], (hs) => binding.pad(h(hs, 0), pads, mode, value));
}

export function avgPool3d(x: Tensor, kernel: Triple, stride?: Triple, padding?: Triple): Tensor {
  const k = triple('avgPool3d', 'kernel', kernel, 1);
  const s = stride === undefined ? null : triple('avgPool3d', 'stride', stride, 1);
  const p = padding === undefined ? null : triple('avgPool3d', 'padding', padding, 0);
  return call('avgPool3d', [x], (hs) => binding.avgPool3d(h(hs, 0), k, s, p));
}

export function maxPool3d(x: Tensor, kernel: Triple, stride?: Triple, padding?: Triple): Tensor {
  const k = triple('maxPool3d', 'kernel', kernel, 1);
  const s = stride === undefined ? null : triple('maxPool3d', 'stride', stride, 1);
  const p = padding === undefined ? null : triple('maxPool3d', 'padding', padding, 0);
  return call('maxPool3d', [x], (hs) => binding.maxPool3d(h(hs, 0), k, s, p));
}

export function adaptiveAvgPool3d(x: Tensor, outputSize: Triple): Tensor {
  const size = triple('adaptiveAvgPool3d', 'outputSize', outputSize, 1);
  return call('adaptiveAvgPool3d', [x], (hs) => binding.adaptiveAvgPool3d(h(hs, 0), size));
}

/** F.dropout (torch's generator); identity when `train` is false. */
export function dropout(x: Tensor, p: number, train = true): Tensor {
  return call('dropout', [x], (hs) => binding.dropout(h(hs, 0), p, train));
}
