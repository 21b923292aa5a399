/**
 * `lesionseg train` as one entry function: validate every input first (device, output folders,
 * run folder, dataset check, split and fold, plan, pre-trained checkpoint, a cache made with
 * another plan) so that bad input changes nothing; then clear the
 * folder if --force, write the split, preprocess into the cache, and run the trainer on loaders
 * over the fold's training cases: all of them by default (validation patches then come from the
 * training cases), or all but a seeded --val-fraction held out; the fold's test cases are never read.
 * A cascade stage (--previous-stage) also checks its previous stage can predict every training case,
 * records it (RUN/previous_stage.json), has it predict them into RUN/previous_stage/ (resumable),
 * and trains on them as extra one-hot channels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertDeviceAvailable, atomicWriteJsonSync, checkOutputs, type Device, InputError, type Logger, type ProgressReporter, SILENT_LOGGER, SILENT_PROGRESS, withFolderLock } from '../core/index.js';
import { ignoreLabelOf, listRawCases } from '../io/index.js';
import {
  assertPlanCovers, checkDatasets, checkPreprocessing, configurationName, createBatchLoader, getPreset, loadPlan, planConfigurationNames, planDatasets, preprocessDataset, selectConfiguration,
  type CacheOptions, type CheckedDataset, type LoaderOptions, type Plan,
} from '../data/index.js';
import { cudaDeviceCount } from '../tensor/index.js';
import { readPreviousStageRecord, type PreviousStageRecord } from '../checkpoint/index.js';
import type { BatchLoader } from './batches.js';
import { loadPretrained, type PretrainedSource } from './pretrained.js';
import { describeLoadReport } from '../nn/index.js';
import { planForTarget, sharedPlanDifferences } from './sharedPlan.js';
import { epochSummaryHook, progressHook, RUN_FILES, stopOnAbortHook } from './hooks.js';
import { clearRunFolder, decideRunMode, runTraining, TRAINING_LENGTHS, unetConfig, type TrainingRunResult } from './run.js';
import { chooseValidationCases, defaultSplit, readSplitFile, selectFold, SPLIT_DEFAULTS, type SplitFold } from './split.js';
import type { Precision } from './step.js';
import type { TrainingStrategy } from './strategy.js';
import type { DataParallel } from './distributed.js';

/** What `train` and `pretrain` share: the plan, the schedule's length, seed, device and resources, resume/force. */
export interface RunCommandOptions {
  out: string;
  preset: string | null;
  plan: string | null;
  epochs: number | null;
  iterationsPerEpoch: number | null;
  validationIterations: number | null;
  seed: number;
  device: Device;
  precision: Precision;
  threads: number | null;
  resume: boolean;
  force: boolean;
  /** Loader worker threads (0: in the main thread). */
  workers: number;
  /** The loader factory (default the data layer's createBatchLoader). */
  createLoader?: (options: LoaderOptions) => BatchLoader;
  progress?: ProgressReporter;
  logger?: Logger;
  /** Aborted: stop after the current epoch (its checkpoint saved), to be resumed. */
  stop?: AbortSignal;
  /**
   * This process is one rank of a data-parallel run: rank 0 validates, decides fresh/resume,
   * writes the split and preprocesses, then publishes its decisions; the other ranks validate
   * read-only, take rank 0's mode and plan, and each loader makes its rank's part of every batch.
   */
  dataParallel?: DataParallel | null;
}

/** What rank 0 decided before training (published to the other ranks). */
export interface PreparedRun {
  mode: 'fresh' | 'resume';
  plan: Plan;
}

export interface TrainCommandOptions extends RunCommandOptions {
  dataset: string;
  strategy: TrainingStrategy;
  pretrained: string | null;
  split: string | null;
  fold: number | 'all';
  validationFraction: number;
  /** The preprocessed cache (default RUN/preprocessed); several folds may share one. */
  preprocessed: string | null;
  /** nnU-Net's cascade: this run is a 3d_cascade_fullres stage after this previous stage. */
  previousStage?: PreviousStageSource | null;
  /** The plan's configuration to train (nnU-Net's name; default: the plan's own, 3d_fullres for a new plan). */
  configuration?: string | null;
}

/**
 * A cascade's previous stage as training needs it (infer's lowresPreviousStage gives one; the train
 * layer cannot run a predictor itself).
 */
