/**
 * A network as nnU-Net v2's plans write it (`architecture`: `network_class_name` + `arch_kwargs`
 * of dynamic-network-architectures), both directions, for every registry entry with an `nnunet`
 * part: the U-Net family's common kwargs (stages, widths, kernels, strides, decoder convs, Conv3d,
 * affine InstanceNorm3d, LeakyReLU, no dropout, conv bias) here, the entry's own kwargs through its
 * `read`/`write`. Reading reports every kwarg lesionseg would build differently (with its JSON
 * path) instead of building something else; an unknown class is refused naming the class and the
 * classes the registry builds. Deep supervision is left to the trainer, as nnU-Net does.
 */
import type { InputErrorCode } from '../core/index.js';
import { UNET_DEFAULTS, type UNetConfig } from './plainConvUNet.js';
import { architectureOfNnunetClass, ARCHITECTURES, NNUNET_CLASS_NAMES, ownConfigFields, type ArchitectureConfig, type ArchitectureName, type NnunetArchitecture } from './registry.js';

type Triple = [number, number, number];

/** The conv and norm classes per spatial dimensionality (a 2D network is built as 3D with kernel depth 1). */
const CONV_OPS: Readonly<Record<2 | 3, readonly string[]>> = { 3: ['torch.nn.modules.conv.Conv3d', 'torch.nn.Conv3d'], 2: ['torch.nn.modules.conv.Conv2d', 'torch.nn.Conv2d'] };
const INSTANCE_NORMS: Readonly<Record<2 | 3, readonly string[]>> = {
  3: ['torch.nn.modules.instancenorm.InstanceNorm3d', 'torch.nn.InstanceNorm3d'],
  2: ['torch.nn.modules.instancenorm.InstanceNorm2d', 'torch.nn.InstanceNorm2d'],
};
const LEAKY_RELU = ['torch.nn.LeakyReLU', 'torch.nn.modules.activation.LeakyReLU'];
const COMMON_KWARGS = ['n_stages', 'features_per_stage', 'conv_op', 'kernel_sizes', 'strides', 'n_conv_per_stage_decoder', 'conv_bias', 'norm_op', 'norm_op_kwargs', 'dropout_op', 'dropout_op_kwargs', 'nonlin', 'nonlin_kwargs', 'deep_supervision'];

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isPositiveInt = (value: unknown): value is number => Number.isInteger(value) && (value as number) > 0;

function nnunetOf(name: ArchitectureName): NnunetArchitecture {
  const nnunet: NnunetArchitecture | null = ARCHITECTURES[name].nnunet;
  if (nnunet === null) throw new Error(`${name} has no nnU-Net counterpart`);
  return nnunet;
}

/** `architecture` of an nnU-Net plans configuration for a network of `name` with `config`. */
export function nnunetArchitectureOf(name: ArchitectureName, config: UNetConfig, dims: 2 | 3 = 3): Record<string, unknown> {
  // A 2D network (built with kernel depth 1, see nnunetSpatialDims) is written as nnU-Net's Conv2d one: its slice axis dropped.
  const spatial = (values: readonly number[]): number[] => (dims === 2 ? values.slice(1) : [...values]);
  const nnunet = nnunetOf(name);
  const n = config.featuresPerStage.length;
  const negativeSlope = config.negativeSlope ?? UNET_DEFAULTS.negativeSlope;
  const kwargs = {
    n_stages: n,
    features_per_stage: [...config.featuresPerStage],
    conv_op: `torch.nn.modules.conv.Conv${dims}d`,
    kernel_sizes: config.kernelSizes.map(spatial),
    strides: config.strides.map(spatial),
    ...nnunet.write(config),
    n_conv_per_stage_decoder: new Array<number>(n - 1).fill(config.nConvPerStageDecoder ?? UNET_DEFAULTS.nConvPerStageDecoder),
    conv_bias: true,
    norm_op: `torch.nn.modules.instancenorm.InstanceNorm${dims}d`,
    norm_op_kwargs: { eps: config.normEps ?? UNET_DEFAULTS.normEps, affine: true },
    dropout_op: null,
    dropout_op_kwargs: null,
    nonlin: 'torch.nn.LeakyReLU',
    nonlin_kwargs: { inplace: true, ...(negativeSlope !== 0.01 ? { negative_slope: negativeSlope } : {}) },
  };
  return { network_class_name: nnunet.classNames[0], arch_kwargs: kwargs, _kw_requires_import: ['conv_op', 'norm_op', 'dropout_op', 'nonlin'] };
}

