/**
 * nnU-Net's PlainConvUNet as an ONNX graph (opset 17): the same layers as src/models
 * plainConvUNet.ts, node for node, with the weights under their PyTorch names as initializers.
 * Per block Conv (pads (k-1)/2, the stage's stride on its first conv) -> InstanceNormalization
 * (affine: scale = norm.weight, B = norm.bias, epsilon = the config's normEps, 1e-5 by default) ->
 * LeakyRelu (alpha = negativeSlope, 0.01); ConvTranspose (kernel = stride) up-sampling; Concat
 * [up, skip] on the channel axis; only the full-resolution 1x1x1 head (deep supervision off, as
 * inference uses it). Input `input` [batch, C, z, y, x] and output `logits` [batch, K, z, y, x],
 * spatially one patch of the plan; batch is symbolic.
 */
import { CheckpointError } from '../core/index.js';
import { UNET_DEFAULTS, validateUNetConfig, type UNetConfig } from '../models/index.js';
import { hostToFloat32, type HostTensor } from '../nn/index.js';
import type { OnnxInitializer, OnnxNode, OnnxValueInfo } from './onnxProto.js';

/** ONNX operator set the graph is written against (InstanceNormalization-6, LeakyRelu-16, Conv-11, ConvTranspose-11, Concat-13). */
export const ONNX_OPSET = 17;
/** IR version 8 is the one that goes with opset 17. */
export const ONNX_IR_VERSION = 8;
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'logits';

export interface OnnxGraph {
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

/** Builds the node list, pulling each weight by name and checking its shape against the config. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxInitializer[] = [];

  constructor(private readonly weights: ReadonlyMap<string, HostTensor>, private readonly weightsFile: string) {}

  /** The weight `name` as a float32 initializer; its shape must be `shape`. */
  weight(name: string, shape: readonly number[]): string {
    const entry = this.weights.get(name);
    if (entry === undefined) throw new CheckpointError(`the weights have no ${name}, which the recorded architecture needs`, { file: this.weightsFile });
    if (entry.shape.length !== shape.length || entry.shape.some((n, i) => n !== shape[i])) {
      throw new CheckpointError(`${name} has shape [${entry.shape.join(', ')}], the recorded architecture [${shape.join(', ')}]`, { file: this.weightsFile });
    }
    let data = entry.data;
    if (entry.dtype !== 'F32') {
      const values = hostToFloat32(entry);
      data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    }
    this.initializers.push({ name, dims: [...shape], data });
    return name;
  }

  node(opType: string, name: string, inputs: string[], attributes: OnnxNode['attributes'] = []): string {
    const output = `${name}/${opType}`;
    this.nodes.push({ opType, name: `${name}/${opType}`, inputs, outputs: [output], attributes });
    return output;
  }

  /** `prefix`.conv -> `prefix`.norm -> LeakyRelu. */
  convNormAct(prefix: string, x: string, inChannels: number, outChannels: number, kernel: readonly number[], stride: readonly number[], eps: number, slope: number): string {
    const pads = kernel.map((k) => (k - 1) >> 1);
    const conv = this.node('Conv', `${prefix}.conv`, [x, this.weight(`${prefix}.conv.weight`, [outChannels, inChannels, ...kernel]), this.weight(`${prefix}.conv.bias`, [outChannels])], [
      { name: 'kernel_shape', kind: 'ints', value: kernel },
      { name: 'strides', kind: 'ints', value: stride },
      { name: 'pads', kind: 'ints', value: [...pads, ...pads] },
      { name: 'dilations', kind: 'ints', value: [1, 1, 1] },
      { name: 'group', kind: 'int', value: 1 },
    ]);
    const norm = this.node('InstanceNormalization', `${prefix}.norm`, [conv, this.weight(`${prefix}.norm.weight`, [outChannels]), this.weight(`${prefix}.norm.bias`, [outChannels])], [
      { name: 'epsilon', kind: 'float', value: eps },
    ]);
    return this.node('LeakyRelu', `${prefix}.nonlin`, [norm], [{ name: 'alpha', kind: 'float', value: slope }]);
  }
}

/**
 * The PlainConvUNet of `config` with `weights` (PyTorch names) as an ONNX graph taking one patch
 * of `patchSize`. Refuses (CheckpointError naming `weightsFile`) a missing or misshapen weight.
 */
export function plainConvUNetGraph(config: UNetConfig, weights: ReadonlyMap<string, HostTensor>, patchSize: readonly number[], weightsFile: string): OnnxGraph {
  validateUNetConfig(config);
  const g = new GraphBuilder(weights, weightsFile);
  const features = config.featuresPerStage;
  const n = features.length;
  const eps = config.normEps ?? UNET_DEFAULTS.normEps;
  const slope = config.negativeSlope ?? UNET_DEFAULTS.negativeSlope;
  const encoderConvs = config.nConvPerStage ?? UNET_DEFAULTS.nConvPerStage;
  const decoderConvs = config.nConvPerStageDecoder ?? UNET_DEFAULTS.nConvPerStageDecoder;

  let x = ONNX_INPUT;
  let channels = config.inputChannels;
  const skips: string[] = [];
  for (let s = 0; s < n; s++) {
    for (let c = 0; c < encoderConvs; c++) {
      x = g.convNormAct(`encoder.stages.${s}.0.convs.${c}`, x, c === 0 ? channels : features[s]!, features[s]!, config.kernelSizes[s]!, c === 0 ? config.strides[s]! : [1, 1, 1], eps, slope);
    }
    channels = features[s]!;
    skips.push(x);
  }
  for (let s = 0; s < n - 1; s++) {
    const below = features[n - s - 1]!;
    const skip = features[n - s - 2]!;
    const stride = config.strides[n - s - 1]!;
    const prefix = `decoder.transpconvs.${s}`;
    const up = g.node('ConvTranspose', prefix, [x, g.weight(`${prefix}.weight`, [below, skip, ...stride]), g.weight(`${prefix}.bias`, [skip])], [
      { name: 'kernel_shape', kind: 'ints', value: stride },
      { name: 'strides', kind: 'ints', value: stride },
    ]);
    x = g.node('Concat', `decoder.stages.${s}.concat`, [up, skips[n - s - 2]!], [{ name: 'axis', kind: 'int', value: 1 }]);
    for (let c = 0; c < decoderConvs; c++) {
      x = g.convNormAct(`decoder.stages.${s}.convs.${c}`, x, c === 0 ? 2 * skip : skip, skip, config.kernelSizes[n - s - 2]!, [1, 1, 1], eps, slope);
    }
  }
  const head = `decoder.seg_layers.${n - 2}`;
  g.nodes.push({
    opType: 'Conv',
    name: `${head}/Conv`,
    inputs: [x, g.weight(`${head}.weight`, [config.numClasses, features[0]!, 1, 1, 1]), g.weight(`${head}.bias`, [config.numClasses])],
    outputs: [ONNX_OUTPUT],
    attributes: [{ name: 'kernel_shape', kind: 'ints', value: [1, 1, 1] }],
  });
  return {
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [{ name: ONNX_INPUT, dims: ['batch', config.inputChannels, ...patchSize], docString: 'preprocessed patches [batch, channel, z, y, x] in the plan\'s (transposed) axis order' }],
    outputs: [{ name: ONNX_OUTPUT, dims: ['batch', config.numClasses, ...patchSize], docString: 'full-resolution logits [batch, class, z, y, x] (softmax/argmax over class)' }],
  };
}