export interface PreviousStageSource {
  /** nnU-Net's name of the previous configuration: the plan's configuration.previousStage. */
  configuration: string;
  /** Its folder of fold_K runs. */
  run: string;
  /** The fold predicting each case; an InputError when it cannot predict them all. Writes nothing. */
  check(plan: Plan, datasetName: string, caseIds: readonly string[]): Record<string, number>;
  /** Write `out/<case>.npy` (data's previousStageFile) for the cases not there yet; the count written. */
  prepare(plan: Plan, dataset: CheckedDataset, byCase: Readonly<Record<string, number>>, out: string): Promise<number>;
}

/** What the cascade run records of its previous stage; on resume it must be what the run recorded. */
function previousStageRecord(options: TrainCommandOptions, source: PreviousStageSource, casesByFold: Record<string, number>, mode: 'fresh' | 'resume'): PreviousStageRecord {
  const record: PreviousStageRecord = { configuration: source.configuration, run: source.run, fold: options.fold, casesByFold };
  const file = path.join(options.out, RUN_FILES.previousStage);
  if (mode === 'resume' && fs.existsSync(file) && JSON.stringify(readPreviousStageRecord(options.out)) !== JSON.stringify(record)) {
    throw new InputError(`the run's previous stage was ${readPreviousStageRecord(options.out).run} with other folds: cannot resume with ${source.run}`, { file, code: 'resume-mismatch' });
  }
  return record;
}

/** The plan as a cascade stage after `source` (or as it is without one); refuses a cascade plan without its previous stage. */
function cascadePlan(plan: Plan, source: PreviousStageSource | null, planSource: string): Plan {
  const recorded = plan.configuration.previousStage;
  if (source === null) {
    if (recorded !== undefined) throw new InputError(`the plan (${planSource}) is a cascade stage after '${recorded}': give --configuration 3d_cascade_fullres --previous-stage LOWRES_FOLDS`, { code: 'bad-arguments' });
    return plan;
  }
  if (recorded !== undefined && recorded !== source.configuration) {
    throw new InputError(`the plan (${planSource}) is a cascade stage after '${recorded}', not '${source.configuration}'`, { code: 'plan-mismatch' });
  }
  return { ...plan, configuration: { ...plan.configuration, previousStage: source.configuration } };
}

export const TRAIN_COMMAND_DEFAULTS = { oversampleForeground: 0.33, fallbackPreset: 'cpu' } as const;

/** The fold's cases from a split file, the run's own split.json (on resume), or a seeded 5-fold split. */
function foldCases(options: TrainCommandOptions, caseIds: string[]): { fold: SplitFold; splitLabel: string; generated: SplitFold[] | null } {
  if (options.fold === 'all') return { fold: selectFold([], 'all', caseIds, undefined), splitLabel: 'none (fold all)', generated: null };
  if (options.split !== null) return { fold: selectFold(readSplitFile(options.split), options.fold, caseIds, options.split), splitLabel: path.resolve(options.split), generated: null };
  // The default split is regenerated (it is a pure function of the case ids); on resume the run's copy is checked against it.
  const generated = defaultSplit(caseIds, { seed: SPLIT_DEFAULTS.seed });
  const ownSplit = path.join(options.out, RUN_FILES.split);
  if (options.resume && fs.existsSync(ownSplit) && JSON.stringify(readSplitFile(ownSplit)) !== JSON.stringify(generated)) {
    throw new InputError('the run was split differently (the dataset changed?): cannot resume', { file: ownSplit, code: 'resume-mismatch' });
  }
  return { fold: selectFold(generated, options.fold, caseIds, 'the default 5-fold split'), splitLabel: 'default', generated };
}

/**
 * The run's plan: --plan, the run's own plan.json on resume, the pre-trained checkpoint's plan
 * extended by the target dataset (a given --plan must agree with it), or a new plan by preset.
 */
