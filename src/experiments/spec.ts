/**
 * The experiment spec (`lesionseg experiment SPEC.json`): which datasets (folders as imported, or
 * synthetic phantoms to generate), which of them are the non-COVID sources and which the target,
 * the target's split and folds, the pre-trained models (none, one per source, multi-lesion), the
 * strategies, and the training settings. Data validated at the edge (STYLE rule 7): the spec is
 * plain JSON with a `version`, declared as a zod schema (specSchema.ts); `validateExperimentSpec`
 * collects every problem (unknown keys, unknown strategies or models, bad values) and throws one
 * ValidationError listing all of them.
 * An arm is a strategy or a named variant with options (arms.ts); `seeds` repeats every arm.
 * Relative paths are resolved against the spec file's folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { controlCharacterIn, controlCharacterIssues, InputError, parseJson, PRECISION_REQUESTS, ValidationError, type Issue } from '../core/index.js';
import type { LesionKind, SynthSize } from '../synth/index.js';
import type { PresetName } from '../data/index.js';
import { armFromJson, armToJson, type ArmSpec } from './arms.js';
import {
  DEFAULT_SLURM_JSON,
  EXECUTOR_NAMES,
  MULTI_LESION,
  NO_PRETRAINING,
  SLURM_STEP_KINDS,
  SPEC_VERSION,
  SpecJsonSchema,
  type DatasetSourceJsonValue,
  type SlurmJsonValue,
  type SlurmResourcesJsonValue,
  type TrainingLength,
} from './specSchema.js';

export { EXECUTOR_NAMES, MULTI_LESION, NO_PRETRAINING, SLURM_STEP_KINDS, SPEC_VERSION, type TrainingLength };
/** auto: bf16 where the CPU has it natively, else fp32, fp16 on CUDA (each step resolves it on its machine). */
export const PRECISIONS = PRECISION_REQUESTS;

export type DatasetSource = { kind: 'folder'; path: string } | { kind: 'synth'; lesion: LesionKind; cases: number; size: SynthSize; seed: number };

/** A split file ({ folds: [{ train, test }] }), or the limited-annotation split: K groups, fold k trains on group k and tests on the rest. */
export type SplitSource = { kind: 'file'; path: string } | { kind: 'limited'; folds: number; seed: number };

export interface ExperimentSpec {
  version: typeof SPEC_VERSION;
  name: string;
  datasets: Record<string, DatasetSource>;
  /** Non-COVID datasets (names in `datasets`) the models are pre-trained on. */
  sources: string[];
  target: { dataset: string; split: SplitSource; folds: number[]; label: number; toleranceMm: number; lungs: string | null };
  /** 'none' (from scratch), a source name (single-lesion) or 'multi' (multi-lesion). */
  pretrained: string[];
  /** The arms: a strategy, or a named variant of one with options (arms.ts). */
  strategies: ArmSpec[];
  preset: PresetName;
  pretraining: TrainingLength;
  training: TrainingLength;
  /** The training seed of a one-seed study; with `seeds`, the seed of the statistics' bootstrap only. */
  seed: number;
  /**
   * Train (and pre-train) every arm once per seed; run folders gain a seed_<s> level. Null: one
   * seed (`seed`), and the folder layout of a one-seed study (no seed level).
   */
  seeds: number[] | null;
  device: string;
  precision: (typeof PRECISIONS)[number];
  /** Intra-op CPU threads of each step (process). */
  threads: number;
  /** Steps (pre-training, training, prediction) run at once, each its own process with `threads` threads. */
  jobs: number;
  workers: number;
  prediction: { tta: boolean };
  /** Where the heavy steps run: child processes here (local), or Slurm jobs (slurm). */
  executor: ExecutorName;
  /** Slurm resources and fault handling (used with executor slurm). */
  slurm: SlurmSettings;
}

export type ExecutorName = (typeof EXECUTOR_NAMES)[number];

