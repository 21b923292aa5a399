/**
 * The one list of architectures (STYLE rules 11 and 16). A checkpoint's sidecar stores
 * `architecture.name` and the options, and planning, training, transfer, inference and the exports
 * all ask this table; no other file switches on an architecture's name. Each entry carries:
 * - `build`: the builder (a pure function of the spec) and `type`, the class it makes;
 * - `keys`: where its encoder, decoder and heads live (dynamic-network-architectures'
 *   key_to_encoder), the transfer rule: frozen-encoder freezes `encoder`, hybrid copies a
 *   checkpoint's `encoder` into `adaptedEncoder`, and no strategy ever copies the `heads`;
 * - `predicts`: whether its output is one label space that prediction can argmax;
 * - `plan`: the fields a plan's network section adds for it (zod pieces, one entry per stage) and
 *   whether training builds it from a plan, or null when no plan names it;
 * - `nnunet`: its dynamic_network_architectures class paths and its own `arch_kwargs`, both
 *   directions (the U-Net family's common kwargs are nnunetArchitecture.ts'), or null;
 * - `nnunetExport`: how `export --format nnunet` writes it (as itself, one task head at a time as
 *   another entry, or refused with the reason);
 * - `onnx`: whether `export --format onnx` writes its graph, or why not.
 * Adding an architecture is its own module plus one entry here.
 */
import { InputError, integer, z, type Device, type InputErrorCode } from '../core/index.js';
import { MultiHeadUNet, PlainConvUNet, type UNetConfig } from './plainConvUNet.js';
import { HybridUNet, type HybridUNetOptions } from './hybridUNet.js';
import { isResidualEncoderConfig, ResidualEncoderUNet } from './residualEncoderUNet.js';

export interface ArchitectureSpec {
  name: ArchitectureName;
  /** ResidualEncoderUNet: a ResidualEncoderUNetConfig (with nBlocksPerStage). */
  config: UNetConfig;
  /** MultiHeadUNet: classes (incl. background) of each task's head. */
  taskClasses?: number[] | null;
  /** HybridUNet options (fusion levels, fusion widths). */
  hybrid?: Omit<HybridUNetOptions, 'device'>;
}

/** Where a network's parts live, by parameter-name prefix. */
export interface ArchitectureKeys {
  encoder: string;
  decoder: string;
  /** The output heads (the layers that depend on the label space; never transferred). */
  heads: readonly string[];
  /** HybridUNet: the encoder that receives a pre-trained encoder. */
  adaptedEncoder?: string;
}

/** What the per-architecture arch_kwargs readers get from the common reader. */
export interface ArchKwargsContext {
  /** JSON path of `arch_kwargs`, for messages. */
  at: string;
  featuresPerStage: readonly unknown[];
  report(path: string, message: string, code?: InputErrorCode): void;
  /** One count for every stage from an int or a list of `count` ints (reported otherwise). */
  uniform(value: unknown, path: string, count: number): number;
}

export interface NnunetArchitecture {
  /** dynamic_network_architectures class paths that build it; export writes the first. */
  classNames: readonly string[];
  /** Its arch_kwargs beyond the U-Net family's common ones. */
  kwargs: readonly string[];
  /** Its own arch_kwargs -> its convs per encoder stage and its own config fields (problems reported). */
  read(kw: Readonly<Record<string, unknown>>, context: ArchKwargsContext): { nConvPerStage: number; fields: Record<string, unknown> };
  /** Its config -> its own arch_kwargs (written between the common head and tail). */
  write(config: UNetConfig): Record<string, unknown>;
}

export interface PlanArchitecture {
  /** Its own fields of a plan's network section (and of its UNetConfig), each a list with one entry per stage. */
  fields: z.ZodRawShape;
  /** Whether training builds it from a plan (else a plan naming it can only predict). */
  trains: boolean;
}

/** `task-heads`: each task's heads (under `taskHeads`<task>.) become the single head of `architecture`, an entry exported as itself. */
export type NnunetExport = { as: 'itself' } | { as: 'task-heads'; architecture: string; taskHeads: string } | { as: 'refused'; reason: string };
export type OnnxSupport = { exportable: true } | { exportable: false; reason: string };

