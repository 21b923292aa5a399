/**
 * The Selective Fusion unit of Hybrid-encoder Learning (Wang et al.), a two-branch variant of
 * SKNet's selective kernel attention. It merges the features of the Dedicated encoder (Xde, trained
 * on the target data) and of the Adapted encoder (Xad, pre-trained and frozen) at one resolution:
 *
 *   X = Xde + Xad
 *   s = global average pool(X)                 [B, C]
 *   z = LeakyReLU(LayerNorm(W s))              [B, d],  d = max(floor(C / r), minWidth)
 *   a, b = softmax over the two branches of (A z, B z), per channel   [B, C] each, a + b = 1
 *   output = H(a * Xde + b * Xad)              H = conv -> InstanceNorm -> LeakyReLU, C -> C
 *
 * The norm after W works on a vector: the pooled descriptor has no spatial extent left, so an
 * instance norm over it (one value per channel and sample) would subtract each value from itself
 * and zero z. LayerNorm over the d features of each sample is what keeps z informative.
 *
 * Parameter names (under `fusion.{level}.` in HybridUNet): `fc` (W), `norm` (LayerNorm),
 * `fc_a` (A), `fc_b` (B), `block.conv` / `block.norm` (H).
 */
import { Module, Linear, LayerNorm } from '../nn/index.js';
import { add, adaptiveAvgPool3d, leakyRelu, mul, narrow, reshape, softmax, stack, type Tensor, type Device } from '../tensor/index.js';
import { ConvNormAct } from './plainConvUNet.js';

export interface SelectiveFusionOptions {
  /** Reduction ratio r of the squeeze layer W (SKNet's r). */
  reduction?: number;
  /** Floor of the squeeze width d, so that narrow stages (C < r * minWidth) keep a usable attention vector. */
  minWidth?: number;
  /** Kernel of the conv in H. */
  kernelSize?: number[];
  negativeSlope?: number;
  /** Epsilon of the InstanceNorm in H and of the LayerNorm on z. */
  normEps?: number;
  device?: Device;
}

export const SELECTIVE_FUSION_DEFAULTS = { reduction: 16, minWidth: 8, kernelSize: [3, 3, 3], negativeSlope: 0.01, normEps: 1e-5 } as const;

/** The squeeze width d = max(floor(C / r), minWidth). */
export function selectiveFusionWidth(channels: number, reduction: number = SELECTIVE_FUSION_DEFAULTS.reduction, minWidth: number = SELECTIVE_FUSION_DEFAULTS.minWidth): number {
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`selective fusion: channels must be a positive integer, got ${channels}`);
  if (!(reduction >= 1)) throw new RangeError(`selective fusion: reduction must be >= 1, got ${reduction}`);
  if (!Number.isInteger(minWidth) || minWidth < 1) throw new RangeError(`selective fusion: minWidth must be a positive integer, got ${minWidth}`);
  return Math.max(Math.floor(channels / reduction), minWidth);
}

/** The fused features and the per-channel attention weights of each branch (a + b = 1). */
export interface SelectiveFusionResult {
  output: Tensor;
  /** Weight of the Dedicated branch, [B, C]. */
  a: Tensor;
  /** Weight of the Adapted branch, [B, C]. */
  b: Tensor;
}

export class SelectiveFusion extends Module {
  readonly fc: Linear;
  readonly norm: LayerNorm;
  readonly fc_a: Linear;
  readonly fc_b: Linear;
  readonly block: ConvNormAct;
  readonly width: number;
  private readonly negativeSlope: number;

  constructor(readonly channels: number, options: SelectiveFusionOptions = {}) {
    super();
    const device = options.device ?? { type: 'cpu' };
    const eps = options.normEps ?? SELECTIVE_FUSION_DEFAULTS.normEps;
    this.negativeSlope = options.negativeSlope ?? SELECTIVE_FUSION_DEFAULTS.negativeSlope;
    this.width = selectiveFusionWidth(channels, options.reduction, options.minWidth);
    this.fc = this.addModule('fc', new Linear(channels, this.width, { device }));
    this.norm = this.addModule('norm', new LayerNorm(this.width, { eps, device }));
    this.fc_a = this.addModule('fc_a', new Linear(this.width, channels, { device }));
    this.fc_b = this.addModule('fc_b', new Linear(this.width, channels, { device }));
    const kernel = options.kernelSize ?? [...SELECTIVE_FUSION_DEFAULTS.kernelSize];
    this.block = this.addModule('block', new ConvNormAct(channels, channels, kernel, [1, 1, 1], this.negativeSlope, eps, device));
  }

  /** The fused features together with the attention weights (tests and visualisation read a and b). */
  forwardWithAttention(dedicated: Tensor, adapted: Tensor): SelectiveFusionResult {
    const [batch, channels] = dedicated.shape;
    if (dedicated.ndim !== 5 || channels !== this.channels || dedicated.shape.some((v, i) => v !== adapted.shape[i]) || adapted.ndim !== 5) {
      throw new Error(`selective fusion with ${this.channels} channels got branches [${dedicated.shape.join(', ')}] and [${adapted.shape.join(', ')}]`);
    }
    const summed = add(dedicated, adapted);
    const descriptor = reshape(adaptiveAvgPool3d(summed, [1, 1, 1]), [batch!, this.channels]);
    // LayerNorm runs in fp32 under autocast (see nn's LayerNorm).
    const z = leakyRelu(this.norm.forward(this.fc.forward(descriptor)), this.negativeSlope);
    // [B, 2, C]: softmax across the two branches, independently per sample and channel.
    const weights = softmax(stack([this.fc_a.forward(z), this.fc_b.forward(z)], 1), 1);
    const a = reshape(narrow(weights, 1, 0, 1), [batch!, this.channels]);
    const b = reshape(narrow(weights, 1, 1, 1), [batch!, this.channels]);
    const spatial = [batch!, this.channels, 1, 1, 1];
    const merged = add(mul(dedicated, reshape(a, spatial)), mul(adapted, reshape(b, spatial)));
    return { output: this.block.forward(merged), a, b };
  }

  forward(dedicated: Tensor, adapted: Tensor): Tensor {
    return this.forwardWithAttention(dedicated, adapted).output;
  }
}

/** Number of weights of one unit with C channels (W, LayerNorm, A, B and H), for reports and tests. */
export function selectiveFusionParameterCount(channels: number, options: Pick<SelectiveFusionOptions, 'reduction' | 'minWidth' | 'kernelSize'> = {}): number {
  const d = selectiveFusionWidth(channels, options.reduction, options.minWidth);
  const kernel = (options.kernelSize ?? SELECTIVE_FUSION_DEFAULTS.kernelSize).reduce((p, k) => p * k, 1);
  const squeeze = channels * d + d + 2 * d;
  const excite = 2 * (d * channels + channels);
  const block = channels * channels * kernel + channels + 2 * channels;
  return squeeze + excite + block;
}
