/**
 * `lesionseg train`: options to trainCommand's inputs. Strategies come from an explicit registry:
 * `scratch` is the trainer's own, the four transfer strategies are src/transfer's plans wrapped as
 * training strategies (frozen-encoder and hybrid take --decoder-init, hybrid --fuse-levels).
 */
import { type Command, Option } from '@commander-js/extra-typings';
import { InputError, parseDevice, SILENT_PROGRESS, type Device, type Logger, type PrecisionRequest } from '../core/index.js';
import { CONFIGURATION_NAMES } from '../data/index.js';
import { distributedSupport } from '../tensor/index.js';
import { isStrategyName, joinDataParallel, strategiesTaking, STRATEGY_NAMES, SPLIT_DEFAULTS, trainCommand, type DataParallel, type StrategyOption, type TrainingStrategy } from '../train/index.js';
import { launchIfAsked, rankFromEnvironment } from './launcher.js';
import { transferTrainingStrategy, type TransferStrategyOptions } from '../transfer/index.js';
import { terminalProgress } from './progress.js';
import { lowresPreviousStage, type CascadeTrainingInputOptions, type LowresPreviousStage } from '../infer/index.js';
import { precisionOption, resolvePrecisionFlag } from './precision.js';
import { integer, threadCount } from './parse.js';
import { exitIfInterrupted, interruptSignal } from './signals.js';
import { stderrLogger } from './loggers.js';

const OPTION_FLAGS = { decoderInit: '--decoder-init', fuseLevels: '--fuse-levels' } as const satisfies Record<StrategyOption, string>;

/** The training strategy of `name` (train's STRATEGIES table) with the options that apply to it; others are refused. */
export function strategyByName(name: string, options: TransferStrategyOptions = {}): TrainingStrategy {
  if (!isStrategyName(name)) throw new InputError(`unknown strategy '${name}': use one of ${STRATEGY_NAMES.join(', ')}`, { code: 'unknown-strategy' });
  for (const option of Object.keys(OPTION_FLAGS) as StrategyOption[]) {
    const takers = strategiesTaking(option);
    if (options[option] !== undefined && !takers.includes(name)) {
      throw new InputError(`${OPTION_FLAGS[option]} applies only to the ${takers.join(' and ')} ${takers.length > 1 ? 'strategies' : 'strategy'}, not ${name}`, { code: 'bad-arguments' });
    }
  }
  return transferTrainingStrategy(name, options);
}

function foldValue(value: string): number | 'all' {
  if (value === 'all') return 'all';
  return integer('fold', 0)(value);
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n < 1)) throw new InputError(`--val-fraction must be in [0, 1), got '${value}'`, { code: 'bad-arguments' });
  return n;
}


/** Mean training seconds per epoch of the epochs run now ('-' when none ran). */
export function meanEpochSeconds(history: readonly { epoch_seconds: number }[]): string {
  return history.length === 0 ? '-' : (history.reduce((sum, r) => sum + r.epoch_seconds, 0) / history.length).toFixed(2);
}

/** The CLI options `train` and `pretrain` share, as commander parses them. */
export interface SharedTrainingCliOptions {
  out: string;
  preset?: string;
  plan?: string;
  epochs?: number;
  itersPerEpoch?: number;
  iterationsPerEpoch?: number;
  valIters?: number;
  seed: number;
  device: string;
  precision: string;
  threads?: number;
  resume?: true;
  force?: true;
  preprocessed?: string;
  workers: number;
  nproc?: number;
}

/** Ranks other than 0 log only warnings (rank 0 speaks for the run). */
const quietLogger: Logger = { info: () => undefined, warn: stderrLogger.warn };

/**
 * `--nproc N` (N > 1): launch N ranks of this command and return their status; else, when this
 * process is a rank (launcher, torchrun, srun), join the group: `{ dataParallel, device }` with
 * `--device cuda` meaning this rank's GPU (cuda:LOCAL_RANK).
 */
