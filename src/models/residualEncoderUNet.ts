/**
 * nnU-Net's ResidualEncoderUNet (dynamic-network-architectures architectures/unet.py; nnU-Net's
 * ResEnc M/L/XL presets, its recommended default since 2024) in 3D, with PyTorch's module names:
 * - a stem `encoder.stem.convs.0` (conv -> InstanceNorm -> LeakyReLU, stride 1, kernel of stage 0);
 * - per stage `encoder.stages.{s}.blocks.{b}` BasicBlockD residual blocks (ResNet-D): `conv1`
 *   (conv with the stage's stride on block 0 -> norm -> LeakyReLU), `conv2` (conv -> norm), a
 *   skip that average-pools by the stride (`skip.0`, no parameters) and projects with a 1x1x1
 *   conv without bias -> norm (`skip.1`, or `skip.0` when not strided) when the shape changes,
 *   then LeakyReLU(conv2 + skip);
 * - nnU-Net's UNetDecoder (transposed convs, conv blocks, 1x1x1 heads), as in PlainConvUNet.
 * The PyTorch state dict also holds aliases (`*.all_modules.*`, `decoder.encoder.*`), which are
 * not parameters here (the checkpoint reader checks and drops them).
 */
import { Conv3d, InstanceNorm3d, Module, ModuleList } from '../nn/index.js';
import { addInPlace, avgPool3d, leakyReluInPlace, scope, type Device, type Tensor } from '../tensor/index.js';
import { applyHeads, ConvNormAct, StackedConvBlocks, UNET_DEFAULTS, UNetDecoder, validateUNetConfig, type NetworkKeys, type UNetConfig } from './plainConvUNet.js';

export interface ResidualEncoderUNetConfig extends UNetConfig {
  /** BasicBlockD blocks per encoder stage (nnU-Net ResEnc: 1, 3, 4, 6, 6, 6, ...). */
  nBlocksPerStage: number[];
}

type Triple = [number, number, number];

export function isResidualEncoderConfig(config: UNetConfig): config is ResidualEncoderUNetConfig {
  return Array.isArray((config as Partial<ResidualEncoderUNetConfig>).nBlocksPerStage);
}

/** conv -> instance norm, no nonlinearity (BasicBlockD's conv2 and its skip projection). */
export class ConvNorm extends Module {
  readonly conv: Conv3d;
  readonly norm: InstanceNorm3d;

  constructor(inChannels: number, outChannels: number, kernelSize: number[], stride: number[], bias: boolean, eps: number, device: Device) {
    super();
    this.conv = this.addModule('conv', new Conv3d(inChannels, outChannels, kernelSize, { stride, bias, device }));
    this.norm = this.addModule('norm', new InstanceNorm3d(outChannels, { eps, device }));
  }

  forward(x: Tensor): Tensor {
    return scope(() => this.norm.forward(this.conv.forward(x)));
  }
}

/** PyTorch's AvgPool3d(stride, stride) at `skip.0`: no parameters, it only holds the index. */
export class AvgPoolStride extends Module {
  constructor(readonly stride: Triple) {
    super();
  }

  forward(x: Tensor): Tensor {
    return avgPool3d(x, this.stride, this.stride);
  }
}

/** One residual block (dynamic-network-architectures building_blocks/residual.py BasicBlockD). */
export class BasicBlockD extends Module {
  readonly conv1: ConvNormAct;
  readonly conv2: ConvNorm;
  readonly skip: ModuleList<Module> | null;
  private readonly pool: AvgPoolStride | null = null;
  private readonly projection: ConvNorm | null = null;

  constructor(inChannels: number, outChannels: number, kernelSize: number[], stride: Triple, private readonly negativeSlope: number, eps: number, device: Device) {
    super();
    this.conv1 = this.addModule('conv1', new ConvNormAct(inChannels, outChannels, kernelSize, stride, negativeSlope, eps, device));
    this.conv2 = this.addModule('conv2', new ConvNorm(outChannels, outChannels, kernelSize, [1, 1, 1], true, eps, device));
    const strided = stride.some((s) => s !== 1);
    const parts: Module[] = [];
    if (strided) parts.push((this.pool = new AvgPoolStride(stride)));
    if (inChannels !== outChannels) parts.push((this.projection = new ConvNorm(inChannels, outChannels, [1, 1, 1], [1, 1, 1], false, eps, device)));
    this.skip = parts.length > 0 ? this.addModule('skip', new ModuleList(parts)) : null;
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      let residual = x;
      if (this.pool !== null) residual = this.pool.forward(residual);
      if (this.projection !== null) residual = this.projection.forward(residual);
      const out = this.conv2.forward(this.conv1.forward(x));
      return leakyReluInPlace(addInPlace(out, residual), this.negativeSlope);
    });
  }
}