/** What one job asks Slurm for; null leaves it to the cluster's defaults (or SBATCH_* variables). */
export interface SlurmResources {
  partition: string | null;
  account: string | null;
  qos: string | null;
  /** Time limit as sbatch reads it: minutes, HH:MM:SS or D-HH:MM:SS. */
  time: string | null;
  /** Default: the spec's threads. */
  cpusPerTask: number | null;
  /** As sbatch --mem reads it: 16G, 4000M. */
  memory: string | null;
  /** As sbatch --gpus reads it (1, a100:1). Default on a cuda device: 1. */
  gpus: string | null;
  /** More sbatch options, one per entry (--constraint=v100). */
  extra: string[];
}

export interface SlurmSettings extends SlurmResources {
  /** Per-step overrides of the resources above. */
  steps: Record<(typeof SLURM_STEP_KINDS)[number], Partial<SlurmResources>>;
  /** Resubmissions of a cancelled, preempted, timed-out or node-failed job in a row without progress. */
  maxResubmits: number;
  /** Slurm sends USR1 this many seconds before the time limit; training saves and exits to be resubmitted (must exceed an epoch). */
  signalSeconds: number;
  /** How often the driver asks Slurm about its jobs. */
  pollSeconds: number;
}

function slurmResources(json: SlurmResourcesJsonValue): Partial<SlurmResources> {
  const out: Partial<SlurmResources> = {};
  for (const key of ['partition', 'account', 'qos', 'time', 'memory', 'cpusPerTask', 'extra'] as const) if (json[key] !== undefined) Object.assign(out, { [key]: json[key] });
  if (json.gpus !== undefined) out.gpus = String(json.gpus);
  return out;
}

function slurmSettings(json: SlurmJsonValue): SlurmSettings {
  const base = slurmResources(json);
  const steps = Object.fromEntries(SLURM_STEP_KINDS.map((kind) => [kind, slurmResources(json[kind])])) as SlurmSettings['steps'];
  return {
    partition: base.partition ?? null,
    account: base.account ?? null,
    qos: base.qos ?? null,
    time: base.time ?? null,
    cpusPerTask: base.cpusPerTask ?? null,
    memory: base.memory ?? null,
    gpus: base.gpus ?? null,
    extra: base.extra ?? [],
    steps,
    maxResubmits: json.maxResubmits,
    signalSeconds: json.signalSeconds,
    pollSeconds: json.pollSeconds,
  };
}

const DEFAULT_SLURM: SlurmSettings = slurmSettings(DEFAULT_SLURM_JSON);

/** The slurm settings as spec JSON: only what differs from the defaults. */
function slurmToJson(settings: SlurmSettings): Record<string, unknown> {
  const resources = (r: Partial<SlurmResources>): Record<string, unknown> => Object.fromEntries(Object.entries(r).filter(([k, v]) => v !== null && v !== undefined && !(k === 'extra' && (v as string[]).length === 0)));
  const steps = Object.fromEntries(SLURM_STEP_KINDS.map((kind) => [kind, resources(settings.steps[kind])]).filter(([, r]) => Object.keys(r as object).length > 0));
  const { steps: _steps, maxResubmits, signalSeconds, pollSeconds, ...base } = settings;
  return { ...resources(base), ...steps, maxResubmits, signalSeconds, pollSeconds };
}

function resolvePath(value: string, baseDir: string): string {
  return path.isAbsolute(value) ? value : path.resolve(baseDir, value);
}

function datasetSource(json: DatasetSourceJsonValue, baseDir: string): DatasetSource {
  if (json.synth === undefined) return { kind: 'folder', path: resolvePath(json.path ?? '.', baseDir) };
  const { kind, cases, size, seed } = json.synth;
  return { kind: 'synth', lesion: kind, cases, size, seed };
}

/**
 * Validate parsed spec JSON (specSchema.ts); `file` names it in messages and anchors relative
 * paths. Throws a ValidationError with every problem.
 */