export async function dataParallelSetup(options: SharedTrainingCliOptions): Promise<{ launched: number } | { dataParallel: DataParallel | null; device: Device }> {
  const launched = await launchIfAsked(options.nproc);
  if (launched !== null) return { launched };
  const rendezvous = rankFromEnvironment(options.nproc);
  let device = parseDevice(options.device);
  if (rendezvous === null) return { dataParallel: null, device };
  if (device.type === 'cuda' && options.device.trim().toLowerCase() === 'cuda') device = { type: 'cuda', index: rendezvous.localRank };
  const backend = device.type === 'cuda' && distributedSupport().nccl ? 'nccl' : 'gloo';
  return { dataParallel: await joinDataParallel(rendezvous, { backend }), device };
}

/** The arguments both training entry functions take, from the shared options (and the rank, if any). */
export function sharedTrainingArgs(options: SharedTrainingCliOptions, rank: { dataParallel: DataParallel | null; device: Device } = { dataParallel: null, device: parseDevice(options.device) }) {
  const quiet = rank.dataParallel !== null && !rank.dataParallel.isWriter;
  return {
    out: options.out,
    preset: options.preset ?? null,
    plan: options.plan ?? null,
    epochs: options.epochs ?? null,
    iterationsPerEpoch: options.itersPerEpoch ?? options.iterationsPerEpoch ?? null,
    validationIterations: options.valIters ?? null,
    seed: options.seed,
    device: rank.device,
    precision: resolvePrecisionFlag(options.precision as PrecisionRequest, rank.device),
    threads: options.threads ?? null,
    resume: options.resume === true,
    force: options.force === true,
    preprocessed: options.preprocessed ?? null,
    workers: options.workers,
    progress: quiet ? SILENT_PROGRESS : terminalProgress(),
    logger: quiet ? quietLogger : stderrLogger,
    stop: interruptSignal(),
    dataParallel: rank.dataParallel,
  };
}

/** `--configuration 3d_cascade_fullres --previous-stage FOLDS` as training's previous stage (the two come together). */
export function previousStageOption(configuration: string | undefined, folds: string | undefined, options: CascadeTrainingInputOptions): LowresPreviousStage | null {
  if (configuration === '3d_cascade_fullres' && folds === undefined) throw new InputError('--configuration 3d_cascade_fullres needs --previous-stage LOWRES (a folder of fold_K 3d_lowres runs)', { code: 'bad-arguments' });
  if (folds !== undefined && configuration !== '3d_cascade_fullres') throw new InputError('--previous-stage applies only to --configuration 3d_cascade_fullres', { code: 'bad-arguments' });
  return folds === undefined ? null : lowresPreviousStage(folds, options);
}