export interface NnunetNetworkContext {
  /** JSON path of `architecture`, for messages. */
  at: string;
  report(path: string, message: string, code?: InputErrorCode): void;
  inputChannels: number;
  numClasses: number;
  /** The configuration's patch (null when malformed): checked for divisibility by the total stride (a 2D patch has 2 entries). */
  patchSize: readonly number[] | null;
}

/**
 * The spatial dimensionality `conv_op` names: 2 for Conv2d (nnU-Net's `2d` configuration), else 3.
 * A 2D network is built as the 3D one with kernel depth 1 and stride 1 along z, run on windows one
 * slice deep: a Conv3d with kernel [1, ky, kx] over a depth-1 input computes exactly the Conv2d
 * (the same products and sums), InstanceNorm3d over [1, y, x] is InstanceNorm2d, and a
 * ConvTranspose3d with kernel [1, sy, sx] is the ConvTranspose2d; the weights gain a size-1 axis.
 */
export function nnunetSpatialDims(architecture: unknown): 2 | 3 {
  const kw = isRecord(architecture) && isRecord(architecture.arch_kwargs) ? architecture.arch_kwargs : {};
  return CONV_OPS[2].includes(kw.conv_op as string) ? 2 : 3;
}

/**
 * An nnU-Net plans `architecture` -> the registry name and the UNetConfig it builds (deep
 * supervision off), reporting every problem through `context.report`. When problems were reported
 * the result holds placeholders and must not be built (the caller throws its ValidationError).
 */
