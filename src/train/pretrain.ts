/**
 * `lesionseg pretrain` as one entry function: pre-training on the non-COVID source datasets under
 * ONE shared plan (planned jointly over all of them, or given), so that the weights transfer.
 *
 * - single: one PlainConvUNet per source dataset, each in RUN/<dataset>/ (a run folder as
 *   `lesionseg train` writes it), trained from scratch on its dataset's 80% training cases.
 * - multi: one MultiHeadUNet in RUN/ with a head per source dataset (task = position in
 *   --datasets); batches draw each sample's dataset uniformly (balanced across datasets) and each
 *   sample's loss goes to its own head (multiTask.ts).
 *
 * Every dataset is split 80/20 into training and validation cases by a seeded shuffle
 * (chooseValidationCases), written to RUN/split.json as
 * `{ source, seed, validationFraction, datasets: { <name>: { train, validation } } }`; the
 * validation cases only give the pseudo Dice that picks checkpoint_best. RUN/plan.json holds the
 * shared plan, RUN/preprocessed/<dataset>/ the caches (or --preprocessed ROOT/<dataset>/).
 * Every input is validated before anything is written (device, output folders, the dataset check
 * of every source, the plan, caches made with another plan): bad input changes nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteJsonSync, InputError, LOCK_FILE, SILENT_LOGGER, SILENT_PROGRESS, withFolderLock, type ProgressReporter } from '../core/index.js';
import { ignoreLabelOf, listRawCases } from '../io/index.js';
import { checkDatasets, checkPreprocessing, createBatchLoader, getPreset, loadPlan, planDatasets, preprocessDataset, unetConfigFromPlan, type CheckedDataset, type Plan } from '../data/index.js';
import { assertBatchSplits, cacheOptions, checkRunResources, type RunCommandOptions } from './command.js';
import { epochSummaryHook, progressHook, RUN_FILES, stopOnAbortHook } from './hooks.js';
import { clearRunFolder, decideRunMode, runTraining, TRAINING_LENGTHS, type RunMode, type TrainingRunResult } from './run.js';
import { chooseValidationCases, SPLIT_DEFAULTS } from './split.js';
import { multiHeadPretraining, SCRATCH } from './strategy.js';

export type PretrainMode = 'single' | 'multi';

export const PRETRAIN_MODES: readonly PretrainMode[] = ['single', 'multi'];

export const PRETRAIN_DEFAULTS = { validationFraction: SPLIT_DEFAULTS.pretrainValidationFraction, fallbackPreset: 'cpu', oversampleForeground: 0.33 } as const;

export interface PretrainCommandOptions extends RunCommandOptions {
  datasets: string[];
  mode: PretrainMode;
  /** Root of the preprocessed caches, one folder per dataset (default RUN/preprocessed). */
  preprocessed: string | null;
}

export interface PretrainRun {
  /** Source datasets of the run (one for single-lesion, all for multi-lesion, in task order). */
  datasets: string[];
  runDir: string;
  result: TrainingRunResult;
}

export interface PretrainResult {
  mode: PretrainMode;
  planFile: string;
  splitFile: string;
  runs: PretrainRun[];
}

export interface PretrainSplit {
  source: string;
  seed: number;
  validationFraction: number;
  datasets: Record<string, { train: string[]; validation: string[] }>;
}

/** The seeded 80/20 train/validation split of each dataset's cases. */
export function pretrainSplit(caseIdsByDataset: ReadonlyMap<string, readonly string[]>, seed: number, validationFraction: number = PRETRAIN_DEFAULTS.validationFraction): PretrainSplit {
  const datasets: PretrainSplit['datasets'] = {};
  for (const [name, ids] of caseIdsByDataset) {
    if (ids.length < 2) throw new InputError(`dataset '${name}' has ${ids.length} training case(s); a train/validation split needs at least 2`, { code: 'too-few-cases' });
    const choice = chooseValidationCases(ids, { fraction: validationFraction, seed });
    datasets[name] = { train: choice.train, validation: choice.validation };
  }
  return { source: `seeded shuffle (seed ${seed}) of each dataset's sorted case ids; round(${validationFraction} n), at least 1, validate`, seed, validationFraction, datasets };
}

async function checkAll(dirs: readonly string[]): Promise<CheckedDataset[]> {
  const checked = await checkDatasets(dirs);
  const seen = new Map<string, string>();
  for (const { info } of checked) {
    const other = seen.get(info.name);
    if (other !== undefined) throw new InputError(`two source datasets are both named '${info.name}' (${other} and ${info.path}): the heads and caches are keyed by the folder name`, { file: info.path, code: 'duplicate-dataset' });
    seen.set(info.name, info.path);
  }
  return checked;
}

