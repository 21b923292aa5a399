/**
 * The layers of nnU-Net's networks: Conv3d, ConvTranspose3d, InstanceNorm3d (affine), LayerNorm,
 * Linear, and the containers that give PyTorch's numeric names (Sequential / ModuleList).
 * Each layer keeps its defaults in one DEFAULTS object and takes `device` in its options.
 */
import {
  conv3d,
  convTranspose3d,
  instanceNorm,
  cast,
  layerNorm,
  linear,
  zeros,
  ones,
  type Tensor,
  type Device,
} from '../tensor/index.js';
import { Module, type Parameter } from './module.js';
import { kaimingNormal } from './init.js';

type Triple = [number, number, number];

export interface LayerOptions {
  device?: Device;
}

const CPU: Device = { type: 'cpu' };

function triple(value: number | readonly number[], what: string): Triple {
  if (typeof value === 'number') return [value, value, value];
  if (value.length !== 3) throw new Error(`${what} needs 3 values (z, y, x), got [${value.join(', ')}]`);
  return [value[0]!, value[1]!, value[2]!];
}

export const CONV_DEFAULTS = { stride: 1, bias: true, negativeSlopeForInit: 1e-2 } as const;

/** 3D convolution with 'same' padding (k-1)/2 per axis, as nnU-Net's ConvDropoutNormReLU. */
export class Conv3d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: Triple;
  readonly padding: Triple;
  readonly kernelSize: Triple;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | readonly number[],
    options: LayerOptions & { stride?: number | readonly number[]; bias?: boolean; padding?: number | readonly number[] } = {},
  ) {
    super();
    const device = options.device ?? CPU;
    this.kernelSize = triple(kernelSize, 'kernel size');
    this.stride = triple(options.stride ?? CONV_DEFAULTS.stride, 'stride');
    this.padding = options.padding === undefined ? [0, 1, 2].map((i) => (this.kernelSize[i]! - 1) >> 1) as Triple : triple(options.padding, 'padding');
    this.weight = this.addParameter('weight', kaimingNormal([outChannels, inChannels, ...this.kernelSize], { device }));
    this.bias = options.bias ?? CONV_DEFAULTS.bias ? this.addParameter('bias', zeros([outChannels], { device })) : null;
  }

  forward(x: Tensor): Tensor {
    return conv3d(x, this.weight.value, this.bias?.value ?? null, { stride: this.stride, padding: this.padding });
  }
}

/** Transposed 3D convolution with kernel = stride (nnU-Net's up-sampling). */
export class ConvTranspose3d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: Triple;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | readonly number[],
    options: LayerOptions & { stride?: number | readonly number[]; bias?: boolean } = {},
  ) {
    super();
    const device = options.device ?? CPU;
    const kernel = triple(kernelSize, 'kernel size');
    this.stride = triple(options.stride ?? kernel, 'stride');
    // PyTorch stores transposed-conv weights as [in, out, k...].
    this.weight = this.addParameter('weight', kaimingNormal([inChannels, outChannels, ...kernel], { device }));
    this.bias = options.bias ?? true ? this.addParameter('bias', zeros([outChannels], { device })) : null;
  }

  forward(x: Tensor): Tensor {
    return convTranspose3d(x, this.weight.value, this.bias?.value ?? null, { stride: this.stride });
  }
}

export const INSTANCE_NORM_DEFAULTS = { eps: 1e-5 } as const;

/** InstanceNorm3d(affine=True, track_running_stats=False): weight 1, bias 0 at init. */
export class InstanceNorm3d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly eps: number;

  constructor(channels: number, options: LayerOptions & { eps?: number } = {}) {
    super();
    const device = options.device ?? CPU;
    this.eps = options.eps ?? INSTANCE_NORM_DEFAULTS.eps;
    this.weight = this.addParameter('weight', ones([channels], { device }));
    this.bias = this.addParameter('bias', zeros([channels], { device }));
  }

  forward(x: Tensor): Tensor {
    return instanceNorm(x, this.weight.value, this.bias.value, this.eps);
  }
}

/** LayerNorm over the last dimension(s), elementwise affine. */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly eps: number;
  readonly normalizedShape: number[];

  constructor(normalizedShape: number | number[], options: LayerOptions & { eps?: number } = {}) {
    super();
    const device = options.device ?? CPU;
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    this.eps = options.eps ?? 1e-5;
    this.weight = this.addParameter('weight', ones(this.normalizedShape, { device }));
    this.bias = this.addParameter('bias', zeros(this.normalizedShape, { device }));
  }

  forward(x: Tensor): Tensor {
    // libtorch 1.13's CPU autocast leaves layer_norm's input in bf16 while the affine weights stay
    // fp32, and the kernel refuses mixed dtypes: run the norm in the weights' dtype (fp32), as
    // PyTorch's autocast does for its fp32-policy ops.
    const input = x.dtype === this.weight.value.dtype ? x : cast(x, this.weight.value.dtype);
    return layerNorm(input, this.normalizedShape, this.weight.value, this.bias.value, this.eps);
  }
}

/** Fully connected layer y = x W^T + b, He-initialised like the convolutions. */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, options: LayerOptions & { bias?: boolean } = {}) {
    super();
    const device = options.device ?? CPU;
    this.weight = this.addParameter('weight', kaimingNormal([outFeatures, inFeatures], { device }));
    this.bias = options.bias ?? true ? this.addParameter('bias', zeros([outFeatures], { device })) : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight.value, this.bias?.value ?? null);
  }
}

/** A list of modules named '0', '1', ... (PyTorch's ModuleList / Sequential naming). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];

  constructor(items: readonly M[] = []) {
    super();
    for (const item of items) this.push(item);
  }

  push(item: M): M {
    this.addModule(String(this.items.length), item);
    this.items.push(item);
    return item;
  }

  get length(): number {
    return this.items.length;
  }

  at(index: number): M {
    const item = this.items[index < 0 ? this.items.length + index : index];
    if (item === undefined) throw new RangeError(`ModuleList index ${index} out of range (${this.items.length})`);
    return item;
  }
}