interface ArchitectureEntry {
  /** The class `build` makes (architectureNameOf finds a built network's entry by it). */
  type: abstract new (...args: never[]) => object;
  build: (spec: ArchitectureSpec, device: Device) => PlainConvUNet | MultiHeadUNet | HybridUNet | ResidualEncoderUNet;
  /** Spec fields its builder needs beyond the config (recorded in the sidecar). */
  needs: readonly ('taskClasses' | 'hybrid')[];
  /** The build options a built network records for `needs: ['hybrid']` (read back from the model). */
  record?: (model: object) => Pick<ArchitectureSpec, 'hybrid'>;
  keys: ArchitectureKeys;
  predicts: boolean;
  /** Whether a checkpoint of it can start a transfer strategy. */
  transferSource: boolean;
  plan: PlanArchitecture | null;
  nnunet: NnunetArchitecture | null;
  nnunetExport: NnunetExport;
  onnx: OnnxSupport;
}

const positiveInt = integer().positive();
const isPositiveInt = (value: unknown): value is number => Number.isInteger(value) && (value as number) > 0;
const UNET_KEYS: ArchitectureKeys = { encoder: 'encoder.', decoder: 'decoder.', heads: ['decoder.seg_layers.'] };
const BASIC_BLOCK = ['dynamic_network_architectures.building_blocks.residual.BasicBlockD'];

export const ARCHITECTURES = {
  PlainConvUNet: {
    type: PlainConvUNet,
    build: (spec, device) => new PlainConvUNet(spec.config, { device }),
    needs: [],
    keys: UNET_KEYS,
    predicts: true,
    transferSource: true,
    plan: { fields: {}, trains: true },
    nnunet: {
      classNames: ['dynamic_network_architectures.architectures.unet.PlainConvUNet'],
      kwargs: ['n_conv_per_stage', 'nonlin_first'],
      read(kw, context) {
        if (kw.nonlin_first === true) context.report(`${context.at}.nonlin_first`, 'nonlin_first (conv -> nonlin -> norm) is not supported');
        return { nConvPerStage: context.uniform(kw.n_conv_per_stage, `${context.at}.n_conv_per_stage`, context.featuresPerStage.length), fields: {} };
      },
      write: (config) => ({ n_conv_per_stage: new Array<number>(config.featuresPerStage.length).fill(config.nConvPerStage ?? 2) }),
    },
    nnunetExport: { as: 'itself' },
    onnx: { exportable: true },
  },
  MultiHeadUNet: {
    type: MultiHeadUNet,
    build: (spec, device) => {
      if (!spec.taskClasses) throw new Error('MultiHeadUNet needs taskClasses');
      return new MultiHeadUNet(spec.config, spec.taskClasses, { device });
    },
    needs: ['taskClasses'],
    keys: { ...UNET_KEYS, heads: ['decoder.task_heads.'] },
    predicts: false,
    transferSource: true,
    plan: null,
    nnunet: null,
    nnunetExport: { as: 'task-heads', architecture: 'PlainConvUNet', taskHeads: 'decoder.task_heads.' },
    onnx: { exportable: false, reason: 'it has one head per pre-training task, no single label space' },
  },
  HybridUNet: {
    type: HybridUNet,
    build: (spec, device) => new HybridUNet(spec.config, { ...spec.hybrid, device }),
    needs: ['hybrid'],
    record: (model) => ({ hybrid: { fuseLevels: (model as HybridUNet).fuseLevels } }),
    keys: { encoder: 'dedicated_encoder.', adaptedEncoder: 'adapted_encoder.', decoder: 'decoder.', heads: ['decoder.seg_layers.'] },
    predicts: true,
    transferSource: false,
    plan: null,
    nnunet: null,
    nnunetExport: { as: 'refused', reason: 'a dedicated and an adapted encoder joined by selective fusion units, where nnU-Net v2 has one encoder' },
    onnx: { exportable: false, reason: 'its two encoders and Selective Fusion units are not written as an ONNX graph yet' },
  },
  ResidualEncoderUNet: {
    type: ResidualEncoderUNet,
    build: (spec, device) => {
      if (!isResidualEncoderConfig(spec.config)) throw new Error('ResidualEncoderUNet needs nBlocksPerStage in its config');
      return new ResidualEncoderUNet(spec.config, { device });
    },
    needs: [],
    keys: UNET_KEYS,
    predicts: true,
    transferSource: false,
    /** nBlocksPerStage: BasicBlockD blocks per encoder stage (nConvPerStage is 2, the convs of one block). */
    plan: { fields: { nBlocksPerStage: z.array(positiveInt).min(1) }, trains: false },
    nnunet: {
      classNames: ['dynamic_network_architectures.architectures.unet.ResidualEncoderUNet', 'dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet'],
      kwargs: ['n_blocks_per_stage', 'block', 'bottleneck_channels', 'stem_channels'],
      read(kw, context) {
        const n = context.featuresPerStage.length;
        const at = context.at;
        const blocks = isPositiveInt(kw.n_blocks_per_stage) ? new Array<number>(n).fill(kw.n_blocks_per_stage) : Array.isArray(kw.n_blocks_per_stage) ? kw.n_blocks_per_stage : [];
        if (blocks.length !== n || !blocks.every(isPositiveInt)) context.report(`${at}.n_blocks_per_stage`, `n_blocks_per_stage needs ${n} positive integers`, 'bad-value');
        if (kw.block !== undefined && !BASIC_BLOCK.includes(kw.block as string)) context.report(`${at}.block`, `block '${String(kw.block)}' is not supported (BasicBlockD is)`);
        if (kw.bottleneck_channels !== undefined && kw.bottleneck_channels !== null) context.report(`${at}.bottleneck_channels`, 'bottleneck_channels (BottleneckD) are not supported');
        if (kw.stem_channels !== undefined && kw.stem_channels !== null && kw.stem_channels !== context.featuresPerStage[0]) context.report(`${at}.stem_channels`, 'a stem width other than features_per_stage[0] is not supported');
        return { nConvPerStage: 2, fields: { nBlocksPerStage: blocks as number[] } };
      },
      write: (config) => (isResidualEncoderConfig(config) ? { n_blocks_per_stage: [...config.nBlocksPerStage] } : {}),
    },
    nnunetExport: { as: 'itself' },
    onnx: { exportable: false, reason: 'its residual blocks are not written as an ONNX graph yet' },
  },
} as const satisfies Record<string, ArchitectureEntry>;

