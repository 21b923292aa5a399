/**
 * The experiment spec's JSON as a zod schema (STYLE rule 7): every key with its type, range and
 * default, unknown keys refused with the valid ones, and the rules across keys (datasets named
 * where they are used, pre-trained models among the sources, the arms' rules of arms.ts, which
 * strategies need which models) stated as refinements, so that one parse lists every problem with
 * its JSON path (`strategies[4].options`). spec.ts turns the parsed JSON into an ExperimentSpec
 * (paths resolved, defaults filled).
 */
import { addIssue, ALWAYS, integer, PRECISION_REQUESTS, strictObject, z } from '../core/index.js';
import { LESION_KINDS, SYNTH_SIZES } from '../synth/index.js';
import { PRESET_NAMES, type PresetName } from '../data/index.js';
import { TRANSFER_STRATEGIES } from '../transfer/index.js';
import { checkArms, DECODER_INITS, FUSE_LEVELS, isStrategy } from './arms.js';

export const SPEC_VERSION = 1;
export const MULTI_LESION = 'multi';
export const NO_PRETRAINING = 'none';
export const EXECUTOR_NAMES = ['local', 'slurm'] as const;
export const SLURM_STEP_KINDS = ['pretrain', 'train', 'predict'] as const;

const int = (minimum: number) => integer().min(minimum);
const text = z.string().min(1);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const SynthJson = strictObject({ kind: z.enum(LESION_KINDS), cases: int(1), size: z.enum(SYNTH_SIZES).default('tiny'), seed: int(0).default(0) });

/** A dataset: a folder as imported ({ path }), or phantoms to generate ({ synth }). */
const DatasetSourceJson = strictObject({ path: text.optional(), synth: SynthJson.optional() }).superRefine((value, ctx) => {
  if (!isRecord(value)) return;
  if (value.path === undefined && value.synth === undefined) addIssue(ctx, 'missing-field', "'path' (a dataset folder) or 'synth' (phantoms) is required");
  if (value.path !== undefined && value.synth !== undefined) addIssue(ctx, 'bad-value', "give 'path' or 'synth', not both");
}, ALWAYS);

const DATASET_NAME = /^[A-Za-z0-9_-]+$/;
const Datasets = z.record(z.string(), DatasetSourceJson).superRefine((datasets, ctx) => {
  if (!isRecord(datasets)) return;
  for (const name of Object.keys(datasets)) {
    if (!DATASET_NAME.test(name) || name === MULTI_LESION || name === NO_PRETRAINING) {
      addIssue(ctx, 'bad-name', `dataset names use letters, digits, '-' and '_' and are not '${MULTI_LESION}' or '${NO_PRETRAINING}'`, [name]);
    }
  }
}, ALWAYS);

/** A split file's path, or the limited-annotation split { limited: { folds, seed } }. */
const SplitJson = z.union([text, strictObject({ limited: strictObject({ folds: int(2).default(5), seed: int(0).default(0) }) })], {
  error: (issue) => (issue.input === undefined ? undefined : 'must be a split file path or { "limited": { "folds": K, "seed": S } }'),
});

const TargetJson = strictObject({
  dataset: text,
  split: SplitJson,
  folds: z.array(int(0), { error: 'must be a list of fold indices (integers >= 0)' }).default([0]),
  label: int(1).default(1),
  toleranceMm: z.number().min(0).default(3),
  lungs: text.nullable().default(null),
});

const TrainingLengthJson = strictObject({ epochs: int(1), iterationsPerEpoch: int(1), validationIterations: int(0).default(0) });

/** What one Slurm job asks for; left out, the cluster's defaults (or SBATCH_* variables). */
const SLURM_RESOURCES = {
  partition: text.optional(),
  account: text.optional(),
  qos: text.optional(),
  /** Time limit as sbatch reads it: minutes, HH:MM:SS or D-HH:MM:SS. */
  time: text.optional(),
  /** Default: the spec's threads. */
  cpusPerTask: int(1).optional(),
  /** As sbatch --mem reads it: 16G, 4000M. */
  memory: text.optional(),
  /** As sbatch --gpus reads it (1, a100:1). Default on a cuda device: 1. */
  gpus: z.union([int(0), text], { error: 'must be a GPU count or an sbatch --gpus value such as "a100:1"' }).optional(),
  /** More sbatch options, one per entry (--constraint=v100). */
  extra: z
    .array(z.string())
    .superRefine((options, ctx) => {
      options.forEach((option, i) => {
        if (!option.startsWith('-')) addIssue(ctx, 'bad-value', `an sbatch option starts with '-', got ${JSON.stringify(option)}`, [i]);
      });
    })
    .optional(),
};
const SlurmResourcesJson = strictObject(SLURM_RESOURCES);

const SlurmJson = strictObject({
  ...SLURM_RESOURCES,
  pretrain: SlurmResourcesJson.prefault({}),
  train: SlurmResourcesJson.prefault({}),
  predict: SlurmResourcesJson.prefault({}),
  /** Resubmissions of a cancelled, preempted, timed-out or node-failed job in a row without progress. */
  maxResubmits: int(0).default(3),
  /** Slurm sends USR1 this many seconds before the time limit; training saves and exits to be resubmitted. */
  signalSeconds: int(1).default(300),
  /** How often the driver asks Slurm about its jobs. */
  pollSeconds: int(1).default(10),
});

const StrategyName = z.string().superRefine((name, ctx) => {
  if (!isStrategy(name)) addIssue(ctx, 'unknown-strategy', `unknown strategy '${name}' (valid: ${TRANSFER_STRATEGIES.join(', ')})`);
});