async function resolvePlan(options: TrainCommandOptions, dataset: CheckedDataset, pretrained: PretrainedSource | null, progress: ProgressReporter): Promise<{ plan: Plan; source: string }> {
  if (options.plan !== null && options.preset !== null) throw new InputError('give either --plan or --preset, not both', { code: 'bad-arguments' });
  const ownPlan = path.join(options.out, RUN_FILES.plan);
  if (options.resume && options.plan === null && options.preset === null && fs.existsSync(ownPlan)) return { plan: loadPlan(ownPlan), source: ownPlan };
  if (pretrained !== null) {
    const sidecarFile = pretrained.describedBy;
    const pretrainedPlan = pretrained.plan;
    if (pretrainedPlan === null) throw new InputError('the pre-trained checkpoint records no plan, so the target cannot be preprocessed as its training data was', { file: sidecarFile, code: 'plan-mismatch' });
    if (options.preset !== null) throw new InputError(`with --pretrained the plan comes from the checkpoint (preset ${pretrainedPlan.preset}); drop --preset ${options.preset}`, { code: 'bad-arguments' });
    const target = dataset.info;
    if (options.plan !== null) {
      const given = loadPlan(options.plan);
      const differences = sharedPlanDifferences(pretrainedPlan, given);
      if (differences.length > 0) {
        throw new InputError(`the plan differs from the pre-trained checkpoint's (${sidecarFile}), so its weights would not transfer`, { file: options.plan, code: 'plan-mismatch', items: differences });
      }
      return { plan: given.datasets.some((d) => d.name === target.name) ? given : planForTarget(given, target), source: options.plan };
    }
    return { plan: planForTarget(pretrainedPlan, target), source: `the plan of ${sidecarFile}` };
  }
  if (options.plan !== null) {
    // A plan made for other datasets (e.g. the pre-training's) serves a target run from scratch under the same preprocessing.
    const given = loadPlan(options.plan);
    const target = dataset.info;
    return { plan: given.datasets.some((d) => d.name === target.name) ? given : planForTarget(given, target), source: options.plan };
  }
  const preset = getPreset(options.preset ?? TRAIN_COMMAND_DEFAULTS.fallbackPreset);
  return { plan: await planDatasets(dataset, preset.name, { progress }), source: `preset ${preset.name}` };
}

/**
 * The checks that need nothing but the options, first of all: the device exists, fp16 has a GPU,
 * and the run folder and the cache can be written. Shared with pretrain.
 */
export function checkRunResources(options: RunCommandOptions & { preprocessed: string | null }, inputs: readonly string[]): void {
  assertDeviceAvailable(options.device, options.device.type === 'cpu' ? 0 : cudaDeviceCount());
  if (options.precision === 'fp16' && options.device.type === 'cpu') {
    throw new InputError('--precision fp16 needs a CUDA device (libtorch autocasts only to bfloat16 on the CPU): use bf16 or fp32', { code: 'bad-precision' });
  }
  // core's one output rule: the run folder and the cache hold no input and lie in none.
  checkOutputs([{ path: options.out, option: '--out', kind: 'folder' }, ...(options.preprocessed !== null ? [{ path: options.preprocessed, option: '--preprocessed', kind: 'folder' as const }] : [])], inputs);
}

/** Every rank needs at least one sample of the plan's batch (nnU-Net refuses the same). */
export function assertBatchSplits(plan: Plan, worldSize: number): void {
  if (plan.configuration.batchSize < worldSize) {
    throw new InputError(`--nproc ${worldSize}: the plan's batch size is ${plan.configuration.batchSize}, and every rank needs at least one sample of it; use at most ${plan.configuration.batchSize} ranks or a plan with a larger batch`, { code: 'bad-arguments' });
  }
}

/** How train and pretrain name their cache: --preprocessed, replaced with --force. */
export function cacheOptions(options: RunCommandOptions): CacheOptions {
  return { option: '--preprocessed', forceFlag: '--force', force: options.force };
}

/** One command at a time in the run folder (core/folderLock.ts): rank 0 (the writer) holds its lock. */
export async function trainCommand(options: TrainCommandOptions): Promise<TrainingRunResult> {
  const writer = options.dataParallel == null || options.dataParallel.isWriter;
  return withFolderLock(options.out, options.resume ? 'train --resume' : 'train', writer, () => trainInLockedFolder(options));
}