export type ArchitectureName = keyof typeof ARCHITECTURES;
export type ArchitectureModel = ReturnType<(typeof ARCHITECTURES)[ArchitectureName]['build']>;

const NAMES = Object.keys(ARCHITECTURES) as ArchitectureName[];
const entry = (name: ArchitectureName): ArchitectureEntry => ARCHITECTURES[name];

/** The architecture a plan names when it names none (lesionseg's own planner plans this one). */
export const DEFAULT_ARCHITECTURE = 'PlainConvUNet' satisfies ArchitectureName;

export function isArchitectureName(name: string): name is ArchitectureName {
  return Object.hasOwn(ARCHITECTURES, name);
}

/** The entry of `name`, or null when the registry does not know it. */
export function architectureEntry(name: string): ArchitectureEntry | null {
  return isArchitectureName(name) ? entry(name) : null;
}

const having = (test: (e: ArchitectureEntry) => boolean): ArchitectureName[] => NAMES.filter((name) => test(entry(name)));

/** The architectures whose output prediction can use (one label space). */
export const PREDICTING_ARCHITECTURES: readonly ArchitectureName[] = having((e) => e.predicts);
/** The names a plan may give its network (entries with a `plan` part). */
export type PlanArchitectureName = { [K in ArchitectureName]: (typeof ARCHITECTURES)[K]['plan'] extends null ? never : K }[ArchitectureName];
/** The architectures a plan may name. */
export const PLAN_ARCHITECTURES = having((e) => e.plan !== null) as [PlanArchitectureName, ...PlanArchitectureName[]];
/** The architectures training builds from a plan. */
export const TRAINABLE_ARCHITECTURES: readonly ArchitectureName[] = having((e) => e.plan?.trains === true);
/** The names whose checkpoints can start a transfer strategy (`transferSource`). */
export type TransferSourceName = { [K in ArchitectureName]: (typeof ARCHITECTURES)[K]['transferSource'] extends true ? K : never }[ArchitectureName];
/** The architectures whose checkpoints can start a transfer strategy. */
export const TRANSFER_SOURCE_ARCHITECTURES = having((e) => e.transferSource) as readonly TransferSourceName[];
/** The names whose entry says `onnx.exportable` (export/onnx.ts keeps one graph writer per name, checked by the compiler). */
export type OnnxArchitectureName = { [K in ArchitectureName]: (typeof ARCHITECTURES)[K]['onnx']['exportable'] extends true ? K : never }[ArchitectureName];
/** The architectures `export --format onnx` writes. */
export const ONNX_EXPORTABLE_ARCHITECTURES: readonly ArchitectureName[] = having((e) => e.onnx.exportable);
/** What `export --format nnunet` accepts, in words ("PlainConvUNet, ... or one task of a MultiHeadUNet"). */
export const NNUNET_EXPORTABLE = NAMES.flatMap((name) => {
  const how = entry(name).nnunetExport;
  return how.as === 'itself' ? [name] : how.as === 'task-heads' ? [`one task of a ${name}`] : [];
});

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type PlanFieldsOf<K extends ArchitectureName> = K extends ArchitectureName ? ((typeof ARCHITECTURES)[K]['plan'] extends { fields: infer F } ? F : object) : never;
/** Every architecture's own plan fields, by name. */
export type PlanFields = UnionToIntersection<PlanFieldsOf<ArchitectureName>>;
/** Every plan field an architecture adds, with its zod piece (optional in the common schema; required for its owner). */
export const PLAN_FIELDS = Object.assign({}, ...NAMES.map((name) => entry(name).plan?.fields ?? {})) as PlanFields;

