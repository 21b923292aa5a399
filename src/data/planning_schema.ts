/**
 * The plans file (plan.json): our own format, declared as a zod schema (the types below are
 * inferred from it) and validated at the edge. `validatePlan` lists every problem at once (as core
 * Issues, with JSON paths; an unknown key is refused with the valid ones, as plans are ours); `loadPlan` reads and validates a file; `savePlan` writes one
 * atomically. Spacings, shapes and patch sizes are in NETWORK axis order, i.e. after
 * `configuration.transpose.forward` is applied to [z, y, x] (as nnU-Net stores them); with the
 * usual lowest-resolution-z data the transpose is the identity.
 */
import * as fs from 'node:fs';
import { addIssue, ALWAYS, atomicWriteJsonSync, InputError, integer, parseJson, strictObject, ValidationError, z, type Issue } from '../core/index.js';
import { NORMALIZATION_SCHEMES, type NormalizationScheme } from './normalize.js';
import { PRESET_NAMES, type PresetName } from './planning_presets.js';
import { ownerOfPlanField, PLAN_ARCHITECTURES, PLAN_FIELDS, type PlanFields } from '../models/index.js';

export const PLAN_VERSION = 1;

/** nnU-Net's configuration names: a plan's `configuration.name` (absent: 3d_fullres) and the keys of its `configurations`. */
export const CONFIGURATION_NAMES = ['2d', '3d_fullres', '3d_lowres', '3d_cascade_fullres'] as const;
export type ConfigurationName = (typeof CONFIGURATION_NAMES)[number];
export const DEFAULT_CONFIGURATION: ConfigurationName = '3d_fullres';

/** Each architecture's own network fields, optional here and required (with one entry per stage) for the architecture a plan names. */
const OWN_FIELDS = Object.fromEntries(Object.entries(PLAN_FIELDS).map(([key, schema]) => [key, schema.optional()])) as { [K in keyof PlanFields]: z.ZodOptional<PlanFields[K]> };

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const positiveInt = integer().positive();
const positive = z.number().positive().finite();
const finite = z.number().finite();
const text = z.string().min(1);
const triple = <T extends z.ZodType<number>>(item: T) => z.tuple([item, item, item]);
const permutation = z.tuple([integer(), integer(), integer()]).refine((v) => [0, 1, 2].every((axis) => v.includes(axis)), 'must be a permutation of [0, 1, 2]');
/** Our plan is our own format: a key it does not know is a typo, refused with the valid keys. */
const object = strictObject;

export const PlanDatasetSchema = object({
  name: text,
  /** Label name -> value, background 0 included (dataset.json `labels`). */
  labels: z.record(z.string(), integer().min(0).max(127, { error: 'label values must be integers in 0..127' })).superRefine((labels, ctx) => {
    if (isRecord(labels) && !Object.values(labels).includes(0)) addIssue(ctx, 'missing-background', 'labels must hold background 0');
  }, ALWAYS),
  /** Channel index -> name (dataset.json `channel_names`). */
  channelNames: z.record(z.string(), z.string()),
  numTraining: positiveInt,
  fileEnding: text,
});

const IntensityPropertiesSchema = object({ mean: finite, median: finite, std: finite, min: finite, max: finite, percentile_00_5: finite, percentile_99_5: finite });

export const FingerprintSummarySchema = object({
  numCases: positiveInt,
  /** Median spacing of the cases, [z, y, x] before any transpose. */
  medianSpacing: triple(positive),
  /** Median shape after cropping to nonzero, [z, y, x]. */
  medianShapeAfterCrop: triple(positive),
  medianRelativeSizeAfterCropping: finite,
  /** Pooled foreground intensity statistics per channel (nnU-Net's names). */
  foregroundIntensityPropertiesPerChannel: z.array(IntensityPropertiesSchema).min(1),
  /** How the foreground intensities were sampled. */
  intensitySampling: object({ samplesPerCase: integer().min(0), seed: integer(), generator: z.string() }),
  cases: z.array(object({ dataset: z.string(), id: z.string(), spacing: triple(positive), shapeAfterCrop: triple(positive) })),
});

