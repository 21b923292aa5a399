/**
 * nnU-Net's PlainConvUNet in 3D (dynamic-network-architectures), with the same module names so
 * that a PyTorch user can load our weights: per stage n x (conv -> InstanceNorm(affine) ->
 * LeakyReLU 0.01), strided-conv down-sampling, transposed-conv up-sampling (kernel = stride), skip
 * concatenation, a 1x1x1 head per decoder level, deep supervision. The network declares where its
 * encoder, decoder and heads live (keyToEncoder/keyToDecoder/keyToHeads) so transfer works by name.
 */
import { Module, ModuleList, Conv3d, ConvTranspose3d, InstanceNorm3d } from '../nn/index.js';
import { cat, instanceNormLeakyRelu, narrow, scope, type Tensor, type Device } from '../tensor/index.js';

export interface UNetConfig {
  inputChannels: number;
  /** Output classes including background (for a multi-head model: per task, see `taskClasses`). */
  numClasses: number;
  featuresPerStage: number[];
  /** Per stage [kz, ky, kx]. */
  kernelSizes: number[][];
  /** Per stage [sz, sy, sx]; stage 0 is [1, 1, 1]. */
  strides: number[][];
  nConvPerStage?: number;
  nConvPerStageDecoder?: number;
  deepSupervision: boolean;
  negativeSlope?: number;
  normEps?: number;
}

export const UNET_DEFAULTS = { nConvPerStage: 2, nConvPerStageDecoder: 2, negativeSlope: 0.01, normEps: 1e-5 } as const;

export function validateUNetConfig(config: UNetConfig): void {
  const n = config.featuresPerStage.length;
  const problems: string[] = [];
  if (n < 2) problems.push('a U-Net needs at least 2 stages');
  if (config.kernelSizes.length !== n) problems.push(`kernelSizes has ${config.kernelSizes.length} entries, featuresPerStage ${n}`);
  if (config.strides.length !== n) problems.push(`strides has ${config.strides.length} entries, featuresPerStage ${n}`);
  for (const [i, k] of config.kernelSizes.entries()) if (k.length !== 3 || k.some((v) => v < 1 || v % 2 === 0)) problems.push(`kernelSizes[${i}] must be 3 odd positive sizes`);
  for (const [i, s] of config.strides.entries()) if (s.length !== 3 || s.some((v) => v < 1)) problems.push(`strides[${i}] must be 3 positive integers`);
  if (config.inputChannels < 1) problems.push('inputChannels must be >= 1');
  if (config.numClasses < 2) problems.push('numClasses must be >= 2 (background + at least one class)');
  if (problems.length) throw new Error(`invalid U-Net config: ${problems.join('; ')}`);
}

/** conv -> instance norm -> leaky ReLU (nnU-Net's ConvDropoutNormReLU without dropout). */
export class ConvNormAct extends Module {
  readonly conv: Conv3d;
  readonly norm: InstanceNorm3d;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number[],
    stride: number[],
    private readonly negativeSlope: number,
    eps: number,
    device: Device,
  ) {
    super();
    this.conv = this.addModule('conv', new Conv3d(inChannels, outChannels, kernelSize, { stride, bias: true, device }));
    this.norm = this.addModule('norm', new InstanceNorm3d(outChannels, { eps, device }));
  }

  forward(x: Tensor): Tensor {
    // A scope per block frees the conv output's handle at once: without autograd (inference) its
    // memory goes back immediately, as in PyTorch; with autograd the graph keeps what backward needs.
    // Norm and leaky ReLU as one op (the addon's fused kernel where it applies).
    const norm = this.norm;
    return scope(() => instanceNormLeakyRelu(this.conv.forward(x), norm.weight.value, norm.bias.value, norm.eps, this.negativeSlope));
  }
}

/** n ConvNormAct blocks; the first carries the stage's stride. Named `convs.{i}` as in PyTorch. */
export class StackedConvBlocks extends Module {
  readonly convs: ModuleList<ConvNormAct>;

  constructor(n: number, inChannels: number, outChannels: number, kernelSize: number[], firstStride: number[], slope: number, eps: number, device: Device) {
    super();
    const blocks: ConvNormAct[] = [];
    for (let i = 0; i < n; i++) {
      blocks.push(new ConvNormAct(i === 0 ? inChannels : outChannels, outChannels, kernelSize, i === 0 ? firstStride : [1, 1, 1], slope, eps, device));
    }
    this.convs = this.addModule('convs', new ModuleList(blocks));
  }

  forward(x: Tensor): Tensor {
    // Each block's output is released as soon as the next block has used it (as PyTorch's
    // Sequential drops it), not when the caller's scope ends: without this, every encoder stage
    // kept its first block's activation alive until the end of the whole forward pass.
    let out = x;
    for (const block of this.convs.items) {
      const next = block.forward(out);
      if (out !== x) out.dispose();
      out = next;
    }
    return out;
  }
}

