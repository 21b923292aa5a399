/**
 * Benchmark: our training batch loader (nnU-Net sampling + nnU-Net's default augmentation) against
 * batchgeneratorsv2 driven by nnU-Net v2's own data loader and training transforms
 * (bench/loader_bg2.py), on the same preprocessed cases, at the `paper` preset's patch (50x160x192,
 * batch 2), per core, in one run.
 *
 * Data: `--cases` paper-size phantoms (`synth --size paper`, 120x512x512), planned with the paper
 * preset and preprocessed into `--data` (kept and reused when given, else a temporary folder).
 * Then `--rounds` rounds, the sides alternating which goes first, each round measuring
 * - throughput with 1 worker and with 2 (`--batches` batches after a warm-up that lets each of our
 *   workers read the cases, as the nnU-Net side reads them all before it counts; counted from the first
 *   batch that had to be waited for, so that nothing prefetched before the count is counted; the consumer takes batches as fast as they come): ours = createBatchLoader workers,
 *   theirs = nnUNetDataLoader in one process (1) and NonDetMultiThreadedAugmenter processes (2), as
 *   nnU-Net's trainer runs them. Per core: wall-clock batches/s / workers, and batches per CPU
 *   second of the process and its workers (on a shared machine, what the cores we got did). Our
 *   consumer hands each batch back (BatchLoader.release) as the trainer does once it is on the device.
 * - the wait of a training step that spends `--step` seconds (0.8: the GPU's time) asleep per
 *   batch (the GPU computes, the cores are left to the workers), with 1 and 2 workers: the mean
 *   per step, and the longest after the first step (the warm-up leaves the queue empty, so the first
 *   step waits for a whole batch).
 * The ratios are medians over rounds of ours / theirs. `nice -n 5` is the caller's business.
 * Prints one JSON object (and writes it to --out).
 *
 *   node --import tsx bench/loader-compare.ts [--cases 3] [--rounds 3] [--batches 8] [--steps 8]
 *     [--step 0.8] [--data DIR] [--out FILE] [--python /usr/bin/python3] [--ext /work/ext]
 *
 * The Python side needs Debian's python3-torch, python3-numpy, python3-scipy, python3-pandas,
 * python3-skimage and python3-threadpoolctl, and the sources of batchgeneratorsv2, batchgenerators,
 * acvl_utils and nnUNet (v2) under --ext (not part of this repository).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { augmentationGeometry, computeFingerprint, createBatchLoader, planExperiment, preprocessDataset, savePlan, type Plan } from '../src/data/index.js';
import { writeSynthDataset } from '../src/synth/index.js';
import { median, option, report } from './support.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cases = Number(option('cases', '3'));
const rounds = Number(option('rounds', '3'));
const batches = Number(option('batches', '8'));
const steps = Number(option('steps', '8'));
const stepSeconds = Number(option('step', '0.8'));
const python = option('python', process.env.LESIONSEG_PYTHON ?? '/usr/bin/python3');
const ext = option('ext', '/work/ext');
const WORKER_COUNTS = [1, 2] as const;
/** Samples each of our workers makes before the count (so that it has read the cases). */
const WARM_UP_SAMPLES = 12;
/** A batch waited for at least this long: the prefetch queue was empty. */
const DRAINED_WAIT_SECONDS = 0.02;

interface Prepared {
  dir: string;
  caseIds: string[];
  plan: Plan;
  planFile: string;
}

async function prepare(dataDir: string): Promise<Prepared> {
  const raw = path.join(dataDir, 'Dataset001_covid');
  const { caseIds } = await writeSynthDataset({ kind: 'covid', cases, out: raw, seed: 24, size: 'paper' });
  const plan = planExperiment(await computeFingerprint([raw]), 'paper');
  const dir = path.join(dataDir, 'preprocessed');
  await preprocessDataset(raw, plan, dir, { workers: 2 });
  const planFile = path.join(dataDir, 'plan.json');
  savePlan(planFile, plan);
  return { dir, caseIds, plan, planFile };
}

interface SideRun {
  batchesPerSecond: number;
  /** Batches per CPU second of the process and its worker threads or processes. */
  batchesPerCpuSecond: number;
  waitPerStepSeconds: number;
  /** The longest wait of a step after the first (the warm-up leaves the queue empty; from then on the workers have had a step's time). */
  maxWaitAfterFirstStepSeconds: number;
}