export function networkFromNnunet(architecture: unknown, context: NnunetNetworkContext): { name: ArchitectureName; config: ArchitectureConfig } {
  const { at, report } = context;
  const dims = nnunetSpatialDims(architecture);
  const arch = isRecord(architecture) ? architecture : {};
  const className = String(arch.network_class_name);
  const found = architectureOfNnunetClass(className);
  if (found === null) report(`${at}.network_class_name`, `architecture '${className}' is not supported: lesionseg builds ${NNUNET_CLASS_NAMES.join(', ')}`);
  const name: ArchitectureName = found ?? 'PlainConvUNet';
  const nnunet = nnunetOf(name);
  const kw = isRecord(arch.arch_kwargs) ? arch.arch_kwargs : {};
  const k = `${at}.arch_kwargs`;
  for (const key of Object.keys(kw)) if (found !== null && !COMMON_KWARGS.includes(key) && !nnunet.kwargs.includes(key)) report(`${k}.${key}`, `arch_kwargs '${key}' is not supported for ${name}`);
  const features = Array.isArray(kw.features_per_stage) ? kw.features_per_stage : typeof kw.n_stages === 'number' && isPositiveInt(kw.features_per_stage) ? new Array(kw.n_stages).fill(kw.features_per_stage) : [];
  const n = features.length;
  if (n < 2 || !features.every(isPositiveInt)) report(`${k}.features_per_stage`, 'features_per_stage must list at least 2 positive integers', 'bad-value');
  if (kw.n_stages !== undefined && kw.n_stages !== n) report(`${k}.n_stages`, `n_stages ${String(kw.n_stages)} differs from features_per_stage's ${n} entries`, 'bad-value');
  const perStage = (value: unknown, path: string, odd: boolean): Triple[] => {
    const list = isPositiveInt(value) ? new Array<unknown>(n).fill(value) : Array.isArray(value) ? value : [];
    if (list.length !== n) report(path, `${path} needs ${n} entries`, 'bad-value');
    return list.map((entry, i) => {
      const t = isPositiveInt(entry) ? new Array<number>(dims).fill(entry) : entry;
      if (!Array.isArray(t) || t.length !== dims || !t.every(isPositiveInt) || (odd && t.some((v) => v % 2 === 0))) {
        report(`${path}.${i}`, `${path}.${i} must be ${dims} ${odd ? 'odd ' : ''}positive integers (got ${JSON.stringify(entry)})`, 'bad-value');
        return [1, 1, 1] as Triple;
      }
      // A 2D network's kernels and strides become [1, ky, kx] and [1, sy, sx] (see nnunetSpatialDims).
      return (dims === 2 ? [1, t[0], t[1]] : [t[0], t[1], t[2]]) as Triple;
    });
  };
  const kernelSizes = perStage(kw.kernel_sizes, `${k}.kernel_sizes`, true);
  const strides = perStage(kw.strides, `${k}.strides`, false);
  const divisor = strides.reduce<number[]>((acc, s) => acc.map((v, axis) => v * s[axis]!), [1, 1, 1]);
  const patchSize = context.patchSize === null ? null : context.patchSize.length === 2 ? [1, ...context.patchSize] : context.patchSize;
  if (patchSize !== null && patchSize.some((p, axis) => p % divisor[axis]! !== 0)) report(`${k}.strides`, `the patch [${patchSize.join(', ')}] is not divisible by the total stride [${divisor.join(', ')}]`, 'bad-value');
  const uniform = (value: unknown, path: string, count: number): number => {
    const list = isPositiveInt(value) ? [value] : Array.isArray(value) ? value : [];
    if ((Array.isArray(value) && list.length !== count) || list.length === 0 || !list.every(isPositiveInt)) {
      report(path, `${path} needs ${count} positive integers`, 'bad-value');
      return 1;
    }
    if (new Set(list).size !== 1) report(path, `${path} [${list.join(', ')}] differs between stages; only one count for all stages is supported`);
    return list[0] as number;
  };
  const nConvPerStageDecoder = uniform(kw.n_conv_per_stage_decoder, `${k}.n_conv_per_stage_decoder`, n - 1);
  const own = nnunet.read(kw, { at: k, featuresPerStage: features, report, uniform });
  if (!CONV_OPS[dims].includes(kw.conv_op as string)) report(`${k}.conv_op`, `conv_op '${String(kw.conv_op)}' is not supported (Conv3d and Conv2d are)`);
  if (kw.conv_bias !== true) report(`${k}.conv_bias`, 'conv_bias false is not supported (nnU-Net plans set true)');
  const normKwargs = isRecord(kw.norm_op_kwargs) ? kw.norm_op_kwargs : {};
  if (!INSTANCE_NORMS[dims].includes(kw.norm_op as string)) report(`${k}.norm_op`, `norm_op '${String(kw.norm_op)}' is not supported with conv_op '${String(kw.conv_op)}' (InstanceNorm${dims}d is)`);
  if (normKwargs.affine !== true) report(`${k}.norm_op_kwargs.affine`, 'an instance norm without affine weights is not supported');
  for (const key of Object.keys(normKwargs)) if (key !== 'eps' && key !== 'affine') report(`${k}.norm_op_kwargs.${key}`, `norm_op_kwargs '${key}' is not supported`);
  const normEps = typeof normKwargs.eps === 'number' ? normKwargs.eps : 1e-5;
  if (kw.dropout_op !== null && kw.dropout_op !== undefined) report(`${k}.dropout_op`, `dropout ('${String(kw.dropout_op)}') is not supported`);
  if (!LEAKY_RELU.includes(kw.nonlin as string)) report(`${k}.nonlin`, `nonlin '${String(kw.nonlin)}' is not supported (LeakyReLU is)`);
  const nonlinKwargs = isRecord(kw.nonlin_kwargs) ? kw.nonlin_kwargs : {};
  const negativeSlope = typeof nonlinKwargs.negative_slope === 'number' ? nonlinKwargs.negative_slope : 0.01;
  const config: ArchitectureConfig = {
    inputChannels: context.inputChannels,
    numClasses: context.numClasses,
    featuresPerStage: features as number[],
    kernelSizes,
    strides,
    nConvPerStage: own.nConvPerStage,
    nConvPerStageDecoder,
    ...ownConfigFields(name, own.fields),
    deepSupervision: false,
    negativeSlope,
    normEps,
  };
  return { name, config };
}
