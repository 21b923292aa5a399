/**
 * The experiment spec (`lesionseg experiment SPEC.json`): which datasets (folders as imported, or
 * synthetic phantoms to generate), which of them are the non-COVID sources and which the target,
 * the target's split and folds, the pre-trained models (none, one per source, multi-lesion), the
 * strategies, and the training settings. Data validated at the edge (STYLE rule 7): the spec is
 * plain JSON with a `version`; `validateExperimentSpec` collects every problem (unknown keys,
 * unknown strategies or models, bad values) and throws one ValidationError listing all of them.
 * An arm is a strategy or a named variant with options (arms.ts); `seeds` repeats every arm.
 * Relative paths are resolved against the spec file's folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { controlCharacterIn, controlCharacterIssues, InputError, PRECISION_REQUESTS, ValidationError } from '../core/index.js';
import { LESION_KINDS, SYNTH_SIZES, type LesionKind, type SynthSize } from '../synth/index.js';
import { PRESET_NAMES, type PresetName } from '../data/index.js';
import { armToJson, parseArms, type ArmSpec } from './arms.js';
import { Checker, join } from './specCheck.js';

export const SPEC_VERSION = 1;
export const MULTI_LESION = 'multi';
export const NO_PRETRAINING = 'none';
/** auto: bf16 where the CPU has it natively, else fp32, fp16 on CUDA (each step resolves it on its machine). */
export const PRECISIONS = PRECISION_REQUESTS;

export type DatasetSource = { kind: 'folder'; path: string } | { kind: 'synth'; lesion: LesionKind; cases: number; size: SynthSize; seed: number };

/** A split file ({ folds: [{ train, test }] }), or the limited-annotation split: K groups, fold k trains on group k and tests on the rest. */
export type SplitSource = { kind: 'file'; path: string } | { kind: 'limited'; folds: number; seed: number };

export interface TrainingLength {
  epochs: number;
  iterationsPerEpoch: number;
  validationIterations: number;
}

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

export const EXECUTOR_NAMES = ['local', 'slurm'] as const;
export type ExecutorName = (typeof EXECUTOR_NAMES)[number];
export const SLURM_STEP_KINDS = ['pretrain', 'train', 'predict'] as const;

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

const SLURM_RESOURCE_KEYS = ['partition', 'account', 'qos', 'time', 'cpusPerTask', 'memory', 'gpus', 'extra'] as const;

function slurmResources(check: Checker, record: Record<string, unknown>, at: string): Partial<SlurmResources> {
  const out: Partial<SlurmResources> = {};
  for (const key of ['partition', 'account', 'qos', 'time', 'memory'] as const) if (record[key] !== undefined) out[key] = check.string(record, key, at, '');
  if (record.gpus !== undefined) {
    if (typeof record.gpus === 'number' && Number.isInteger(record.gpus) && record.gpus >= 0) out.gpus = String(record.gpus);
    else out.gpus = check.string(record, 'gpus', at, '');
  }
  if (record.cpusPerTask !== undefined) out.cpusPerTask = check.integer(record, 'cpusPerTask', at, 1, 1);
  if (record.extra !== undefined) {
    out.extra = check.stringList(record, 'extra', at);
    out.extra.forEach((option, i) => {
      if (!option.startsWith('-')) check.add(join(join(at, 'extra'), i), 'bad-value', `an sbatch option starts with '-', got ${JSON.stringify(option)}`);
    });
  }
  return out;
}

function slurmSettings(check: Checker, value: unknown): SlurmSettings {
  const record = check.object(value ?? {}, 'slurm') ?? {};
  check.keys(record, 'slurm', [...SLURM_RESOURCE_KEYS, ...SLURM_STEP_KINDS, 'maxResubmits', 'signalSeconds', 'pollSeconds']);
  const base = slurmResources(check, record, 'slurm');
  const steps = {} as SlurmSettings['steps'];
  for (const kind of SLURM_STEP_KINDS) {
    const sub = check.object(record[kind] ?? {}, join('slurm', kind)) ?? {};
    check.keys(sub, join('slurm', kind), SLURM_RESOURCE_KEYS);
    steps[kind] = slurmResources(check, sub, join('slurm', kind));
  }
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
    maxResubmits: check.integer(record, 'maxResubmits', 'slurm', 0, 3),
    signalSeconds: check.integer(record, 'signalSeconds', 'slurm', 1, 300),
    pollSeconds: check.integer(record, 'pollSeconds', 'slurm', 1, 10),
  };
}

const DEFAULT_SLURM: SlurmSettings = slurmSettings(new Checker('defaults'), {});

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