async function runOurs(data: Prepared, workers: number, seed: number): Promise<SideRun> {
  const options = { preprocessedDirs: [data.dir], caseIds: [data.caseIds], plan: data.plan, augment: true, oversampleForeground: 0.33, workers };
  const warmUpBatches = workers * Math.ceil(WARM_UP_SAMPLES / data.plan.configuration.batchSize);
  let loader = createBatchLoader({ ...options, seed });
  let batchesPerSecond: number;
  let batchesPerCpuSecond: number;
  try {
    // Warm-up: thread start, case reads (each worker reads a case on its first use and keeps it, as
    // the nnU-Net side holds every case in memory before it counts: WARM_UP_SAMPLES samples per
    // worker leave a case unread with probability (1 - 1/cases)^WARM_UP_SAMPLES, 0.8 % per case for
    // 3 cases); then count from an empty prefetch queue: take batches until one had to be waited
    // for (none made before the count is counted).
    for (let k = 0; k < warmUpBatches; k++) loader.release?.(await loader.next());
    for (let k = 0; k < 4 * workers + 4; k++) {
      const waited = loader.waitSeconds;
      loader.release?.(await loader.next());
      if (loader.waitSeconds - waited >= DRAINED_WAIT_SECONDS) break;
    }
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    for (let k = 0; k < batches; k++) loader.release?.(await loader.next());
    const cpu = process.cpuUsage(cpu0);
    batchesPerSecond = batches / ((performance.now() - t0) / 1000);
    batchesPerCpuSecond = batches / ((cpu.user + cpu.system) / 1e6);
  } finally {
    await loader.close();
  }
  loader = createBatchLoader({ ...options, seed: seed + 1 });
  try {
    for (let k = 0; k < warmUpBatches; k++) loader.release?.(await loader.next());
    const waits: number[] = [];
    for (let k = 0; k < steps; k++) {
      const before = loader.waitSeconds;
      loader.release?.(await loader.next());
      waits.push(loader.waitSeconds - before);
      await new Promise((resolve) => setTimeout(resolve, stepSeconds * 1000));
    }
    const waited = waits.reduce((a, b) => a + b, 0);
    return { batchesPerSecond, batchesPerCpuSecond, waitPerStepSeconds: waited / steps, maxWaitAfterFirstStepSeconds: Math.max(0, ...waits.slice(1)) };
  } finally {
    await loader.close();
  }
}

interface TheirRun extends SideRun {
  initialPatchSize: number[];
  dummy2d: boolean;
  torchThreads: number;
  torchVersion: string;
  standInModules: unknown;
  cropAndPadAdapted: unknown;
  /** batchgeneratorsv2's one-time blur benchmark, run before counting: [axis length, kernel size] pairs. */
  blurBenchmarkPrimed: unknown;
}

function runTheirs(data: Prepared, workers: number, seed: number): TheirRun {
  const pythonPath = ['batchgeneratorsv2', 'batchgenerators', 'acvl_utils', 'nnUNet', 'dynamic-network-architectures'].map((name) => path.join(ext, name)).join(':');
  const out = execFileSync(
    python,
    [path.join(root, 'bench/loader_bg2.py'), '--preprocessed', data.dir, '--plan', data.planFile, '--cases', data.caseIds.join(','),
      '--workers', String(workers), '--batches', String(batches), '--steps', String(steps), '--step', String(stepSeconds), '--seed', String(seed)],
    { encoding: 'utf8', env: { ...process.env, PYTHONPATH: pythonPath, nnUNet_raw: '', nnUNet_preprocessed: '', nnUNet_results: '' }, maxBuffer: 1 << 24 },
  );
  return JSON.parse(out) as TheirRun;
}

const round3 = (value: number): number => Number(value.toFixed(3));