/** A UNetConfig with any architecture's own fields (each architecture reads those of its entry). */
export type ArchitectureConfig = UNetConfig & { [K in keyof PlanFields]?: PlanFields[K] extends z.ZodType ? z.output<PlanFields[K]> : never };

/** The architecture whose own plan field `field` is, or null. */
export function ownerOfPlanField(field: string): PlanArchitectureName | null {
  return (NAMES.find((name) => Object.hasOwn(entry(name).plan?.fields ?? {}, field)) as PlanArchitectureName | undefined) ?? null;
}

/** The registry name of a dynamic_network_architectures class path, or null. */
export function architectureOfNnunetClass(className: string): ArchitectureName | null {
  return NAMES.find((name) => entry(name).nnunet?.classNames.includes(className) === true) ?? null;
}

/** Every dynamic_network_architectures class path lesionseg builds. */
export const NNUNET_CLASS_NAMES: readonly string[] = NAMES.flatMap((name) => entry(name).nnunet?.classNames ?? []);

/** Where the heads of architecture `name` live. */
export function headPrefixes(name: ArchitectureName): readonly string[] {
  return ARCHITECTURES[name].keys.heads;
}

/** The registry name of a built network. */
export function architectureNameOf(model: object): ArchitectureName {
  const name = NAMES.find((candidate) => model.constructor === entry(candidate).type);
  if (name === undefined) throw new Error(`${model.constructor.name} is not in the architecture registry`);
  return name;
}

/** The sidecar's record of a built network's build options (what its builder needs beyond the config). */
export function buildOptionsOf(model: object): Pick<ArchitectureSpec, 'hybrid'> {
  return entry(architectureNameOf(model)).record?.(model) ?? {};
}

/** The plan-field names of `name` (its own network fields, e.g. nBlocksPerStage). */
function ownFields(name: ArchitectureName): string[] {
  return Object.keys(entry(name).plan?.fields ?? {});
}

/** The fields of `config` that belong to architecture `name` (copied as they are). */
export function ownConfigFields(name: ArchitectureName, config: object): Record<string, unknown> {
  const source = config as Record<string, unknown>;
  return Object.fromEntries(ownFields(name).filter((key) => source[key] !== undefined).map((key) => [key, source[key]]));
}

/** Refuse (InputError, exit 2) a plan architecture training does not build, naming those it does. */
export function assertTrainable(name: string): void {
  if (architectureEntry(name)?.plan?.trains === true) return;
  throw new InputError(`the plan's network is a ${name}; training builds ${TRAINABLE_ARCHITECTURES.join(', ')} plans only (a ${name} can predict)`, { code: 'unsupported-architecture' });
}

export function buildArchitecture(spec: ArchitectureSpec, device: Device = { type: 'cpu' }): ArchitectureModel {
  if (!isArchitectureName(spec.name)) {
    throw new Error(`unknown architecture '${String(spec.name)}' (known: ${NAMES.join(', ')})`);
  }
  return ARCHITECTURES[spec.name].build(spec, device);
}
