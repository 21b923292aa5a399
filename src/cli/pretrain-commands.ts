/**
 * `lesionseg pretrain --datasets DIR,DIR,... --mode single|multi --out RUN`: single-lesion (one
 * model per source dataset, RUN/<dataset>/) or multi-lesion (one multi-head model, RUN/)
 * pre-training under one shared plan; see src/train/pretrain.ts.
 */
import { type Command } from '@commander-js/extra-typings';
import { InputError } from '../core/index.js';
import { PRETRAIN_MODES, pretrainCommand, type PretrainMode } from '../train/index.js';
import { dataParallelSetup, meanEpochSeconds, sharedTrainingArgs } from './train-commands.js';
import { integer, threadCount } from './parse.js';
import { precisionOption } from './precision.js';
import { exitIfInterrupted } from './signals.js';

function datasetList(value: string): string[] {
  const dirs = value.split(',').map((d) => d.trim()).filter((d) => d.length > 0);
  if (dirs.length === 0) throw new InputError(`--datasets needs a comma-separated list of dataset folders, got '${value}'`, { code: 'bad-arguments' });
  return dirs;
}

function modeValue(value: string): PretrainMode {
  if (!(PRETRAIN_MODES as readonly string[]).includes(value)) throw new InputError(`unknown pre-training mode '${value}': use ${PRETRAIN_MODES.join(' or ')}`, { code: 'bad-arguments' });
  return value as PretrainMode;
}

export function registerPretrainCommands(program: Command): void {
  program
    .command('pretrain')
    .description('pre-train on source datasets under one shared plan: single-lesion (a model per dataset) or multi-lesion (one model, a head per dataset)')
    .requiredOption('--datasets <dirs>', 'comma-separated raw datasets (nnU-Net v2 layout)', datasetList)
    .requiredOption('--mode <mode>', 'single (a model per dataset) or multi (one model, a head per dataset)', modeValue)
    .requiredOption('--out <run>', 'run folder (multi: the run; single: one run per dataset in RUN/<dataset>/)')
    .option('--preset <p>', 'plan all datasets together with this preset: tiny, cpu, paper, nnunet (default cpu)')
    .option('--plan <file>', 'use this plan.json (it must cover every dataset)')
    .option('--epochs <n>', 'epochs (default: by preset, nnU-Net 1000)', integer('epochs', 1))
    .option('--iters-per-epoch <n>', 'training iterations per epoch (default: by preset, nnU-Net 250)', integer('iters-per-epoch', 1))
    .option('--iterations-per-epoch <n>', 'same as --iters-per-epoch', integer('iterations-per-epoch', 1))
    .option('--val-iters <n>', 'validation batches per epoch (default: by preset, nnU-Net 50)', integer('val-iters', 0))
    .option('--seed <n>', 'seed (also of the 80/20 train/validation split)', integer('seed', 0), 0)
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .addOption(precisionOption('fp32'))
    .option('--threads <n>', 'intra-op threads (at most 4 per CPU)', threadCount('threads'))
    .option('--workers <n>', 'data-loader worker threads (0: in the main thread)', integer('workers', 0), 1)
    .option('--preprocessed <root>', 'root of the preprocessed caches, one folder per dataset (default RUN/preprocessed)')
    .option('--resume', 'continue the run(s) in --out from their latest checkpoints')
    .option('--force', 'start again in an existing run folder (its run files are removed)')
    .option('--nproc <n>', 'data-parallel ranks on this machine (the plan\'s batch is split over them; under srun or torchrun the ranks come from the environment)', integer('nproc', 1))
    .action(async (options) => {
      const setup = await dataParallelSetup(options);
      if ('launched' in setup) {
        process.exitCode = setup.launched;
        return;
      }
      const shared = sharedTrainingArgs(options, setup);
      const result = await pretrainCommand({
        datasets: options.datasets,
        mode: options.mode,
        ...shared,
      });
      exitIfInterrupted(shared.stop, result.runs.every((run) => run.result.finished));
      if (setup.dataParallel !== null && !setup.dataParallel.isWriter) return;
      for (const run of result.runs) {
        const last = run.result.history.at(-1);
        process.stdout.write(
          `pretrain ${result.mode} [${run.datasets.join(', ')}]: ${run.result.finished ? 'finished' : 'stopped'} after ${run.result.history.length} epoch(s); ` +
            `best EMA pseudo Dice ${run.result.bestEma === null ? '-' : run.result.bestEma.toFixed(4)}; last train loss ${last ? last.train_loss.toFixed(4) : '-'}; ` +
            `${meanEpochSeconds(run.result.history)} s per epoch; run folder ${run.runDir}\n`,
        );
      }
    });
}