async function main(): Promise<void> {
  const given = option('data', '');
  const dataDir = given !== '' ? path.resolve(given) : fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-bench-loader-compare-'));
  try {
    const t0 = performance.now();
    const data = await prepare(dataDir);
    const prepareSeconds = (performance.now() - t0) / 1000;
    if (option('prepare-only', '') !== '') return;
    const geometry = augmentationGeometry(data.plan.configuration.patchSize);
    const ours: Record<number, SideRun[]> = { 1: [], 2: [] };
    const theirs: Record<number, TheirRun[]> = { 1: [], 2: [] };
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['ours', 'theirs'] as const) : (['theirs', 'ours'] as const);
      for (const workers of WORKER_COUNTS) {
        for (const side of order) {
          const seed = 100 * round + workers;
          if (side === 'ours') ours[workers]!.push(await runOurs(data, workers, seed));
          else theirs[workers]!.push(runTheirs(data, workers, seed));
          process.stderr.write(`[loader-compare] round ${round} workers ${workers} ${side} done\n`);
        }
      }
    }
    const first = theirs[1]![0]!;
    const summary = (runs: SideRun[], workers: number) => {
      const rate = median(runs.map((r) => r.batchesPerSecond));
      return {
        batchesPerSecond: round3(rate),
        batchesPerSecondPerCore: round3(rate / workers),
        batchesPerCpuSecond: round3(median(runs.map((r) => r.batchesPerCpuSecond))),
        waitPerStepSeconds: round3(median(runs.map((r) => r.waitPerStepSeconds))),
        maxWaitAfterFirstStepSeconds: round3(median(runs.map((r) => r.maxWaitAfterFirstStepSeconds))),
        rounds: runs.map((r) => ({
          batchesPerSecond: round3(r.batchesPerSecond),
          batchesPerCpuSecond: round3(r.batchesPerCpuSecond),
          waitPerStepSeconds: round3(r.waitPerStepSeconds),
          maxWaitAfterFirstStepSeconds: round3(r.maxWaitAfterFirstStepSeconds),
        })),
      };
    };
    const perWorkers: Record<string, unknown> = {};
    for (const workers of WORKER_COUNTS) {
      const a = summary(ours[workers]!, workers);
      const b = summary(theirs[workers]!, workers);
      perWorkers[`workers${workers}`] = {
        lesionseg: a,
        batchgeneratorsv2: b,
        ratioPerCoreOursOverTheirs: round3(a.batchesPerSecond / b.batchesPerSecond),
        ratioPerCpuSecondOursOverTheirs: round3(a.batchesPerCpuSecond / b.batchesPerCpuSecond),
      };
    }
    // A step that never waits needs the workers to make one batch per step: workers >= step rate / per-core rate.
    // The per-core rate here is batches per CPU second with 1 worker (what one core does when it is the loader's alone).
    const stepRate = 1 / stepSeconds;
    const oursPerCore = median(ours[1]!.map((r) => r.batchesPerCpuSecond));
    const theirPerCore = median(theirs[1]!.map((r) => r.batchesPerCpuSecond));
    report({
      benchmark: 'loader-compare',
      cpu: cpuInfo(),
      cpus: os.cpus().length,
      preset: 'paper',
      cases: data.caseIds.length,
      medianCaseShape: data.plan.configuration.medianShape,
      patchSize: data.plan.configuration.patchSize,
      batchSize: data.plan.configuration.batchSize,
      sampledPatchSize: geometry.sampledPatchSize,
      sampledPatchSizeNnunet: first.initialPatchSize,
      dummy2d: geometry.dummy2d,
      dummy2dNnunet: first.dummy2d,
      torchVersionPython: first.torchVersion,
      torchThreadsPython: first.torchThreads,
      nnunetAdaptations: { standInModules: first.standInModules, cropAndPadAdapted: first.cropAndPadAdapted, blurBenchmarkPrimed: first.blurBenchmarkPrimed },
      rounds,
      batches,
      steps,
      stepSeconds,
      warmUpSamplesPerWorker: WARM_UP_SAMPLES,
      prepareSeconds: round3(prepareSeconds),
      ...perWorkers,
      workersForNoWaitAt8Cores: {
        note: 'extrapolated from the 1-worker batches per CPU second, assuming linear scaling over cores; 7 workers leave one core to the training process',
        batchesPerSecondNeeded: round3(stepRate),
        lesionsegWorkersNeeded: Math.ceil(stepRate / oursPerCore),
        batchgeneratorsv2WorkersNeeded: Math.ceil(stepRate / theirPerCore),
        lesionsegBatchesPerSecondWith7Workers: round3(7 * oursPerCore),
        batchgeneratorsv2BatchesPerSecondWith7Workers: round3(7 * theirPerCore),
      },
    });
  } finally {
    if (given === '') fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
