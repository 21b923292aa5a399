/**
 * A training run in a run folder: decide fresh / resume / refuse (an existing run is never
 * clobbered unless asked), build the model with its strategy (or restore it from the latest
 * checkpoint on resume), wire the trainer with its hooks (log.jsonl, checkpoints) and run it.
 * The loss follows the plan: batch Dice as `configuration.batchDice` says, and the dataset's
 * ignore label (if any) left out of CE and Dice (lossOptionsFromPlan).
 * The data loaders are injected, so tests run on in-memory batches and the CLI on the cache.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { atomicWriteFileSync, atomicWriteJsonSync, cpuInfo, type Device, formatDevice, InputError, LOCK_FILE } from '../core/index.js';
import { getNumThreads, manualSeed, setNumThreads } from '../tensor/index.js';
import { runEnvironment } from './environment.js';
import { SGD, SGD_DEFAULTS, type DiceCeOptions } from '../nn/index.js';
import { ignoreLabelOf } from '../io/index.js';
import { unetConfigFromPlan, type Plan } from '../data/index.js';
import { buildOptionsOf, DEFAULT_ARCHITECTURE, type UNetConfig } from '../models/index.js';
import type { BatchLoader } from './batches.js';
import { assertTrainingRecord, loadCheckpoint, recoverCheckpoint, restoreOptimizer, restoreWeights, type LoadedCheckpoint } from '../checkpoint/index.js';
import { readTrainingSidecar, type TrainingSidecar, type TrainingSidecarContent } from './sidecar.js';
import { checkpointBaseIn, checkpointHook, jsonlLogHook, RUN_FILES, truncateEpochLog } from './hooks.js';
import { loadPretrained } from './pretrained.js';
import { buildStrategyModel, type StrategySetup, type TrainingStrategy } from './strategy.js';
import { TRAIN_STEP_DEFAULTS, type Precision } from './step.js';
import type { DataParallel } from './distributed.js';
import { initialTrainerState, Trainer, type EpochRecord, type TrainerHook, type TrainerState } from './trainer.js';

/** Epochs and iterations per plan preset (nnU-Net: 1000 x 250, 50 validation batches). */
export const TRAINING_LENGTHS = {
  nnunet: { numEpochs: 1000, iterationsPerEpoch: 250, validationIterations: 50 },
  paper: { numEpochs: 1000, iterationsPerEpoch: 250, validationIterations: 50 },
  cpu: { numEpochs: 100, iterationsPerEpoch: 50, validationIterations: 10 },
  tiny: { numEpochs: 4, iterationsPerEpoch: 4, validationIterations: 2 },
} as const satisfies Record<Plan['preset'], { numEpochs: number; iterationsPerEpoch: number; validationIterations: number }>;

export type RunMode = 'fresh' | 'resume';

/** Files a run writes (what --force removes; anything else in the folder is left alone). */
function isRunFile(name: string): boolean {
  return name === RUN_FILES.log || name === RUN_FILES.plan || name === RUN_FILES.split || name === RUN_FILES.previousStage || name === RUN_FILES.previousStageMaps || /^checkpoint_(latest|best|final)(\.optim)?\.(safetensors|json)$/.test(name) || /^\.checkpoint_.*\.tmp-/.test(name);
}

/**
 * Whether the run starts fresh or resumes; an InputError (before anything is written) when the
 * folder already holds a run (or other files) and neither --resume nor --force was given.
 */
export function decideRunMode(runDir: string, flags: { resume: boolean; force: boolean }): RunMode {
  if (flags.resume && flags.force) throw new InputError('--resume and --force exclude each other', { code: 'bad-arguments' });
  // The lock of the command deciding (core/folderLock.ts) is not part of the run.
  const entries = fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((name) => name !== LOCK_FILE) : [];
  if (fs.existsSync(runDir) && !fs.statSync(runDir).isDirectory()) throw new InputError('the run folder is a file', { file: runDir, code: 'bad-run-folder' });
  if (flags.resume) {
    const latest = checkpointBaseIn(runDir, 'latest');
    if (fs.existsSync(runDir)) recoverCheckpoint(latest);
    return fs.existsSync(`${latest}.json`) ? 'resume' : 'fresh';
  }
  if (entries.length > 0 && !flags.force) {
    const what = entries.some(isRunFile) ? 'already holds a training run' : 'exists and is not empty';
    throw new InputError(`the run folder ${what}: use --resume to continue it or --force to start it again`, { file: runDir, code: 'run-exists' });
  }
  return 'fresh';
}

