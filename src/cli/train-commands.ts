/**
 * `lesionseg train`: options to trainCommand's inputs. Strategies come from an explicit registry;
 * `scratch` is built in, the transfer strategies are filled in by src/transfer (until then they
 * answer "not available yet").
 */
import { type Command, Option } from '@commander-js/extra-typings';
import { InputError, parseDevice, type Logger } from '../core/index.js';
import { SCRATCH, STRATEGY_NAMES, SPLIT_DEFAULTS, trainCommand, type Precision, type StrategyName, type TrainingStrategy } from '../train/index.js';
import { terminalProgress } from './progress.js';

/** Implementations by name; null: not available yet. */
export const TRAINING_STRATEGIES: Record<StrategyName, TrainingStrategy | null> = {
  scratch: SCRATCH,
  continual: null,
  finetune: null,
  'frozen-encoder': null,
  hybrid: null,
};

function strategyByName(name: string): TrainingStrategy {
  if (!(STRATEGY_NAMES as readonly string[]).includes(name)) throw new InputError(`unknown strategy '${name}': use one of ${STRATEGY_NAMES.join(', ')}`, { code: 'bad-strategy' });
  const strategy = TRAINING_STRATEGIES[name as StrategyName];
  if (strategy === null) throw new InputError(`strategy '${name}' is not available yet (available: ${STRATEGY_NAMES.filter((n) => TRAINING_STRATEGIES[n] !== null).join(', ')})`, { code: 'strategy-unavailable' });
  return strategy;
}

function integer(name: string, minimum: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < minimum) throw new InputError(`--${name} must be an integer >= ${minimum}, got '${value}'`, { code: 'bad-arguments' });
    return n;
  };
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

const stderrLogger: Logger = {
  info: (message) => void process.stderr.write(`${message}\n`),
  warn: (message) => void process.stderr.write(`warning: ${message}\n`),
};

export function registerTrainCommands(program: Command): void {
  program
    .command('train')
    .description('train a U-Net on a raw dataset with a strategy, one cross-validation fold, into a run folder')
    .requiredOption('--dataset <dir>', 'raw dataset (nnU-Net v2 layout)')
    .requiredOption('--out <run>', 'run folder (checkpoints, log.jsonl, plan.json)')
    .addOption(new Option('--strategy <s>', STRATEGY_NAMES.join(', ')).default('scratch'))
    .option('--pretrained <ckpt>', 'pre-trained checkpoint (transfer strategies)')
    .option('--split <file>', 'split file: { folds: [{ train, test }] } (default: a seeded 5-fold split written to RUN/split.json)')
    .option('--fold <k>', "fold index, or 'all' (every case trains)", foldValue, 0 as number | 'all')
    .option('--preset <p>', 'plan the dataset with this preset: tiny, cpu, paper, nnunet (default cpu)')
    .option('--plan <file>', 'use this plan.json')
    .option('--epochs <n>', 'epochs (default: by preset, nnU-Net 1000)', integer('epochs', 1))
    .option('--iters-per-epoch <n>', 'training iterations per epoch (default: by preset, nnU-Net 250)', integer('iters-per-epoch', 1))
    .option('--iterations-per-epoch <n>', 'same as --iters-per-epoch', integer('iterations-per-epoch', 1))
    .option('--val-iters <n>', 'validation batches per epoch (default: by preset, nnU-Net 50)', integer('val-iters', 0))
    .option('--val-fraction <f>', 'part of the fold\'s training cases held out for validation (at least 1 case)', fraction, SPLIT_DEFAULTS.validationFraction as number)
    .option('--seed <n>', 'seed', integer('seed', 0), 0)
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .addOption(new Option('--precision <p>', 'fp32, bf16 or fp16').choices(['fp32', 'bf16', 'fp16'] as const).default('fp32' as const))
    .option('--threads <n>', 'intra-op threads', integer('threads', 1))
    .option('--workers <n>', 'data-loader worker threads (0: in the main thread)', integer('workers', 0), 1)
    .option('--preprocessed <dir>', 'preprocessed cache (default RUN/preprocessed; folds can share one)')
    .option('--resume', 'continue the run in --out from its latest checkpoint')
    .option('--force', 'start again in an existing run folder (its run files are removed)')
    .action(async (options) => {
      const result = await trainCommand({
        dataset: options.dataset,
        strategy: strategyByName(options.strategy),
        out: options.out,
        pretrained: options.pretrained ?? null,
        split: options.split ?? null,
        fold: options.fold,
        preset: options.preset ?? null,
        plan: options.plan ?? null,
        epochs: options.epochs ?? null,
        iterationsPerEpoch: options.itersPerEpoch ?? options.iterationsPerEpoch ?? null,
        validationIterations: options.valIters ?? null,
        validationFraction: options.valFraction,
        seed: options.seed,
        device: parseDevice(options.device),
        precision: options.precision as Precision,
        threads: options.threads ?? null,
        resume: options.resume === true,
        force: options.force === true,
        preprocessed: options.preprocessed ?? null,
        workers: options.workers,
        progress: terminalProgress(),
        logger: stderrLogger,
      });
      const last = result.history.at(-1);
      process.stdout.write(
        `train: ${result.finished ? 'finished' : 'stopped'} after ${result.history.length} epoch(s)${result.resumedFromEpoch !== null ? ` (resumed at epoch ${result.resumedFromEpoch})` : ''}; ` +
          `best EMA pseudo Dice ${result.bestEma === null ? '-' : result.bestEma.toFixed(4)}; last train loss ${last ? last.train_loss.toFixed(4) : '-'}; ` +
          `${result.parameters.trainable} trainable / ${result.parameters.frozen} frozen parameters; run folder ${result.runDir}\n`,
      );
    });
}