async function trainInLockedFolder(options: TrainCommandOptions): Promise<TrainingRunResult> {
  const progress = options.progress ?? SILENT_PROGRESS;
  const logger = options.logger ?? SILENT_LOGGER;
  const dataParallel = options.dataParallel ?? null;
  const writer = dataParallel === null || dataParallel.isWriter;
  checkRunResources(options, [options.dataset, ...(options.plan !== null ? [options.plan] : []), ...(options.pretrained !== null ? [options.pretrained] : []), ...(options.previousStage != null ? [options.previousStage.run] : [])]);
  // Rank 0 decides (and recovers a torn checkpoint set); the others take its decision below.
  const mode = writer ? decideRunMode(options.out, { resume: options.resume, force: options.force }) : options.resume ? 'resume' : 'fresh';
  if (options.pretrained !== null && !options.strategy.requiresPretrained) {
    throw new InputError(`strategy '${options.strategy.name}' does not use a pre-trained checkpoint; drop --pretrained`, { code: 'bad-arguments' });
  }
  if (options.pretrained === null && options.strategy.requiresPretrained && mode === 'fresh') {
    throw new InputError(`strategy '${options.strategy.name}' needs --pretrained CKPT`, { code: 'missing-pretrained' });
  }
  const pretrained = options.pretrained !== null ? loadPretrained(options.pretrained) : null;

  const [dataset] = await checkDatasets([options.dataset]);
  const caseIds = listRawCases(options.dataset).map((c) => c.id);
  const { fold, splitLabel, generated } = foldCases(options, caseIds);
  const validation = chooseValidationCases(fold.train, { fraction: options.validationFraction, seed: options.seed });
  const cache = options.preprocessed ?? path.join(options.out, 'preprocessed');
  const context = { dataset: dataset!, fold, splitLabel, validation, cache };
  if (!writer) {
    const prepared = await dataParallel!.awaitPublished<PreparedRun>('train-prepared');
    return runFold(options, { ...context, ...prepared, source: 'rank 0' });
  }
  const resolved = await resolvePlan(options, dataset!, pretrained, progress);
  const source = resolved.source;
  // The run trains one configuration: its plan holds that one only. A cascade stage is the
  // 3d_fullres configuration whose network also takes the previous stage's mask (nnU-Net's
  // inherits_from): a plan that does not list 3d_cascade_fullres trains its 3d_fullres as one.
  const wanted = options.configuration ?? configurationName(resolved.plan.configuration);
  const base = wanted === '3d_cascade_fullres' && !planConfigurationNames(resolved.plan).includes(wanted) ? '3d_fullres' : wanted;
  if (wanted === '3d_cascade_fullres' && (options.previousStage ?? null) === null) {
    throw new InputError('--configuration 3d_cascade_fullres needs --previous-stage LOWRES (a folder of fold_K 3d_lowres runs)', { code: 'bad-arguments' });
  }
  const previousStage = options.previousStage ?? null;
  const plan = cascadePlan(selectConfiguration(resolved.plan, base), previousStage, source);
  const datasetName = dataset!.info.name;
  assertPlanCovers(plan, datasetName, `the plan (${source})`);
  if (dataParallel !== null) assertBatchSplits(plan, dataParallel.worldSize);
  await checkPreprocessing(dataset!, plan, cache, cacheOptions(options));
  if (pretrained !== null && mode === 'fresh') options.strategy.checkPretrained?.(pretrained, unetConfig(plan, datasetName));
  const record = previousStage === null ? null : previousStageRecord(options, previousStage, previousStage.check(plan, datasetName, fold.train), mode);
  // Every input is valid: from here on the run folder changes.
  if (mode === 'fresh' && options.force) clearRunFolder(options.out);
  fs.mkdirSync(options.out, { recursive: true });
  if (generated !== null && mode === 'fresh') atomicWriteJsonSync(path.join(options.out, RUN_FILES.split), { source: `seeded ${generated.length}-fold split (seed ${SPLIT_DEFAULTS.seed}) of the sorted case ids`, folds: generated });
  await preprocessDataset(dataset!, plan, cache, { progress, workers: options.workers > 0 ? options.workers : 0, cache: cacheOptions(options) });
  if (previousStage !== null && record !== null) {
    atomicWriteJsonSync(path.join(options.out, RUN_FILES.previousStage), record);
    const written = await previousStage.prepare(plan, dataset!, record.casesByFold, path.join(options.out, RUN_FILES.previousStageMaps));
    logger.info(`train: previous stage ${previousStage.configuration} (${previousStage.run}): ${written} case(s) predicted, ${fold.train.length - written} already there`);
  }
  dataParallel?.publish('train-prepared', { mode, plan } satisfies PreparedRun);
  logger.info(`train: ${validation.train.length} training case(s), validation on ${validation.mode === 'held-out' ? `${validation.validation.length} held-out training case(s) (${validation.validation.join(', ')})` : 'the training cases themselves (too few to hold one out)'}, ${fold.test.length} test case(s) never seen`);

  return runFold(options, { ...context, mode, plan, source });
}