/** Remove a previous run's files (--force); other files in the folder stay. */
export function clearRunFolder(runDir: string): void {
  if (!fs.existsSync(runDir)) return;
  for (const name of fs.readdirSync(runDir)) if (isRunFile(name)) fs.rmSync(path.join(runDir, name), { force: true, recursive: true });
}

export function planFingerprint(plan: Plan): string {
  return createHash('sha256').update(JSON.stringify(plan)).digest('hex').slice(0, 16);
}

export interface TrainingRunOptions {
  runDir: string;
  mode: RunMode;
  plan: Plan;
  /** The dataset of the plan whose classes the head predicts. */
  datasetName: string;
  /** A multi-head model: the plan dataset of each task (its ignore label goes into that task's loss). */
  taskDatasets?: readonly string[];
  strategy: TrainingStrategy;
  /** A pre-trained checkpoint (path as given) for strategies that need one. */
  pretrained: string | null;
  numEpochs: number;
  iterationsPerEpoch: number;
  validationIterations: number;
  seed: number;
  device: Device;
  precision: Precision;
  threads: number | null;
  /** Split, fold, train/validation/test cases: recorded in the sidecar and compared on resume. */
  data: Record<string, unknown> | null;
  /** Make the loaders (called once the model is ready; closed at the end). */
  createLoaders: () => { train: BatchLoader; validation: BatchLoader | null };
  hooks?: TrainerHook[];
  latestEvery?: number;
  /** One rank of a data-parallel run: rank 0 alone writes the run folder; parameters start as rank 0's. */
  dataParallel?: DataParallel;
  /** Told what the strategy did (load report, frozen prefixes, parameter counts) before the first epoch. */
  onPrepared?: (info: { setup: StrategySetup; parameters: { trainable: number; frozen: number; total: number }; resumed: boolean }) => void;
}

export interface TrainingRunResult {
  runDir: string;
  finished: boolean;
  resumedFromEpoch: number | null;
  history: EpochRecord[];
  bestEma: number | null;
  parameters: { trainable: number; frozen: number; total: number };
}

/** Settings that change the result: a resume with other values is refused. */
function resumeMismatches(sidecar: TrainingSidecar, options: TrainingRunOptions, config: UNetConfig): string[] {
  const now: Record<string, unknown> = {
    strategy: options.strategy.name,
    plan: planFingerprint(options.plan),
    seed: options.seed,
    epochs: options.numEpochs,
    'iterations per epoch': options.iterationsPerEpoch,
    'validation iterations': options.validationIterations,
    precision: options.precision,
    architecture: config,
    data: options.data,
  };
  const then: Record<string, unknown> = {
    strategy: sidecar.strategy.name,
    plan: sidecar.planDigest,
    seed: sidecar.training.seed,
    epochs: sidecar.training.numEpochs,
    'iterations per epoch': sidecar.training.iterationsPerEpoch,
    'validation iterations': sidecar.training.validationIterations,
    precision: sidecar.training.precision,
    architecture: sidecar.architecture.config,
    data: sidecar.data,
  };
  return Object.keys(now)
    .filter((key) => JSON.stringify(now[key]) !== JSON.stringify(then[key]))
    .map((key) => `${key}: the run has ${JSON.stringify(then[key])}, now ${JSON.stringify(now[key])}`);
}

/** The U-Net of a run: the plan's topology with the class count of `datasetName`. */
export function unetConfig(plan: Plan, datasetName: string): UNetConfig {
  const fromPlan = unetConfigFromPlan(plan, datasetName);
  return {
    inputChannels: fromPlan.inputChannels,
    numClasses: fromPlan.numClasses,
    featuresPerStage: fromPlan.featuresPerStage,
    kernelSizes: fromPlan.kernelSizes.map((k) => [...k]),
    strides: fromPlan.strides.map((s) => [...s]),
    nConvPerStage: fromPlan.nConvPerStage,
    nConvPerStageDecoder: fromPlan.nConvPerStageDecoder,
    deepSupervision: fromPlan.deepSupervision,
  };
}