export const ChannelNormalizationSchema = object({
  channel: text,
  scheme: z.enum(NORMALIZATION_SCHEMES as readonly [NormalizationScheme, ...NormalizationScheme[]]),
  useMaskForNorm: z.boolean(),
  /** The pooled foreground statistics CT normalisation uses (present for 'ct'). */
  ct: object({ mean: finite, std: z.number().min(0), percentile_00_5: finite, percentile_99_5: finite }).optional(),
}).superRefine((channel, ctx) => {
  if (isRecord(channel) && channel.scheme === 'ct' && channel.ct === undefined) addIssue(ctx, 'missing-field', "'ct' is required for the ct scheme", ['ct']);
}, ALWAYS);

const interpolationOrder = z.union([z.literal(0), z.literal(1), z.literal(3)]);
const ResampleSettingsSchema = object({
  order: interpolationOrder,
  orderZ: interpolationOrder,
  forceSeparateZ: z.boolean().nullable(),
  anisotropyThreshold: positive,
});

export const NetworkPlanSchema = object({
  architecture: z.enum(PLAN_ARCHITECTURES),
  nStages: positiveInt,
  featuresPerStage: z.array(positiveInt).min(1),
  kernelSizes: z.array(triple(positiveInt)).min(1),
  strides: z.array(triple(positiveInt)).min(1),
  /** Convs per encoder stage (a residual encoder: 2, the convs of one residual block). */
  nConvPerStage: positiveInt,
  nConvPerStageDecoder: positiveInt,
  /** The architectures' own fields (the registry's `plan.fields`, e.g. ResidualEncoderUNet's nBlocksPerStage). */
  ...OWN_FIELDS,
  convBias: z.boolean(),
  norm: object({ kind: z.literal('instance'), eps: positive, affine: z.boolean() }),
  nonlin: object({ kind: z.literal('leaky_relu'), negativeSlope: finite }),
}).superRefine((network, ctx) => {
  if (!isRecord(network) || !Number.isInteger(network.nStages)) return;
  const nStages = network.nStages as number;
  for (const key of Object.keys(PLAN_FIELDS)) {
    if (ownerOfPlanField(key) === network.architecture && (network as Record<string, unknown>)[key] === undefined) addIssue(ctx, 'missing-field', `'${key}' is required for ${String(network.architecture)}`, [key]);
  }
  for (const key of ['featuresPerStage', 'kernelSizes', 'strides', ...Object.keys(PLAN_FIELDS)]) {
    const list = (network as Record<string, unknown>)[key];
    if (Array.isArray(list) && list.length !== nStages) addIssue(ctx, 'bad-value', `${key} has ${list.length} entries, nStages is ${nStages}`, [key]);
  }
}, ALWAYS);

export const PlanConfigurationSchema = object({
  patchSize: triple(positiveInt),
  batchSize: positiveInt,
  targetSpacing: triple(positive),
  /** Median shape of the cases resampled to the target spacing (network order). */
  medianShape: triple(positive),
  transpose: object({ forward: permutation, backward: permutation }),
  normalization: z.array(ChannelNormalizationSchema).min(1),
  resampling: object({ data: ResampleSettingsSchema, segmentation: ResampleSettingsSchema }),
  network: NetworkPlanSchema,
  deepSupervision: z.boolean(),
  batchDice: z.boolean(),
  /** The planner's memory proxy for this patch (nnU-Net's compute_conv_feature_map_size). */
  vramEstimate: z.number().min(0),
  /**
   * 2: a 2D network (nnU-Net's `2d` configuration) run slice by slice along axis 0: patchSize[0],
   * the kernels and the strides along axis 0 are 1, and each case keeps its own slice spacing
   * (targetSpacing[0] is not used). Absent: 3.
   */
  spatialDims: z.union([z.literal(2), z.literal(3)]).optional(),
  /**
   * nnU-Net's cascade (3d_cascade_fullres): the configuration of the previous stage, whose
   * segmentation of the case, one-hot over its foreground labels, follows the image channels.
   */
  previousStage: z.string().optional(),
  /** nnU-Net's name of this configuration (absent: 3d_fullres). */
  name: z.enum(CONFIGURATION_NAMES).optional(),
});