export function registerTrainCommands(program: Command): void {
  program
    .command('train')
    .description('train a U-Net on a raw dataset with a strategy, one cross-validation fold, into a run folder')
    .requiredOption('--dataset <dir>', 'raw dataset (nnU-Net v2 layout)')
    .requiredOption('--out <run>', 'run folder (checkpoints, log.jsonl, plan.json)')
    .addOption(new Option('--strategy <s>', STRATEGY_NAMES.join(', ')).default('scratch'))
    .option('--pretrained <ckpt>', 'pre-trained model (transfer strategies; its plan is used for the target dataset): our checkpoint (RUN/checkpoint_final), or an nnU-Net v2 PlainConvUNet model folder with one fold, FOLDER/fold_K or its .pth')
    .addOption(new Option('--decoder-init <init>', 'frozen-encoder and hybrid: decoder from the pre-trained one or random (default pretrained)').choices(['pretrained', 'random'] as const))
    .addOption(new Option('--fuse-levels <levels>', 'hybrid: Selective Fusion at every skip level or at the bottleneck only (default all)').choices(['all', 'bottleneck'] as const))
    .option('--split <file>', 'split file: { folds: [{ train, test }] } (default: a seeded 5-fold split written to RUN/split.json)')
    .option('--fold <k>', "fold index, or 'all' (every case trains)", foldValue, 0 as number | 'all')
    .option('--preset <p>', 'plan the dataset with this preset: tiny, cpu, paper, nnunet (default cpu)')
    .option('--plan <file>', 'use this plan.json')
    .addOption(new Option('--configuration <name>', "the plan's nnU-Net configuration to train (default: the plan's own; 3d_fullres for a new plan); 3d_cascade_fullres is 3d_fullres taking the previous stage's mask too and needs --previous-stage").choices(CONFIGURATION_NAMES))
    .option('--epochs <n>', 'epochs (default: by preset, nnU-Net 1000)', integer('epochs', 1))
    .option('--iters-per-epoch <n>', 'training iterations per epoch (default: by preset, nnU-Net 250)', integer('iters-per-epoch', 1))
    .option('--iterations-per-epoch <n>', 'same as --iters-per-epoch', integer('iterations-per-epoch', 1))
    .option('--val-iters <n>', 'validation batches per epoch (default: by preset, nnU-Net 50)', integer('val-iters', 0))
    .option('--val-fraction <f>', 'part of the fold\'s training cases held out for validation (at least 1 case; default 0: every training case trains and validation uses their patches, as nnU-Net with the benchmark\'s splits)', fraction, SPLIT_DEFAULTS.validationFraction as number)
    .option('--seed <n>', 'seed', integer('seed', 0), 0)
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .addOption(precisionOption('fp32'))
    .option('--threads <n>', 'intra-op threads (at most 4 per CPU; default: libtorch\'s, its count of physical cores); the losses depend on it', threadCount('threads'))
    .option('--workers <n>', 'data-loader worker threads (0: in the main thread)', integer('workers', 0), 1)
    .option('--preprocessed <dir>', 'preprocessed cache (default RUN/preprocessed; folds can share one)')
    .option('--resume', 'continue the run in --out from its latest checkpoint')
    .option('--force', 'start again in an existing run folder (its run files are removed)')
    .option('--previous-stage <folds>', "3d_cascade_fullres: the 3d_lowres model, a folder of fold_K lesionseg runs; each training case's extra input is its prediction by the fold that held it out")
    .option('--nproc <n>', 'data-parallel ranks on this machine (the plan\'s batch is split over them; under srun or torchrun the ranks come from the environment)', integer('nproc', 1))
    .action(async (options) => {
      const setup = await dataParallelSetup(options);
      if ('launched' in setup) {
        process.exitCode = setup.launched;
        return;
      }
      const shared = sharedTrainingArgs(options, setup);
      const result = await trainCommand({
        previousStage: previousStageOption(options.configuration, options.previousStage, { device: shared.device, progress: shared.progress }),
        dataset: options.dataset,
        strategy: strategyByName(options.strategy, { ...(options.decoderInit !== undefined ? { decoderInit: options.decoderInit } : {}), ...(options.fuseLevels !== undefined ? { fuseLevels: options.fuseLevels } : {}) }),
        pretrained: options.pretrained ?? null,
        split: options.split ?? null,
        fold: options.fold,
        validationFraction: options.valFraction,
        configuration: options.configuration ?? null,
        ...shared,
      });
      exitIfInterrupted(shared.stop, result.finished);
      if (setup.dataParallel !== null && !setup.dataParallel.isWriter) return;
      const last = result.history.at(-1);
      process.stdout.write(
        `train: ${result.finished ? 'finished' : 'stopped'} after ${result.history.length} epoch(s)${result.resumedFromEpoch !== null ? ` (resumed at epoch ${result.resumedFromEpoch})` : ''}; ` +
          `best EMA pseudo Dice ${result.bestEma === null ? '-' : result.bestEma.toFixed(4)}; last train loss ${last ? last.train_loss.toFixed(4) : '-'}; ` +
          `${result.parameters.trainable} trainable / ${result.parameters.frozen} frozen parameters; ${meanEpochSeconds(result.history)} s per epoch; run folder ${result.runDir}\n`,
      );
    });
}
