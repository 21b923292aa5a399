/** `lesionseg predict`: segment images with a trained model or a fold ensemble (src/infer predictFiles). */
import { type Command, Option } from '@commander-js/extra-typings';
import { InputError, parseDevice, type Logger } from '../core/index.js';
import { predictFiles, type InferencePrecision, type SpatialAxis } from '../infer/index.js';
import { setNumThreads } from '../tensor/index.js';
import { terminalProgress } from './progress.js';
import { positiveInt } from './parse.js';

const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const;

function stepFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InputError(`--step must be a fraction of the patch in (0, 1], got '${value}'`);
  return n;
}

function foldList(value: string): number[] {
  const folds = value.split(',').map((v) => Number(v.trim()));
  if (folds.some((n) => !Number.isInteger(n) || n < 0)) throw new InputError(`--folds must be fold numbers like 0,1,2,3,4, got '${value}'`);
  return folds;
}

function mirrorAxes(value: string): SpatialAxis[] {
  const axes = value.split(',').map((v) => Number(v.trim()));
  if (axes.some((a) => a !== 0 && a !== 1 && a !== 2)) throw new InputError(`--mirror-axes must list axes among 0 (z), 1 (y), 2 (x), got '${value}'`);
  return axes as SpatialAxis[];
}

const stderrLogger: Logger = {
  info: (message) => process.stderr.write(`${message}\n`),
  warn: (message) => process.stderr.write(`warning: ${message}\n`),
};

export function registerPredictCommands(program: Command): void {
  program
    .command('predict')
    .description('segment CT images: preprocessing from the model\'s plan, Gaussian sliding window, mirroring TTA, masks in the input geometry')
    .requiredOption('-m, --model <path>', 'a checkpoint (.safetensors with its .json), a run folder (uses checkpoint_final) or a folder of fold_K runs (ensemble)')
    .requiredOption('-i, --input <path>', 'an image (.nii/.nii.gz; case_0000.nii.gz picks up case_0001... as further channels) or a folder of <case>_0000.nii.gz')
    .requiredOption('-o, --output <path>', 'a .nii.gz file (one case) or a folder for <case>.nii.gz')
    .option('--tta', 'mirroring test-time augmentation (default)')
    .option('--no-tta', 'no mirroring: one pass per window (8x faster)')
    .option('--mirror-axes <axes>', 'axes mirrored with TTA (0 z, 1 y, 2 x)', mirrorAxes, [0, 1, 2] as SpatialAxis[])
    .option('--step <fraction>', 'window step as a fraction of the patch', stepFraction, 0.5)
    .option('--folds <list>', 'folds to ensemble when -m is a folder of fold_K runs (default: all found)', foldList)
    .option('--save-probabilities', 'also write softmax probabilities: one float32 <case>_probabilities_<k>.nii.gz per class')
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .addOption(new Option('--precision <p>', 'fp32, bf16 or fp16 (autocast)').choices(PRECISIONS).default('fp32' as const))
    .option('--batch <n>', 'windows per forward batch', positiveInt('batch'), 2)
    .addOption(new Option('--accumulate-on <where>', 'where the sliding-window sums live').choices(['device', 'cpu'] as const).default('device' as const))
    .option('--threads <n>', 'intra-op CPU threads', positiveInt('threads'))
    .option('--json', 'print a JSON summary on stdout')
    .action(async (options) => {
      if (options.threads !== undefined) setNumThreads(options.threads);
      const result = await predictFiles(
        {
          model: options.model,
          input: options.input,
          output: options.output,
          ...(options.folds !== undefined ? { folds: options.folds } : {}),
          saveProbabilities: options.saveProbabilities === true,
          device: parseDevice(options.device),
          precision: options.precision as InferencePrecision,
          mirrorAxes: options.tta === false ? [] : options.mirrorAxes,
          stepFraction: options.step,
          windowsPerBatch: options.batch,
          accumulateOn: options.accumulateOn,
          progress: terminalProgress(),
        },
        stderrLogger,
      );
      if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else process.stdout.write(`predicted ${result.cases.length} case(s) with ${result.checkpoints.length} model(s)\n`);
    });
}