async function resolvePlan(options: PretrainCommandOptions, datasets: readonly CheckedDataset[], names: readonly string[], progress: ProgressReporter): Promise<{ plan: Plan; source: string }> {
  if (options.plan !== null && options.preset !== null) throw new InputError('give either --plan or --preset, not both', { code: 'bad-arguments' });
  const ownPlan = path.join(options.out, RUN_FILES.plan);
  let result: { plan: Plan; source: string };
  if (options.plan !== null) result = { plan: loadPlan(options.plan), source: options.plan };
  else if (options.resume && options.preset === null && fs.existsSync(ownPlan)) result = { plan: loadPlan(ownPlan), source: ownPlan };
  else {
    const preset = getPreset(options.preset ?? PRETRAIN_DEFAULTS.fallbackPreset);
    result = { plan: await planDatasets(datasets, preset.name, { progress }), source: `preset ${preset.name} over ${names.join(', ')}` };
  }
  const missing = names.filter((name) => !result.plan.datasets.some((d) => d.name === name));
  if (missing.length > 0) {
    throw new InputError(`the plan covers ${result.plan.datasets.map((d) => d.name).join(', ')}, not ${missing.join(', ')}: plan all source datasets together (lesionseg plan ${names.join(' ')})`, { file: result.source, code: 'plan-mismatch' });
  }
  return result;
}

/** Run modes of the runs, and what already exists; throws (before any write) when a run exists without --resume/--force. */
function decideModes(options: PretrainCommandOptions, runDirs: readonly string[]): RunMode[] {
  if (options.mode === 'multi') return [decideRunMode(options.out, options)];
  if (options.resume && options.force) throw new InputError('--resume and --force exclude each other', { code: 'bad-arguments' });
  if (fs.existsSync(options.out) && !fs.statSync(options.out).isDirectory()) throw new InputError('the run folder is a file', { file: options.out, code: 'bad-run-folder' });
  const entries = fs.existsSync(options.out) ? fs.readdirSync(options.out).filter((name) => name !== LOCK_FILE) : [];
  if (entries.length > 0 && !options.resume && !options.force) {
    throw new InputError('the run folder is not empty (a pre-training run?): use --resume to continue it or --force to start it again', { file: options.out, code: 'run-exists' });
  }
  return runDirs.map((dir) => (options.force ? 'fresh' : decideRunMode(dir, { resume: options.resume, force: false })));
}

/** One command at a time in the run folder (core/folderLock.ts): rank 0 (the writer) holds its lock. */
export async function pretrainCommand(options: PretrainCommandOptions): Promise<PretrainResult> {
  const writer = options.dataParallel == null || options.dataParallel.isWriter;
  return withFolderLock(options.out, options.resume ? 'pretrain --resume' : 'pretrain', writer, () => pretrainInLockedFolder(options));
}

