/**
 * Data-parallel training on this machine, in one run: training steps per second of one process
 * with 2 intra-op threads on the whole batch against 2 ranks (127.0.0.1, Gloo) with 1 thread each
 * on half the batch, the same U-Net and global batch; and for the ranks, the seconds per step
 * spent in the gradient all-reduce (bucketed, off the JS thread; inside a step it includes waiting
 * for the slower rank) and the same all-reduce run alone (the communication itself).
 *
 *   node --import tsx bench/data-parallel.ts [--patch 32,64,64] [--features 16,32,64,128] [--warmup 2] [--iterations 8]
 *
 * Prints one JSON object. Each configuration runs in fresh child processes of this script
 * (`--worker ...`), one after the other, so they never share the cores.
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuInfo, Rng } from '../src/core/index.js';
import { contiguous, fromArray, manualSeed, narrow, randn, scope, setNumThreads } from '../src/tensor/index.js';
import { SGD, deepSupervisionTargets, deepSupervisionWeights, type DiceCeOptions } from '../src/nn/index.js';
import { PlainConvUNet } from '../src/models/index.js';
import { rankBatchShare } from '../src/data/index.js';
import { applyGradients, backwardPass, joinDataParallel, type DataParallel, type TrainStepParts } from '../src/train/index.js';

const SCRIPT = fileURLToPath(import.meta.url);

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const ints = (text: string): number[] => text.split(',').map(Number);

const settings = {
  patchSize: ints(flag('patch', '32,64,64')),
  featuresPerStage: ints(flag('features', '16,32,64,128')),
  batchSize: Number(flag('batch', '2')),
  warmup: Number(flag('warmup', '2')),
  iterations: Number(flag('iterations', '8')),
};

interface WorkerResult {
  rank: number;
  threads: number;
  secondsPerStep: number;
  allReduceSecondsPerStep: number | null;
  /** The same all-reduce with no step around it (ranks already in step): the communication alone. */
  allReduceOnlySeconds: number | null;
  gradientBytes: number;
  losses: number[];
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function worker(): Promise<void> {
  const rank = Number(flag('rank', '0'));
  const world = Number(flag('world', '1'));
  const threads = Number(flag('threads', '1'));
  setNumThreads(threads);
  const dataParallel: DataParallel | null = world > 1 ? await joinDataParallel({ rank, worldSize: world, localRank: rank, host: '127.0.0.1', port: Number(flag('port', '0')), source: 'launcher', networkInterface: null }) : null;
  manualSeed(0);
  const stages = settings.featuresPerStage.length;
  const strides = Array.from({ length: stages }, (_, s) => (s === 0 ? [1, 1, 1] : [2, 2, 2]));
  const model = new PlainConvUNet({ inputChannels: 1, numClasses: 2, featuresPerStage: settings.featuresPerStage, kernelSizes: strides.map(() => [3, 3, 3]), strides, deepSupervision: true }, { device: { type: 'cpu' } });
  const optimizer = new SGD(model.parameterDict());
  const lossOptions: DiceCeOptions = { batchDice: true, ...(dataParallel !== null ? { crossRank: dataParallel.crossRank } : {}) };
  const parts: TrainStepParts = { model, optimizer, device: { type: 'cpu' }, precision: 'fp32', weights: deepSupervisionWeights(stages - 1), lossOptions };
  // The global batch, the same in every process; each rank takes its share.
  const [first, end] = rankBatchShare(settings.batchSize, world, rank);
  const voxels = settings.patchSize.reduce((a, b) => a * b, 1);
  const rng = new Rng(1);
  const labels = Float32Array.from({ length: settings.batchSize * voxels }, () => (rng.uniform(0, 1) < 0.2 ? 1 : 0));
  const { input, targets } = scope(() => {
    const whole = randn([settings.batchSize, 1, ...settings.patchSize]);
    const x = fromArray(whole.toTypedArray() as Float32Array, [settings.batchSize, 1, ...settings.patchSize]);
    const mine = contiguous(narrow(x, 0, first, end - first)).keep();
    const label = fromArray(labels.slice(first * voxels, end * voxels), [end - first, 1, ...settings.patchSize]);
    return { input: mine, targets: deepSupervisionTargets(label, strides, stages - 1).map((t) => t.keep()) };
  });
  const gradientBytes = model.parameters().reduce((sum, p) => sum + p.value.shape.reduce((a, b) => a * b, 1) * 4, 0);
  const seconds: number[] = [];
  const losses: number[] = [];
  let reduceSeconds = 0;
  for (let step = 0; step < settings.warmup + settings.iterations; step++) {
    const started = performance.now();
    const loss = backwardPass(parts, input, targets);
    if (dataParallel !== null) {
      const spent = await dataParallel.reduceGradients(model);
      if (step >= settings.warmup) reduceSeconds += spent;
    }
    applyGradients(parts, loss);
    if (step >= settings.warmup) {
      seconds.push((performance.now() - started) / 1000);
      losses.push(loss);
    }
  }
  let allReduceOnlySeconds: number | null = null;
  if (dataParallel !== null) {
    const alone: number[] = [];
    for (let i = 0; i < settings.iterations; i++) alone.push(await dataParallel.reduceGradients(model));
    allReduceOnlySeconds = median(alone);
  }
  const result: WorkerResult = {
    rank,
    threads,
    secondsPerStep: median(seconds),
    allReduceSecondsPerStep: dataParallel !== null ? reduceSeconds / settings.iterations : null,
    allReduceOnlySeconds,
    gradientBytes,
    losses,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function runWorker(args: string[]): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, SCRIPT, '--worker', ...args, ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim()) as WorkerResult) : reject(new Error(`worker ${args.join(' ')} exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  // Other work on the machine skews this comparison most of all (a 2-thread op waits for its
  // slower thread): the 1-minute load average before and after goes into the result.
  const loadBefore = os.loadavg()[0]!;
  process.stderr.write('data-parallel bench: 1 rank x 2 threads\n');
  const single = await runWorker(['--rank', '0', '--world', '1', '--threads', '2']);
  // What one rank's share costs without a peer: the step time data parallelism starts from.
  process.stderr.write('data-parallel bench: 1 rank x 1 thread on half the batch\n');
  const half = await runWorker(['--rank', '0', '--world', '1', '--threads', '1', '--batch', String(Math.ceil(settings.batchSize / 2))]);
  process.stderr.write('data-parallel bench: 2 ranks x 1 thread\n');
  const port = await freePort();
  const ranks = await Promise.all([0, 1].map((rank) => runWorker(['--rank', String(rank), '--world', '2', '--threads', '1', '--port', String(port)])));
  const slowest = Math.max(...ranks.map((r) => r.secondsPerStep));
  const maxLossDiff = Math.max(...single.losses.map((loss, i) => Math.abs(loss - ranks[0]!.losses[i]!) / Math.abs(loss)));
  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'data-parallel',
        cpu: cpuInfo(),
        load_average_1min: { before: loadBefore, after: os.loadavg()[0]! },
        model: { architecture: 'PlainConvUNet', features_per_stage: settings.featuresPerStage, patch_size: settings.patchSize, global_batch: settings.batchSize, gradient_mib: single.gradientBytes / 2 ** 20 },
        warmup: settings.warmup,
        iterations: settings.iterations,
        one_rank_two_threads: { steps_per_second: 1 / single.secondsPerStep, seconds_per_step: single.secondsPerStep },
        one_rank_one_thread_half_batch: { steps_per_second: 1 / half.secondsPerStep, seconds_per_step: half.secondsPerStep },
        two_ranks_one_thread: {
          steps_per_second: 1 / slowest,
          seconds_per_step: slowest,
          all_reduce_seconds_per_step: ranks.map((r) => r.allReduceSecondsPerStep),
          all_reduce_share_of_step: ranks.map((r) => r.allReduceSecondsPerStep! / r.secondsPerStep),
          // Inside a step the all-reduce also waits for the slower rank's backward; alone it is the communication.
          all_reduce_alone_seconds: ranks.map((r) => r.allReduceOnlySeconds),
        },
        speedup_two_ranks: single.secondsPerStep / slowest,
        max_relative_loss_difference: maxLossDiff,
      },
      null,
      2,
    )}\n`,
  );
}

if (process.argv.includes('--worker')) await worker();
else await main();