/** An arm: a strategy's name, or a named variant with options and its own models (arms.ts). */
export const ArmJson = z.union(
  [
    StrategyName,
    strictObject({
      strategy: StrategyName,
      name: text.optional(),
      options: strictObject({ decoderInit: z.enum(DECODER_INITS).optional(), fuseLevels: z.enum(FUSE_LEVELS).optional() }).optional(),
      pretrained: z.array(z.string()).optional(),
    }),
  ],
  { error: 'must be a strategy name or an arm object { strategy, name, options, pretrained }' },
);
export type ArmJsonValue = z.output<typeof ArmJson>;

/** The rules across keys; the value may be malformed anywhere (its other problems are reported too). */
function checkSpec(spec: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(spec)) return;
  const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
  if (typeof spec.version === 'number' && spec.version !== SPEC_VERSION) {
    addIssue(ctx, 'bad-version', `version ${JSON.stringify(spec.version)} is not supported (this lesionseg reads version ${SPEC_VERSION})`, ['version']);
  }
  const names = isRecord(spec.datasets) ? Object.keys(spec.datasets) : [];
  const known = (name: string, at: PropertyKey[]): void => {
    if (!names.includes(name)) addIssue(ctx, 'unknown-dataset', `unknown dataset '${name}' (defined: ${names.join(', ') || 'none'})`, at);
  };
  const sources = strings(spec.sources);
  if (Array.isArray(spec.sources)) spec.sources.forEach((name: unknown, i) => typeof name === 'string' && known(name, ['sources', i]));

  const target = isRecord(spec.target) ? spec.target : {};
  if (typeof target.dataset === 'string' && target.dataset !== '') {
    known(target.dataset, ['target', 'dataset']);
    if (sources.includes(target.dataset)) addIssue(ctx, 'target-is-source', `'${target.dataset}' is both a source and the target`, ['target', 'dataset']);
  }
  const limited = isRecord(target.split) && isRecord(target.split.limited) ? target.split.limited : null;
  if (limited !== null) {
    const folds = Number.isInteger(limited.folds) ? (limited.folds as number) : 5;
    for (const k of Array.isArray(target.folds) ? target.folds : []) {
      if (Number.isInteger(k) && k >= folds) addIssue(ctx, 'bad-fold', `fold ${k} does not exist: the split has ${folds} folds (0..${folds - 1})`, ['target', 'folds']);
    }
  }

  const models = [NO_PRETRAINING, ...sources, MULTI_LESION];
  const pretrained = strings(spec.pretrained);
  if (Array.isArray(spec.pretrained)) {
    spec.pretrained.forEach((name: unknown, i) => {
      if (typeof name === 'string' && !models.includes(name)) addIssue(ctx, 'unknown-model', `unknown pre-trained model '${name}' (valid: ${models.join(', ')})`, ['pretrained', i]);
    });
  }
  const strategies = checkArms(ctx, spec.strategies, pretrained, NO_PRETRAINING);
  if (strategies.includes('scratch') !== pretrained.includes(NO_PRETRAINING)) {
    addIssue(ctx, 'scratch-pairing', `'scratch' (strategies) and '${NO_PRETRAINING}' (pretrained) go together: list both or neither`, ['pretrained']);
  }
  if (strategies.some((s) => s !== 'scratch') && !pretrained.some((p) => p !== NO_PRETRAINING)) {
    addIssue(ctx, 'no-model', 'transfer strategies need at least one pre-trained model (a source name or multi)', ['pretrained']);
  }
  if (pretrained.some((p) => p !== NO_PRETRAINING) && sources.length === 0) addIssue(ctx, 'no-sources', 'pre-trained models need at least one source dataset', ['sources']);
}

export const SpecJsonSchema = strictObject({
  $schema: z.string().optional(),
  version: z.number(),
  /** Default: the spec file's name. */
  name: text.optional(),
  datasets: Datasets,
  /** Non-COVID datasets (names in `datasets`) the models are pre-trained on. */
  sources: z.array(z.string()),
  target: TargetJson,
  /** 'none' (from scratch), a source name (single-lesion) or 'multi' (multi-lesion). */
  pretrained: z.array(z.string()),
  strategies: z.array(ArmJson, { error: (issue) => (issue.input === undefined ? undefined : 'must be a list of strategy names or arm objects { strategy, name, options, pretrained }') }),
  preset: z.enum(PRESET_NAMES as [PresetName, ...PresetName[]]).default('cpu'),
  pretraining: TrainingLengthJson,
  training: TrainingLengthJson,
  seed: int(0).default(0),
  seeds: z
    .array(int(0))
    .min(1, { error: 'must be a non-empty list of integer seeds >= 0, e.g. [0, 1, 2]' })
    .superRefine((seeds, ctx) => {
      if (new Set(seeds).size !== seeds.length) addIssue(ctx, 'bad-value', `seeds repeat: ${JSON.stringify(seeds)}`);
    })
    .optional(),
  device: text.default('cpu'),
  precision: z.enum(PRECISION_REQUESTS).default('fp32'),
  threads: int(1).default(2),
  jobs: int(1).default(1),
  workers: int(0).default(0),
  prediction: strictObject({ tta: z.boolean().default(false) }).prefault({}),
  executor: z.enum(EXECUTOR_NAMES).default('local'),
  slurm: SlurmJson.prefault({}),
}).superRefine(checkSpec, ALWAYS);

export type SpecJson = z.output<typeof SpecJsonSchema>;
export type SlurmJsonValue = z.output<typeof SlurmJson>;
export type SlurmResourcesJsonValue = z.output<typeof SlurmResourcesJson>;
export type DatasetSourceJsonValue = z.output<typeof DatasetSourceJson>;
export type TrainingLength = z.output<typeof TrainingLengthJson>;

/** The slurm settings with every default (what an empty `slurm` means). */
export const DEFAULT_SLURM_JSON: SlurmJsonValue = SlurmJson.parse({});
