/**
 * Weight initialisation as nnU-Net does it: He (kaiming) normal with the leaky-ReLU gain for every
 * convolution and transposed convolution (a = 1e-2, fan_in mode), biases zero.
 */
import { noGrad, randn, mul, scope, type Tensor, type DType, type Device } from '../tensor/index.js';

/** PyTorch's fan_in: dim 1 times the receptive field (for a transposed conv dim 1 is out_channels). */
export function fanIn(shape: readonly number[]): number {
  if (shape.length < 2) throw new Error(`fan_in needs at least 2 dimensions, got [${shape.join(', ')}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return shape[1]! * receptive;
}

/** Standard deviation of kaiming_normal_(w, a, mode='fan_in', nonlinearity='leaky_relu'). */
export function kaimingStd(shape: readonly number[], negativeSlope = 1e-2): number {
  const gain = Math.sqrt(2 / (1 + negativeSlope * negativeSlope));
  return gain / Math.sqrt(fanIn(shape));
}

/** A new tensor drawn from N(0, kaimingStd^2) with libtorch's generator (seed with manualSeed). */
export function kaimingNormal(
  shape: number[],
  options: { negativeSlope?: number; dtype?: DType; device?: Device } = {},
): Tensor {
  const std = kaimingStd(shape, options.negativeSlope ?? 1e-2);
  const device = options.device ?? { type: 'cpu' };
  return scope(() => noGrad(() => mul(randn(shape, { dtype: options.dtype ?? 'float32', device }), std)));
}