async function pretrainInLockedFolder(options: PretrainCommandOptions): Promise<PretrainResult> {
  const progress = options.progress ?? SILENT_PROGRESS;
  const logger = options.logger ?? SILENT_LOGGER;
  if (!PRETRAIN_MODES.includes(options.mode)) throw new InputError(`unknown pre-training mode '${String(options.mode)}': use single or multi`, { code: 'bad-arguments' });
  if (options.datasets.length === 0) throw new InputError('give the source datasets: --datasets DIR,DIR,...', { code: 'bad-arguments' });
  const dataParallel = options.dataParallel ?? null;
  const writer = dataParallel === null || dataParallel.isWriter;
  checkRunResources(options, options.datasets);
  const datasets = await checkAll(options.datasets);
  const names = datasets.map((d) => d.info.name);
  const runDirs = options.mode === 'multi' ? [options.out] : names.map((name) => path.join(options.out, name));
  // Rank 0 decides and prepares; the other ranks wait for its modes and plan (read-only until then).
  const prepared = writer ? null : await dataParallel!.awaitPublished<{ modes: RunMode[]; plan: Plan }>('pretrain-prepared');
  const modes = prepared?.modes ?? decideModes(options, runDirs);
  const split = pretrainSplit(new Map(datasets.map((d) => [d.info.name, listRawCases(d.dir).map((c) => c.id)])), options.seed);
  const splitFile = path.join(options.out, RUN_FILES.split);
  if (options.resume && fs.existsSync(splitFile)) {
    const previous = JSON.parse(fs.readFileSync(splitFile, 'utf8')) as Partial<PretrainSplit>;
    if (JSON.stringify(previous.datasets) !== JSON.stringify(split.datasets)) throw new InputError('the run was split differently (other datasets, cases or seed?): cannot resume', { file: splitFile, code: 'resume-mismatch' });
  }
  const { plan, source } = prepared !== null ? { plan: prepared.plan, source: 'rank 0' } : await resolvePlan(options, datasets, names, progress);
  if (dataParallel !== null) assertBatchSplits(plan, dataParallel.worldSize);
  const cacheRoot = options.preprocessed ?? path.join(options.out, 'preprocessed');
  const caches = names.map((name) => path.join(cacheRoot, name));
  if (writer) for (const [i, dataset] of datasets.entries()) await checkPreprocessing(dataset, plan, caches[i]!, cacheOptions(options));
  const lengths = TRAINING_LENGTHS[plan.preset];
  const numEpochs = options.epochs ?? lengths.numEpochs;
  const iterationsPerEpoch = options.iterationsPerEpoch ?? lengths.iterationsPerEpoch;
  const validationIterations = options.validationIterations ?? lengths.validationIterations;

  // Every input is valid: from here on the run folder changes (rank 0 alone writes it).
  const planFile = path.join(options.out, RUN_FILES.plan);
  if (writer) {
    if (options.force) {
      clearRunFolder(options.out);
      for (const dir of runDirs) clearRunFolder(dir);
    }
    fs.mkdirSync(options.out, { recursive: true });
    atomicWriteJsonSync(planFile, plan);
    atomicWriteJsonSync(splitFile, split);
    for (const [i, dataset] of datasets.entries()) await preprocessDataset(dataset, plan, caches[i]!, { progress, workers: options.workers > 0 ? options.workers : 0, cache: cacheOptions(options) });
    dataParallel?.publish('pretrain-prepared', { modes, plan });
  }
  logger.info(`pretrain (${options.mode}): plan from ${source}; ${names.map((n) => `${n} ${split.datasets[n]!.train.length} train / ${split.datasets[n]!.validation.length} validation`).join(', ')}`);

  const createLoader = options.createLoader ?? createBatchLoader;
  const loaderDevice = options.device.type === 'cpu' ? options.device : { type: 'cpu' as const };
  const loaders = (tasks: number[]) => () => {
    // each source dataset's ignore label (never a forced-foreground centre)
    const ignoreLabels = tasks.map((t) => ignoreLabelOf(plan.datasets.find((d) => d.name === names[t])!.labels));
    const base = { preprocessedDirs: tasks.map((t) => caches[t]!), plan, oversampleForeground: PRETRAIN_DEFAULTS.oversampleForeground, ignoreLabels, device: loaderDevice };
    const shard = dataParallel !== null ? { shard: { rank: dataParallel.rank, worldSize: dataParallel.worldSize } } : {};
    return {
      train: createLoader({ ...base, ...shard, caseIds: tasks.map((t) => split.datasets[names[t]!]!.train), seed: options.seed, augment: true, workers: options.workers }),
      validation: validationIterations > 0 ? createLoader({ ...base, ...shard, caseIds: tasks.map((t) => split.datasets[names[t]!]!.validation), seed: options.seed + 1, augment: false, workers: 0 }) : null,
    };
  };
  const common = { ...(dataParallel !== null ? { dataParallel } : {}), plan, pretrained: null, numEpochs, iterationsPerEpoch, validationIterations, seed: options.seed, device: options.device, precision: options.precision, threads: options.threads };
  const hooks = [progressHook(progress), epochSummaryHook(logger), ...(options.stop !== undefined ? [stopOnAbortHook(options.stop)] : [])];
  const runs: PretrainRun[] = [];
  if (options.mode === 'multi') {
    const classes = unetConfigFromPlan(plan).numClassesPerDataset;
    const taskClasses = names.map((name) => classes[name]!);
    const data = { split: path.resolve(splitFile), tasks: names.map((name, task) => ({ task, dataset: name, classes: taskClasses[task], ...split.datasets[name]! })) };
    const result = await runTraining({ ...common, runDir: options.out, mode: modes[0]!, datasetName: names[0]!, taskDatasets: names, strategy: multiHeadPretraining(taskClasses), data, createLoaders: loaders(names.map((_, t) => t)), hooks });
    runs.push({ datasets: names, runDir: options.out, result });
  } else {
    for (const [t, name] of names.entries()) {
      logger.info(`pretrain (single): ${name}`);
      const data = { dataset: name, split: path.resolve(splitFile), ...split.datasets[name]! };
      const result = await runTraining({ ...common, runDir: runDirs[t]!, mode: modes[t]!, datasetName: name, strategy: SCRATCH, data, createLoaders: loaders([t]), hooks });
      runs.push({ datasets: [name], runDir: runDirs[t]!, result });
    }
  }
  return { mode: options.mode, planFile, splitFile, runs };
}
