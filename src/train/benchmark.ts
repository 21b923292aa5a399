/**
 * The training-step benchmark: median seconds per iteration (forward, Dice+CE with deep
 * supervision, backward, clipping at 12, SGD step), peak RSS and parameter count for a given
 * U-Net configuration. bench/train-step-compare.ts runs it beside the same network in PyTorch.
 */
import { fromArray, manualSeed, randn, scope, setNumThreads, getNumThreads, tuneAllocatorForTraining, type Device } from '../tensor/index.js';
import { SGD, deepSupervisionTargets, deepSupervisionWeights } from '../nn/index.js';
import { PlainConvUNet, type UNetConfig } from '../models/index.js';
import { cpuInfo, Rng, type CpuInfo } from '../core/index.js';
import { trainStep, type Precision } from './step.js';

export interface TrainStepBenchOptions {
  featuresPerStage: number[];
  strides: number[][];
  /** Per-stage conv kernels (a plan's, e.g. [1, 3, 3] on anisotropic data); null: 3x3x3 everywhere. */
  kernelSizes: number[][] | null;
  patchSize: number[];
  batchSize: number;
  inputChannels: number;
  numClasses: number;
  threads: number;
  precision: Precision;
  device: Device;
  warmup: number;
  iterations: number;
  seed: number;
}

/** 1 channel, 2 classes, features 16..256, patch 32x96x96, batch 2, 2 threads (issue 2's default). */
export const TRAIN_STEP_BENCH_DEFAULTS: TrainStepBenchOptions = {
  featuresPerStage: [16, 32, 64, 128, 256],
  strides: [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]],
  kernelSizes: null,
  patchSize: [32, 96, 96],
  batchSize: 2,
  inputChannels: 1,
  numClasses: 2,
  threads: 2,
  precision: 'fp32',
  device: { type: 'cpu' },
  warmup: 3,
  iterations: 10,
  seed: 0,
};

export interface TrainStepBenchResult {
  side: 'lesionseg';
  precision: Precision;
  device: string;
  /** The CPU the number was measured on (name, relevant flags, native bf16, cores). */
  cpu: CpuInfo;
  threads: number;
  patch_size: number[];
  batch_size: number;
  features_per_stage: number[];
  params: number;
  seconds_per_iter: number;
  seconds_all: number[];
  /** Median CPU seconds (user + system, all threads) per iteration: less sensitive than wall time to other processes on the cores. */
  cpu_seconds_per_iter: number;
  peak_rss_mib: number;
  losses: number[];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A random label map with blobs (so Dice has foreground), as int64 [B, 1, ...]. */
function randomTarget(shape: number[], numClasses: number, rng: Rng): BigInt64Array {
  const [batch, , z, y, x] = shape as [number, number, number, number, number];
  const out = new BigInt64Array(batch * z * y * x);
  for (let b = 0; b < batch; b++) {
    const cz = rng.uniform(0, z), cy = rng.uniform(0, y), cx = rng.uniform(0, x);
    const radius = Math.min(z, y, x) * 0.35;
    for (let k = 0; k < z; k++) for (let j = 0; j < y; j++) for (let i = 0; i < x; i++) {
      const inside = (k - cz) ** 2 + (j - cy) ** 2 + (i - cx) ** 2 < radius * radius;
      out[((b * z + k) * y + j) * x + i] = inside ? BigInt(1 + (i % (numClasses - 1))) : 0n;
    }
  }
  return out;
}

export function benchmarkTrainStep(options: Partial<TrainStepBenchOptions> = {}): TrainStepBenchResult {
  const o = { ...TRAIN_STEP_BENCH_DEFAULTS, ...options };
  tuneAllocatorForTraining();
  setNumThreads(o.threads);
  manualSeed(o.seed);
  const config: UNetConfig = {
    inputChannels: o.inputChannels,
    numClasses: o.numClasses,
    featuresPerStage: o.featuresPerStage,
    kernelSizes: o.kernelSizes ?? o.featuresPerStage.map(() => [3, 3, 3]),
    strides: o.strides,
    deepSupervision: true,
  };
  const model = new PlainConvUNet(config, { device: o.device });
  const optimizer = new SGD(model.parameterDict());
  const inputShape = [o.batchSize, o.inputChannels, ...o.patchSize];
  const rng = new Rng(o.seed);
  const numOutputs = o.featuresPerStage.length - 1;
  const [x, targets] = scope(() => {
    const input = randn(inputShape, { device: o.device });
    const target = fromArray(randomTarget(inputShape, o.numClasses, rng), [o.batchSize, 1, ...o.patchSize], { device: o.device });
    return [input, deepSupervisionTargets(target, o.strides, numOutputs)] as const;
  });
  const parts = { model, optimizer, device: o.device, precision: o.precision, weights: deepSupervisionWeights(numOutputs) };
  const seconds: number[] = [];
  const cpuSeconds: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < o.warmup + o.iterations; i++) {
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    const result = trainStep(parts, x, targets);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    if (i >= o.warmup) {
      seconds.push(elapsed);
      cpuSeconds.push((cpu.user + cpu.system) / 1e6);
      losses.push(result.loss);
    }
  }
  const params = model.countParameters().total;
  x.dispose();
  for (const t of targets) t.dispose();
  optimizer.dispose();
  model.dispose();
  return {
    side: 'lesionseg',
    precision: o.precision,
    device: o.device.type === 'cpu' ? 'cpu' : `cuda:${o.device.index}`,
    cpu: cpuInfo(),
    threads: getNumThreads(),
    patch_size: o.patchSize,
    batch_size: o.batchSize,
    features_per_stage: o.featuresPerStage,
    params,
    seconds_per_iter: median(seconds),
    seconds_all: seconds,
    cpu_seconds_per_iter: median(cpuSeconds),
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    losses,
  };
}
