/** Commands that exercise the engine: `bench train-step` and `selftest` (`demo` is in experiment-commands.ts). */
import type { Command } from '@commander-js/extra-typings';
import { assertDeviceAvailable, InputError, parseDevice, type Device } from '../core/index.js';
import { cudaDeviceCount } from '../tensor/index.js';
import { benchmarkTrainStep, runSelfTest } from '../train/index.js';
import { precisionOption, resolvePrecisionFlag } from './precision.js';
import { terminalProgress } from './progress.js';
import { positiveInt, threadCount } from './parse.js';

function intList(name: string) {
  return (value: string): number[] => {
    const parts = value.split(/[,x]/).map(Number);
    if (parts.some((n) => !Number.isInteger(n) || n < 1)) throw new InputError(`--${name} must be positive integers like 32,96,96, got '${value}'`);
    return parts;
  };
}

/** --device parsed, and refused (naming it) when this machine lacks that CUDA device. */
function availableDevice(text: string): Device {
  const device = parseDevice(text);
  assertDeviceAvailable(device, device.type === 'cpu' ? 0 : cudaDeviceCount());
  return device;
}

export function registerEngineCommands(program: Command): void {
  const bench = program.command('bench').description('benchmarks (JSON with --json)');
  bench
    .command('train-step')
    .description('median seconds per training iteration of a U-Net (forward, Dice+CE with deep supervision, backward, clip, SGD)')
    .addOption(precisionOption('auto'))
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .option('--threads <n>', 'intra-op threads (at most 4 per CPU)', threadCount('threads'), 2)
    .option('--iterations <n>', 'timed iterations', positiveInt('iterations'), 10)
    .option('--warmup <n>', 'untimed iterations first', positiveInt('warmup'), 3)
    .option('--patch <zyx>', 'patch size', intList('patch'), [32, 96, 96])
    .option('--batch <n>', 'batch size', positiveInt('batch'), 2)
    .option('--json', 'print JSON only')
    .action((options) => {
      const device = availableDevice(options.device);
      const result = benchmarkTrainStep({
        precision: resolvePrecisionFlag(options.precision, device),
        device,
        threads: options.threads,
        iterations: options.iterations,
        warmup: options.warmup,
        patchSize: options.patch,
        batchSize: options.batch,
      });
      if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else process.stdout.write(`train-step ${result.precision} on ${result.device} (${result.cpu.model}): ${result.seconds_per_iter.toFixed(3)} s/iter (median of ${result.seconds_all.length}), peak RSS ${result.peak_rss_mib.toFixed(0)} MiB, ${result.params} parameters\n`);
    });

  const selftest = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .option('--iterations <n>', 'SGD steps', positiveInt('iterations'), 60)
      .option('--seed <n>', 'seed', (v) => Number(v), 1)
      .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
      .addOption(precisionOption('fp32'))
      .option('--threads <n>', 'intra-op threads (at most 4 per CPU)', threadCount('threads'), 2)
      .action(async (options) => {
        const device = availableDevice(options.device);
        const { losses, params } = await runSelfTest({
          iterations: options.iterations,
          seed: options.seed,
          device,
          precision: resolvePrecisionFlag(options.precision, device),
          threads: options.threads,
          progress: terminalProgress(),
        });
        const head = losses.slice(0, 5).reduce((a, b) => a + b, 0) / Math.min(5, losses.length);
        const tail = losses.slice(-5).reduce((a, b) => a + b, 0) / Math.min(5, losses.length);
        process.stdout.write(`selftest: U-Net with ${params} parameters, ${losses.length} steps, loss ${head.toFixed(4)} (first 5) -> ${tail.toFixed(4)} (last 5)\n`);
        if (!(tail < head)) {
          process.stderr.write('selftest: the loss did not fall\n');
          process.exitCode = 1;
        }
      });
  selftest('selftest', 'train a small U-Net on random spheres and check that its loss falls');
}