/** The encoder: `stages.{s}.0` is a StackedConvBlocks (PyTorch wraps it in a Sequential). Returns every stage's output. */
export class PlainConvEncoder extends Module {
  readonly stages: ModuleList<ModuleList<StackedConvBlocks>>;

  constructor(readonly config: UNetConfig, device: Device) {
    super();
    const n = config.featuresPerStage.length;
    const slope = config.negativeSlope ?? UNET_DEFAULTS.negativeSlope;
    const eps = config.normEps ?? UNET_DEFAULTS.normEps;
    const stages: ModuleList<StackedConvBlocks>[] = [];
    let inChannels = config.inputChannels;
    for (let s = 0; s < n; s++) {
      const features = config.featuresPerStage[s]!;
      stages.push(new ModuleList([new StackedConvBlocks(config.nConvPerStage ?? UNET_DEFAULTS.nConvPerStage, inChannels, features, config.kernelSizes[s]!, config.strides[s]!, slope, eps, device)]));
      inChannels = features;
    }
    this.stages = this.addModule('stages', new ModuleList(stages));
  }

  /** Skips in computation order; the last one is the bottleneck. */
  forward(x: Tensor): Tensor[] {
    const skips: Tensor[] = [];
    let out = x;
    for (const stage of this.stages.items) {
      out = stage.at(0).forward(out);
      skips.push(out);
    }
    return skips;
  }
}

/** The decoder without heads: up-sampling and merging, from the bottleneck up. */
export class UNetDecoderBody extends Module {
  readonly stages: ModuleList<StackedConvBlocks>;
  readonly transpconvs: ModuleList<ConvTranspose3d>;

  constructor(config: UNetConfig, device: Device) {
    super();
    const features = config.featuresPerStage;
    const n = features.length;
    const slope = config.negativeSlope ?? UNET_DEFAULTS.negativeSlope;
    const eps = config.normEps ?? UNET_DEFAULTS.normEps;
    const stages: StackedConvBlocks[] = [];
    const transpconvs: ConvTranspose3d[] = [];
    for (let s = 1; s < n; s++) {
      const below = features[n - s]!;
      const skip = features[n - s - 1]!;
      const stride = config.strides[n - s]!;
      transpconvs.push(new ConvTranspose3d(below, skip, stride, { stride, bias: true, device }));
      stages.push(new StackedConvBlocks(config.nConvPerStageDecoder ?? UNET_DEFAULTS.nConvPerStageDecoder, 2 * skip, skip, config.kernelSizes[n - s - 1]!, [1, 1, 1], slope, eps, device));
    }
    this.stages = this.addModule('stages', new ModuleList(stages));
    this.transpconvs = this.addModule('transpconvs', new ModuleList(transpconvs));
  }

  /**
   * Features of each decoder level, lowest resolution first (the order of the heads); with
   * `onlyLast` only the full-resolution level, each lower one freed once the next is computed.
   */
  forward(skips: readonly Tensor[], onlyLast = false): Tensor[] {
    const levels: Tensor[] = [];
    let x = skips[skips.length - 1]!;
    for (let s = 0; s < this.stages.length; s++) {
      const skip = skips[skips.length - s - 2]!;
      const below = x;
      x = scope(() => {
        // The up-sampled features and their concatenation with the skip are freed as soon as they
        // have been used, as in PyTorch's decoder (at full resolution each is a patch-sized map).
        const up = this.transpconvs.at(s).forward(below);
        const merged = cat([up, skip], 1);
        up.dispose();
        const out = this.stages.at(s).forward(merged);
        merged.dispose();
        return out;
      });
      if (onlyLast && s > 0) levels.pop()!.dispose();
      levels.push(x);
    }
    return levels;
  }
}

/** One 1x1x1 head per decoder level (lowest resolution first, as PyTorch's seg_layers). */
export function buildHeads(config: UNetConfig, numClasses: number, device: Device): ModuleList<Conv3d> {
  const features = config.featuresPerStage;
  const heads: Conv3d[] = [];
  for (let s = 1; s < features.length; s++) heads.push(new Conv3d(features[features.length - s - 1]!, numClasses, 1, { bias: true, device }));
  return new ModuleList(heads);
}

/** Apply heads to decoder levels: all of them (deep supervision, full resolution first) or only the last. */
export function applyHeads(heads: ModuleList<Conv3d>, levels: readonly Tensor[], deepSupervision: boolean): Tensor[] {
  if (!deepSupervision) return [heads.at(-1).forward(levels[levels.length - 1]!)];
  const outputs = levels.map((level, i) => heads.at(i).forward(level));
  return outputs.reverse();
}

/** PyTorch's UNetDecoder: body + seg_layers (its `decoder.encoder` alias of the encoder is not stored). */
export class UNetDecoder extends Module {
  readonly stages: ModuleList<StackedConvBlocks>;
  readonly transpconvs: ModuleList<ConvTranspose3d>;
  readonly seg_layers: ModuleList<Conv3d>;
  private readonly body: UNetDecoderBody;