export const PlanSchema = object({
  version: z.literal(PLAN_VERSION),
  preset: z.enum(PRESET_NAMES as [PresetName, ...PresetName[]]),
  datasets: z.array(PlanDatasetSchema).min(1),
  fingerprint: FingerprintSummarySchema,
  configuration: PlanConfigurationSchema,
  /**
   * The other configurations the planner made, by nnU-Net's name (as nnU-Net's planner makes them:
   * 2d always, 3d_lowres and 3d_cascade_fullres only when it keeps a low resolution). Training
   * picks one with --configuration (selectConfiguration, planning_configurations.ts).
   */
  configurations: z.partialRecord(z.enum(CONFIGURATION_NAMES), PlanConfigurationSchema).optional(),
}).superRefine((plan, ctx) => {
  // Each dataset's channels are the ones the configuration normalises.
  if (!isRecord(plan) || !Array.isArray(plan.datasets) || !isRecord(plan.configuration) || !Array.isArray(plan.configuration.normalization)) return;
  const normalised = plan.configuration.normalization.length;
  plan.datasets.forEach((dataset: unknown, i) => {
    if (!isRecord(dataset) || !isRecord(dataset.channelNames)) return;
    const count = Object.keys(dataset.channelNames).length;
    if (count !== normalised) addIssue(ctx, 'channel-mismatch', `dataset ${i} has ${count} channel(s), the configuration normalises ${normalised}`, ['datasets', i, 'channelNames']);
  });
  // Each other configuration is named by its key, and none repeats the main one.
  const main = (plan.configuration.name as string | undefined) ?? DEFAULT_CONFIGURATION;
  for (const [key, other] of Object.entries(isRecord(plan.configurations) ? plan.configurations : {})) {
    if (key === main) addIssue(ctx, 'bad-value', `'${key}' is the plan's configuration already`, ['configurations', key]);
    if (isRecord(other) && other.name !== undefined && other.name !== key) addIssue(ctx, 'bad-value', `names '${String(other.name)}' under the key '${key}'`, ['configurations', key, 'name']);
  }
}, ALWAYS);

export type PlanDataset = z.output<typeof PlanDatasetSchema>;
export type FingerprintSummary = z.output<typeof FingerprintSummarySchema>;
export type ChannelNormalizationPlan = z.output<typeof ChannelNormalizationSchema>;
export type NetworkPlan = z.output<typeof NetworkPlanSchema>;
export type PlanConfiguration = z.output<typeof PlanConfigurationSchema>;
export type Plan = z.output<typeof PlanSchema>;

/** Every problem with a parsed plan, reported against `file`. Empty when the plan is valid. */
export function validatePlan(json: unknown, file = 'plan.json'): Issue[] {
  const result = parseJson(PlanSchema, json, file);
  return result.ok ? [] : result.issues;
}

/** Read and validate a plan file; a ValidationError lists every problem. */
export function loadPlan(file: string): Plan {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new InputError('cannot read the plan file', { file, code: 'not-found', cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`the plan is not valid JSON (${(cause as Error).message})`, { file, code: 'bad-json', cause });
  }
  const result = parseJson(PlanSchema, json, file);
  if (!result.ok) throw new ValidationError(result.issues, { file });
  return result.value;
}

/** Validate, then write the plan atomically. */
export function savePlan(file: string, plan: Plan): void {
  const issues = validatePlan(plan, file);
  if (issues.length > 0) throw new ValidationError(issues, { file });
  atomicWriteJsonSync(file, plan);
}