export function validateExperimentSpec(json: unknown, file: string, baseDir: string = path.dirname(path.resolve(file))): ExperimentSpec {
  const result = parseJson(SpecJsonSchema, json, file, 'brackets');
  // Values reach sbatch scripts and shells: a control character (a newline) in any of them is refused here (STYLE rule 20).
  const textIssues: Issue[] = controlCharacterIssues(json, 'brackets').map((issue) => ({ file, path: issue.path, code: 'control-character', message: issue.message }));
  if (!result.ok || textIssues.length > 0) throw new ValidationError([...(result.ok ? [] : result.issues), ...textIssues], { file });
  const top = result.value;
  const datasets: Record<string, DatasetSource> = {};
  for (const [name, source] of Object.entries(top.datasets)) datasets[name] = datasetSource(source, baseDir);
  const { dataset, split, folds, label, toleranceMm, lungs } = top.target;
  const spec: ExperimentSpec = {
    version: SPEC_VERSION,
    name: top.name ?? path.basename(file).replace(/\.json$/i, ''),
    datasets,
    sources: top.sources,
    target: {
      dataset,
      split: typeof split === 'string' ? { kind: 'file', path: resolvePath(split, baseDir) } : { kind: 'limited', folds: split.limited.folds, seed: split.limited.seed },
      folds,
      label,
      toleranceMm,
      lungs: lungs === null ? null : resolvePath(lungs, baseDir),
    },
    pretrained: top.pretrained,
    strategies: top.strategies.map(armFromJson),
    preset: top.preset,
    pretraining: top.pretraining,
    training: top.training,
    seed: top.seed,
    seeds: top.seeds ?? null,
    device: top.device,
    precision: top.precision,
    threads: top.threads,
    jobs: top.jobs,
    workers: top.workers,
    prediction: { tta: top.prediction.tta },
    executor: top.executor,
    slurm: slurmSettings(top.slurm),
  };
  const defaultName = controlCharacterIn(spec.name);
  if (top.name === undefined && defaultName !== null) {
    throw new ValidationError([{ file, path: 'name', code: 'control-character', message: `the study's name defaults to the file's name, which holds the control character ${defaultName}: give a 'name'` }], { file });
  }
  return spec;
}

/** Read and validate a spec file. */
export function readExperimentSpec(file: string): ExperimentSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new InputError('cannot read the experiment spec', { file, code: 'not-found', cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`not valid JSON: ${(cause as Error).message}`, { file, code: 'bad-json', cause });
  }
  return validateExperimentSpec(json, file);
}

/** The spec as JSON again (the form presets are written in and results.json records). */
export function specToJson(spec: ExperimentSpec): Record<string, unknown> {
  const datasets: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(spec.datasets)) {
    datasets[name] = source.kind === 'folder' ? { path: source.path } : { synth: { kind: source.lesion, cases: source.cases, size: source.size, seed: source.seed } };
  }
  const split = spec.target.split.kind === 'file' ? spec.target.split.path : { limited: { folds: spec.target.split.folds, seed: spec.target.split.seed } };
  return {
    version: spec.version,
    name: spec.name,
    datasets,
    sources: spec.sources,
    target: { ...spec.target, split },
    pretrained: spec.pretrained,
    strategies: spec.strategies.map(armToJson),
    preset: spec.preset,
    pretraining: spec.pretraining,
    training: spec.training,
    seed: spec.seed,
    // Absent for a one-seed study, so that its spec.json reads as it did before seeds existed.
    ...(spec.seeds !== null ? { seeds: spec.seeds } : {}),
    device: spec.device,
    precision: spec.precision,
    threads: spec.threads,
    jobs: spec.jobs,
    workers: spec.workers,
    prediction: spec.prediction,
    // Absent for a local study, so that its spec.json reads as it did before executors existed.
    ...(spec.executor !== 'local' ? { executor: spec.executor } : {}),
    ...(spec.executor !== 'local' || JSON.stringify(spec.slurm) !== JSON.stringify(DEFAULT_SLURM) ? { slurm: slurmToJson(spec.slurm) } : {}),
  };
}