function datasetSource(check: Checker, value: unknown, at: string, baseDir: string): DatasetSource | null {
  const record = check.object(value, at);
  if (record === null) return null;
  if ('path' in record) {
    check.keys(record, at, ['path']);
    return { kind: 'folder', path: resolvePath(check.string(record, 'path', at, '.'), baseDir) };
  }
  const synth = check.object(record.synth, join(at, 'synth'));
  check.keys(record, at, ['path', 'synth']);
  if (synth === null) return null;
  const s = join(at, 'synth');
  check.keys(synth, s, ['kind', 'cases', 'size', 'seed'], ['kind', 'cases']);
  return {
    kind: 'synth',
    lesion: check.choice(synth, 'kind', s, LESION_KINDS, 'covid'),
    cases: check.integer(synth, 'cases', s, 1, 1),
    size: check.choice(synth, 'size', s, SYNTH_SIZES, 'tiny'),
    seed: check.integer(synth, 'seed', s, 0, 0),
  };
}

function splitSource(check: Checker, value: unknown, at: string, baseDir: string): SplitSource {
  if (typeof value === 'string') return { kind: 'file', path: resolvePath(value, baseDir) };
  const record = check.object(value, at);
  if (record === null) return { kind: 'limited', folds: 5, seed: 0 };
  check.keys(record, at, ['limited']);
  const limited = check.object(record.limited, join(at, 'limited'));
  if (limited === null) return { kind: 'limited', folds: 5, seed: 0 };
  check.keys(limited, join(at, 'limited'), ['folds', 'seed']);
  return { kind: 'limited', folds: check.integer(limited, 'folds', join(at, 'limited'), 2, 5), seed: check.integer(limited, 'seed', join(at, 'limited'), 0, 0) };
}

function trainingLength(check: Checker, value: unknown, at: string): TrainingLength {
  const fallback = { epochs: 1, iterationsPerEpoch: 1, validationIterations: 0 };
  const record = check.object(value ?? {}, at);
  if (record === null) return fallback;
  check.keys(record, at, ['epochs', 'iterationsPerEpoch', 'validationIterations'], ['epochs', 'iterationsPerEpoch']);
  return {
    epochs: check.integer(record, 'epochs', at, 1, 1),
    iterationsPerEpoch: check.integer(record, 'iterationsPerEpoch', at, 1, 1),
    validationIterations: check.integer(record, 'validationIterations', at, 0, 0),
  };
}

const TOP_KEYS = ['$schema', 'version', 'name', 'datasets', 'sources', 'target', 'pretrained', 'strategies', 'preset', 'pretraining', 'training', 'seed', 'seeds', 'device', 'precision', 'threads', 'jobs', 'workers', 'prediction', 'executor', 'slurm'] as const;