/**
 * The Dice+CE settings of a plan for one of its datasets: batch Dice as the plan's configuration
 * says (nnU-Net's configuration_manager.batch_dice) and the dataset's ignore label, if it has one.
 */
export function lossOptionsFromPlan(plan: Plan, datasetName: string): DiceCeOptions {
  const dataset = plan.datasets.find((d) => d.name === datasetName);
  if (dataset === undefined) {
    throw new InputError(`the plan has no dataset '${datasetName}': it covers ${plan.datasets.map((d) => d.name).join(', ')}`, { code: 'unknown-dataset' });
  }
  const ignoreLabel = ignoreLabelOf(dataset.labels);
  return { batchDice: plan.configuration.batchDice, ...(ignoreLabel === null ? {} : { ignoreLabel }) };
}

/** Train (or continue) the run described by `options`; see the file comment. */
export async function runTraining(options: TrainingRunOptions): Promise<TrainingRunResult> {
  const dataParallel = options.dataParallel;
  const writer = dataParallel === undefined || dataParallel.isWriter;
  // Pin this thread's count now (libtorch's default when not given), before any loader worker
  // exists: a worker's setNumThreads(1) changes the count that threads initialise from later.
  setNumThreads(options.threads ?? getNumThreads());
  const config = unetConfig(options.plan, options.datasetName);
  const lossOptions = lossOptionsFromPlan(options.plan, options.datasetName);
  const taskLossOptions = options.taskDatasets?.map((name) => lossOptionsFromPlan(options.plan, name));
  const latestBase = checkpointBaseIn(options.runDir, 'latest');
  const latest: LoadedCheckpoint<TrainingSidecar> | null = options.mode === 'resume' ? loadCheckpoint<TrainingSidecar>(latestBase) : null;
  if (latest !== null) {
    assertTrainingRecord(latest.sidecar, `${latestBase}.json`);
    readTrainingSidecar(latest.sidecar, `${latestBase}.json`);
  }
  if (latest !== null) {
    const mismatches = resumeMismatches(latest.sidecar, options, config);
    if (mismatches.length > 0) throw new InputError(`cannot resume with other settings:\n  - ${mismatches.join('\n  - ')}`, { file: `${latestBase}.json`, code: 'resume-mismatch' });
  }
  const pretrained = latest === null && options.pretrained !== null ? loadPretrained(options.pretrained) : null;
  if (latest === null && options.strategy.requiresPretrained && pretrained === null) {
    throw new InputError(`strategy '${options.strategy.name}' needs a pre-trained checkpoint (--pretrained CKPT)`, { code: 'missing-pretrained' });
  }

  manualSeed(options.seed);
  const model = buildStrategyModel(options.strategy, config, options.device);
  const parameterNames = new Set(model.parameterDict().keys());
  let setup: StrategySetup;
  let state: TrainerState;
  let history: EpochRecord[] = [];
  const optimizer = new SGD(model.parameterDict());
  try {
    if (latest !== null) {
      restoreWeights(model, latest);
      const sidecar = latest.sidecar;
      setup = { loadReport: sidecar.loadReport, frozenPrefixes: sidecar.parameters.frozenPrefixes, optimizerState: latest.optimizer, schedule: sidecar.training.schedule, details: sidecar.strategy.details };
      state = sidecar.state;
      history = writer ? truncateEpochLog(path.join(options.runDir, RUN_FILES.log), state.epoch) : sidecar.history.slice(0, state.epoch);
      if (writer && history.length !== state.epoch) {
        // The log lost lines (edited or deleted): rebuild it from the checkpoint's own history.
        history = sidecar.history.slice(0, state.epoch);
        atomicWriteFileSync(path.join(options.runDir, RUN_FILES.log), history.map((record) => `${JSON.stringify(record)}\n`).join(''));
      }
    } else {
      setup = options.strategy.prepare({ model, pretrained, numEpochs: options.numEpochs, device: options.device });
      state = initialTrainerState(options.seed);
      if (writer) {
        fs.mkdirSync(options.runDir, { recursive: true });
        atomicWriteJsonSync(path.join(options.runDir, RUN_FILES.plan), options.plan);
        fs.rmSync(path.join(options.runDir, RUN_FILES.log), { force: true });
      }
    }
    if (setup.frozenPrefixes.length > 0) model.freeze(setup.frozenPrefixes);
    if (setup.optimizerState !== null) restoreOptimizer(optimizer, setup.optimizerState, parameterNames, options.device, latest ? `${latestBase}.optim.safetensors` : String(options.pretrained));
    // Every rank built and restored the same weights; rank 0's are the ones that count.
    if (dataParallel !== undefined) await dataParallel.broadcastParameters(model);
  } catch (error) {
    optimizer.dispose();
    model.dispose();
    throw error;
  }

  const counts = model.countParameters();
  const environment = runEnvironment();
  options.onPrepared?.({ setup, parameters: counts, resumed: latest !== null });
  const content = (trainer: Trainer): TrainingSidecarContent => ({
    architecture: {
      name: options.strategy.architecture ?? DEFAULT_ARCHITECTURE,
      config,
      taskClasses: options.strategy.taskClasses ?? null,
      // The hybrid's build options, so that every reader builds it as it trained (not guessed from weight names).
      ...buildOptionsOf(model),
    },
    plan: options.plan,
    planDigest: planFingerprint(options.plan),
    strategy: { name: options.strategy.name, pretrained: latest ? latest.sidecar.strategy.pretrained : options.pretrained, details: setup.details },
    training: {
      numEpochs: options.numEpochs,
      iterationsPerEpoch: options.iterationsPerEpoch,
      validationIterations: options.validationIterations,
      seed: options.seed,
      precision: options.precision,
      device: formatDevice(options.device),
      // The count libtorch ran with (also without --threads): the gradients' sums depend on it.
      threads: environment.threads,
      schedule: setup.schedule,
      optimizer: { kind: 'sgd', momentum: SGD_DEFAULTS.momentum, nesterov: SGD_DEFAULTS.nesterov, weightDecay: SGD_DEFAULTS.weightDecay },
      clipNorm: TRAIN_STEP_DEFAULTS.clipNorm,
    },
    hardware: cpuInfo(),
    environment,
    state: trainer.state,
    parameters: { ...counts, frozenPrefixes: setup.frozenPrefixes },
    loadReport: setup.loadReport,
    data: options.data,
    history: [...history],
  });
  const historyHook: TrainerHook = { onEpochEnd: (_trainer, record) => void history.push(record) };
  const loaders = options.createLoaders();
  try {
    const trainer = new Trainer({
      model,
      optimizer,
      schedule: setup.schedule,
      loader: loaders.train,
      validationLoader: loaders.validation,
      numEpochs: options.numEpochs,
      iterationsPerEpoch: options.iterationsPerEpoch,
      validationIterations: options.validationIterations,
      device: options.device,
      precision: options.precision,
      seed: options.seed,
      lossOptions,
      ...(taskLossOptions !== undefined ? { taskLossOptions } : {}),
      state,
      ...(dataParallel !== undefined ? { dataParallel } : {}),
      hooks: [
        historyHook,
        ...(writer
          ? [
              jsonlLogHook(path.join(options.runDir, RUN_FILES.log)),
              checkpointHook({ runDir: options.runDir, content, ...(options.latestEvery !== undefined ? { latestEvery: options.latestEvery } : {}) }),
            ]
          : []),
        ...(options.hooks ?? []),
      ],
    });
    await trainer.run();
    return {
      runDir: options.runDir,
      finished: trainer.finished,
      resumedFromEpoch: latest ? latest.sidecar.state.epoch : null,
      history,
      bestEma: trainer.state.bestEma,
      parameters: counts,
    };
  } finally {
    await loaders.train.close();
    await loaders.validation?.close();
    optimizer.dispose();
    model.dispose();
  }
}