/** `blocks.{b}`: the stage's stride on the first block only. */
export class StackedResidualBlocks extends Module {
  readonly blocks: ModuleList<BasicBlockD>;

  constructor(n: number, inChannels: number, outChannels: number, kernelSize: number[], firstStride: Triple, slope: number, eps: number, device: Device) {
    super();
    const blocks: BasicBlockD[] = [];
    for (let b = 0; b < n; b++) blocks.push(new BasicBlockD(b === 0 ? inChannels : outChannels, outChannels, kernelSize, b === 0 ? firstStride : [1, 1, 1], slope, eps, device));
    this.blocks = this.addModule('blocks', new ModuleList(blocks));
  }

  forward(x: Tensor): Tensor {
    let out = x;
    for (const block of this.blocks.items) out = block.forward(out);
    return out;
  }
}

/** The stem and the residual stages; returns every stage's output (the skips, bottleneck last). */
export class ResidualEncoder extends Module {
  readonly stem: StackedConvBlocks;
  readonly stages: ModuleList<StackedResidualBlocks>;

  constructor(config: ResidualEncoderUNetConfig, device: Device) {
    super();
    const slope = config.negativeSlope ?? UNET_DEFAULTS.negativeSlope;
    const eps = config.normEps ?? UNET_DEFAULTS.normEps;
    const stemChannels = config.featuresPerStage[0]!;
    this.stem = this.addModule('stem', new StackedConvBlocks(1, config.inputChannels, stemChannels, config.kernelSizes[0]!, [1, 1, 1], slope, eps, device));
    const stages: StackedResidualBlocks[] = [];
    let inChannels = stemChannels;
    config.featuresPerStage.forEach((features, s) => {
      stages.push(new StackedResidualBlocks(config.nBlocksPerStage[s]!, inChannels, features, config.kernelSizes[s]!, config.strides[s] as Triple, slope, eps, device));
      inChannels = features;
    });
    this.stages = this.addModule('stages', new ModuleList(stages));
  }

  forward(x: Tensor): Tensor[] {
    const skips: Tensor[] = [];
    let out = this.stem.forward(x);
    for (const stage of this.stages.items) {
      out = stage.forward(out);
      skips.push(out);
    }
    return skips;
  }
}

export function validateResidualEncoderConfig(config: ResidualEncoderUNetConfig): void {
  validateUNetConfig(config);
  const n = config.featuresPerStage.length;
  if (config.nBlocksPerStage.length !== n || config.nBlocksPerStage.some((b) => !Number.isInteger(b) || b < 1)) {
    throw new Error(`invalid ResidualEncoderUNet config: nBlocksPerStage must hold ${n} positive integers, got [${config.nBlocksPerStage.join(', ')}]`);
  }
}

export class ResidualEncoderUNet extends Module implements NetworkKeys {
  readonly encoder: ResidualEncoder;
  readonly decoder: UNetDecoder;
  readonly keyToEncoder = 'encoder.';
  readonly keyToDecoder = 'decoder.';
  readonly keyToHeads = ['decoder.seg_layers.'];
  deepSupervision: boolean;

  constructor(readonly config: ResidualEncoderUNetConfig, options: { device?: Device } = {}) {
    super();
    validateResidualEncoderConfig(config);
    const device = options.device ?? { type: 'cpu' };
    this.encoder = this.addModule('encoder', new ResidualEncoder(config, device));
    this.decoder = this.addModule('decoder', new UNetDecoder(config, device));
    this.deepSupervision = config.deepSupervision;
  }

  /** Logits: with deep supervision one per decoder level, full resolution first; else one. */
  forward(x: Tensor): Tensor[] {
    return applyHeads(this.decoder.seg_layers, this.decoder.levels(this.encoder.forward(x), !this.deepSupervision), this.deepSupervision);
  }
}

export function buildResidualEncoderUNet(config: ResidualEncoderUNetConfig, options: { device?: Device } = {}): ResidualEncoderUNet {
  return new ResidualEncoderUNet(config, options);
}