  constructor(config: UNetConfig, device: Device) {
    super();
    // Register the body's children directly so names are decoder.stages / decoder.transpconvs as in PyTorch.
    this.body = new UNetDecoderBody(config, device);
    this.stages = this.addModule('stages', this.body.stages);
    this.transpconvs = this.addModule('transpconvs', this.body.transpconvs);
    this.seg_layers = this.addModule('seg_layers', buildHeads(config, config.numClasses, device));
  }

  levels(skips: readonly Tensor[], onlyLast = false): Tensor[] {
    return this.body.forward(skips, onlyLast);
  }
}

/** Where a network's parts live, by parameter-name prefix (dynamic-network-architectures' key_to_encoder). */
export interface NetworkKeys {
  keyToEncoder: string;
  keyToDecoder: string;
  keyToHeads: string[];
}

export class PlainConvUNet extends Module implements NetworkKeys {
  readonly encoder: PlainConvEncoder;
  readonly decoder: UNetDecoder;
  readonly keyToEncoder = 'encoder.';
  readonly keyToDecoder = 'decoder.';
  readonly keyToHeads = ['decoder.seg_layers.'];
  deepSupervision: boolean;

  constructor(readonly config: UNetConfig, options: { device?: Device } = {}) {
    super();
    validateUNetConfig(config);
    const device = options.device ?? { type: 'cpu' };
    this.encoder = this.addModule('encoder', new PlainConvEncoder(config, device));
    this.decoder = this.addModule('decoder', new UNetDecoder(config, device));
    this.deepSupervision = config.deepSupervision;
  }

  /** Logits: with deep supervision one per decoder level, full resolution first; else one. */
  forward(x: Tensor): Tensor[] {
    return applyHeads(this.decoder.seg_layers, this.decoder.levels(this.encoder.forward(x), !this.deepSupervision), this.deepSupervision);
  }
}

export function buildPlainConvUNet(config: UNetConfig, options: { device?: Device } = {}): PlainConvUNet {
  return new PlainConvUNet(config, options);
}

/**
 * Multi-task U-Net: one shared encoder-decoder and one set of heads per task
 * (`decoder.task_heads.{task}.{level}`), for multi-lesion pre-training.
 */
export class MultiHeadUNet extends Module implements NetworkKeys {
  readonly encoder: PlainConvEncoder;
  readonly decoder: MultiHeadDecoder;
  readonly keyToEncoder = 'encoder.';
  readonly keyToDecoder = 'decoder.';
  readonly keyToHeads = ['decoder.task_heads.'];
  deepSupervision: boolean;

  constructor(readonly config: UNetConfig, readonly taskClasses: number[], options: { device?: Device } = {}) {
    super();
    validateUNetConfig(config);
    if (taskClasses.length < 1) throw new Error('a multi-head U-Net needs at least one task');
    const device = options.device ?? { type: 'cpu' };
    this.encoder = this.addModule('encoder', new PlainConvEncoder(config, device));
    this.decoder = this.addModule('decoder', new MultiHeadDecoder(config, taskClasses, device));
    this.deepSupervision = config.deepSupervision;
  }

  /**
   * Logits for a batch whose samples belong to tasks `taskOfSample` (one id per sample): the body
   * runs once on the whole batch, each sample goes through its own task's heads. Returns one output
   * list per sample (each a list over deep-supervision levels with batch dimension 1).
   */
  forwardTasks(x: Tensor, taskOfSample: readonly number[]): Tensor[][] {
    if (x.shape[0] !== taskOfSample.length) throw new Error(`batch of ${x.shape[0]} samples but ${taskOfSample.length} task ids`);
    const levels = this.decoder.body.forward(this.encoder.forward(x));
    return taskOfSample.map((task, sample) => {
      const heads = this.decoder.task_heads.at(task);
      const sampleLevels = levels.map((level) => narrow(level, 0, sample, 1));
      return applyHeads(heads, sampleLevels, this.deepSupervision);
    });
  }
}

export class MultiHeadDecoder extends Module {
  readonly body: UNetDecoderBody;
  readonly stages: ModuleList<StackedConvBlocks>;
  readonly transpconvs: ModuleList<ConvTranspose3d>;
  readonly task_heads: ModuleList<ModuleList<Conv3d>>;

  constructor(config: UNetConfig, taskClasses: number[], device: Device) {
    super();
    this.body = new UNetDecoderBody(config, device);
    this.stages = this.addModule('stages', this.body.stages);
    this.transpconvs = this.addModule('transpconvs', this.body.transpconvs);
    this.task_heads = this.addModule('task_heads', new ModuleList(taskClasses.map((classes) => buildHeads(config, classes, device))));
  }
}