interface FoldContext {
  dataset: CheckedDataset;
  fold: SplitFold;
  splitLabel: string;
  validation: ReturnType<typeof chooseValidationCases>;
  cache: string;
  mode: 'fresh' | 'resume';
  plan: Plan;
  source: string;
}

/** Train the prepared fold (every rank of a data-parallel run arrives here with rank 0's decisions). */
function runFold(options: TrainCommandOptions, context: FoldContext): Promise<TrainingRunResult> {
  const progress = options.progress ?? SILENT_PROGRESS;
  const logger = options.logger ?? SILENT_LOGGER;
  const dataParallel = options.dataParallel ?? null;
  const { dataset, fold, splitLabel, validation, cache, mode, plan, source } = context;
  const datasetName = dataset.info.name;
  const lengths = TRAINING_LENGTHS[plan.preset];
  const numEpochs = options.epochs ?? lengths.numEpochs;
  const iterationsPerEpoch = options.iterationsPerEpoch ?? lengths.iterationsPerEpoch;
  const validationIterations = options.validationIterations ?? lengths.validationIterations;

  const shard = dataParallel !== null ? { shard: { rank: dataParallel.rank, worldSize: dataParallel.worldSize } } : {};
  const createLoader = options.createLoader ?? createBatchLoader;
  // A cascade stage reads the previous stage's maps of its cases, one one-hot channel per foreground label.
  const previousStage = plan.configuration.previousStage === undefined ? null : { dir: path.join(options.out, RUN_FILES.previousStageMaps), labels: unetConfig(plan, datasetName).numClasses - 1 };
  const loaderBase = { preprocessedDirs: [cache], plan, oversampleForeground: TRAIN_COMMAND_DEFAULTS.oversampleForeground, ignoreLabels: [ignoreLabelOf(dataset.info.labels)], device: options.device.type === 'cpu' ? options.device : { type: 'cpu' as const }, previousStage };
  return runTraining({
    ...(dataParallel !== null ? { dataParallel } : {}),
    runDir: options.out,
    mode,
    plan,
    datasetName,
    strategy: options.strategy,
    pretrained: options.pretrained,
    numEpochs,
    iterationsPerEpoch,
    validationIterations,
    seed: options.seed,
    device: options.device,
    precision: options.precision,
    threads: options.threads,
    data: {
      dataset: datasetName,
      split: splitLabel,
      fold: options.fold,
      train: validation.train,
      validation: validation.validation,
      validationMode: validation.mode,
      validationFraction: validation.fraction,
      test: fold.test,
    },
    createLoaders: () => ({
      train: createLoader({ ...loaderBase, ...shard, caseIds: [validation.train], seed: options.seed, augment: true, workers: options.workers }),
      validation: validationIterations > 0 ? createLoader({ ...loaderBase, ...shard, caseIds: [validation.validation], seed: options.seed + 1, augment: false, workers: 0 }) : null,
    }),
    hooks: [progressHook(progress), epochSummaryHook(logger), ...(options.stop !== undefined ? [stopOnAbortHook(options.stop)] : [])],
    onPrepared: ({ setup, parameters, resumed }) => {
      const load = setup.loadReport !== null ? `; pre-trained weights: ${describeLoadReport(setup.loadReport)}` : '';
      const frozen = setup.frozenPrefixes.length > 0 ? ` (frozen: ${setup.frozenPrefixes.join(', ')})` : '';
      logger.info(`train: strategy ${options.strategy.name}${resumed ? ' (resumed)' : ''}, plan from ${source}${load}; ${parameters.trainable} trainable / ${parameters.frozen} frozen parameters${frozen}; lr schedule ${JSON.stringify(setup.schedule)}`);
    },
  });
}