/** Validate parsed spec JSON; `file` names it in messages and anchors relative paths. Throws a ValidationError with every problem. */
export function validateExperimentSpec(json: unknown, file: string, baseDir: string = path.dirname(path.resolve(file))): ExperimentSpec {
  const check = new Checker(file);
  const top = check.object(json, '');
  if (top === null) throw new ValidationError(check.issues, { file });
  // Values reach sbatch scripts and shells: a control character (a newline) in any of them is refused here (STYLE rule 20).
  for (const issue of controlCharacterIssues(json)) check.add(issue.path, 'control-character', issue.message);
  check.keys(top, '', TOP_KEYS, ['version', 'datasets', 'sources', 'target', 'pretrained', 'strategies', 'pretraining', 'training']);
  if (top.version !== undefined && top.version !== SPEC_VERSION) check.add('version', 'bad-version', `version ${JSON.stringify(top.version)} is not supported (this lesionseg reads version ${SPEC_VERSION})`);

  const datasets: Record<string, DatasetSource> = {};
  const rawDatasets = check.object(top.datasets ?? {}, 'datasets');
  for (const [name, value] of Object.entries(rawDatasets ?? {})) {
    if (!/^[A-Za-z0-9_-]+$/.test(name) || name === MULTI_LESION || name === NO_PRETRAINING) {
      check.add(join('datasets', name), 'bad-name', `dataset names use letters, digits, '-' and '_' and are not '${MULTI_LESION}' or '${NO_PRETRAINING}'`);
    }
    const source = datasetSource(check, value, join('datasets', name), baseDir);
    if (source !== null) datasets[name] = source;
  }
  const names = Object.keys(datasets);
  const known = (name: string, at: string): void => {
    if (!names.includes(name)) check.add(at, 'unknown-dataset', `unknown dataset '${name}' (defined: ${names.join(', ') || 'none'})`);
  };

  const sources = check.stringList(top, 'sources', '');
  sources.forEach((name, i) => known(name, join('sources', i)));

  const targetRecord = check.object(top.target ?? {}, 'target') ?? {};
  check.keys(targetRecord, 'target', ['dataset', 'split', 'folds', 'label', 'toleranceMm', 'lungs'], ['dataset', 'split']);
  const targetName = check.string(targetRecord, 'dataset', 'target', '');
  if (targetName !== '') known(targetName, 'target.dataset');
  if (sources.includes(targetName)) check.add('target.dataset', 'target-is-source', `'${targetName}' is both a source and the target`);
  const split = splitSource(check, targetRecord.split, 'target.split', baseDir);
  const folds = Array.isArray(targetRecord.folds) ? (targetRecord.folds as unknown[]) : targetRecord.folds === undefined ? [0] : null;
  if (folds === null || !folds.every((k) => typeof k === 'number' && Number.isInteger(k) && k >= 0)) check.add('target.folds', 'bad-value', 'must be a list of fold indices (integers >= 0)');
  const foldList = (folds ?? []).filter((k): k is number => typeof k === 'number');
  if (split.kind === 'limited') for (const k of foldList) if (k >= split.folds) check.add('target.folds', 'bad-fold', `fold ${k} does not exist: the split has ${split.folds} folds (0..${split.folds - 1})`);
  const toleranceMm = targetRecord.toleranceMm ?? 3;
  if (typeof toleranceMm !== 'number' || !(toleranceMm >= 0)) check.add('target.toleranceMm', 'bad-value', 'must be a number of mm >= 0');
  const lungs = targetRecord.lungs === undefined || targetRecord.lungs === null ? null : check.string(targetRecord, 'lungs', 'target', '');

  const validModels = [NO_PRETRAINING, ...sources, MULTI_LESION];
  const pretrained = check.stringList(top, 'pretrained', '');
  pretrained.forEach((name, i) => {
    if (!validModels.includes(name)) check.add(join('pretrained', i), 'unknown-model', `unknown pre-trained model '${name}' (valid: ${validModels.join(', ')})`);
  });
  const strategies = parseArms(check, top.strategies, pretrained, NO_PRETRAINING);
  if (strategies.some((a) => a.strategy === 'scratch') !== pretrained.includes(NO_PRETRAINING)) {
    check.add('pretrained', 'scratch-pairing', `'scratch' (strategies) and '${NO_PRETRAINING}' (pretrained) go together: list both or neither`);
  }
  if (strategies.some((a) => a.strategy !== 'scratch') && !pretrained.some((p) => p !== NO_PRETRAINING)) {
    check.add('pretrained', 'no-model', 'transfer strategies need at least one pre-trained model (a source name or multi)');
  }
  if (pretrained.some((p) => p !== NO_PRETRAINING) && sources.length === 0) check.add('sources', 'no-sources', 'pre-trained models need at least one source dataset');

  let seeds: number[] | null = null;
  if (top.seeds !== undefined) {
    const list = Array.isArray(top.seeds) ? (top.seeds as unknown[]) : null;
    if (list === null || list.length === 0 || !list.every((s) => typeof s === 'number' && Number.isInteger(s) && s >= 0)) check.add('seeds', 'bad-value', 'must be a non-empty list of integer seeds >= 0, e.g. [0, 1, 2]');
    else if (new Set(list).size !== list.length) check.add('seeds', 'bad-value', `seeds repeat: ${JSON.stringify(list)}`);
    else seeds = list as number[];
  }

  const prediction = check.object(top.prediction ?? {}, 'prediction') ?? {};
  check.keys(prediction, 'prediction', ['tta']);
  if (prediction.tta !== undefined && typeof prediction.tta !== 'boolean') check.add('prediction.tta', 'bad-value', 'must be true or false');

  const spec: ExperimentSpec = {
    version: SPEC_VERSION,
    name: check.string(top, 'name', '', path.basename(file).replace(/\.json$/i, '')),
    datasets,
    sources,
    target: { dataset: targetName, split, folds: foldList, label: check.integer(targetRecord, 'label', 'target', 1, 1), toleranceMm: typeof toleranceMm === 'number' ? toleranceMm : 3, lungs: lungs === null ? null : resolvePath(lungs, baseDir) },
    pretrained,
    strategies,
    preset: check.choice(top, 'preset', '', PRESET_NAMES, 'cpu'),
    pretraining: trainingLength(check, top.pretraining, 'pretraining'),
    training: trainingLength(check, top.training, 'training'),
    seed: check.integer(top, 'seed', '', 0, 0),
    seeds,
    device: check.string(top, 'device', '', 'cpu'),
    precision: check.choice(top, 'precision', '', PRECISIONS, 'fp32'),
    threads: check.integer(top, 'threads', '', 1, 2),
    jobs: check.integer(top, 'jobs', '', 1, 1),
    workers: check.integer(top, 'workers', '', 0, 0),
    prediction: { tta: prediction.tta === true },
    executor: check.choice(top, 'executor', '', EXECUTOR_NAMES, 'local'),
    slurm: slurmSettings(check, top.slurm),
  };
  if (top.name === undefined && controlCharacterIn(spec.name) !== null) check.add('name', 'control-character', `the study's name defaults to the file's name, which holds the control character ${controlCharacterIn(spec.name)}: give a 'name'`);
  if (check.issues.length > 0) throw new ValidationError(check.issues, { file });
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
