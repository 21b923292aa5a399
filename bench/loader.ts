/**
 * Benchmark: the training batch loader (nnU-Net sampling + default augmentation) at the `cpu`
 * preset's patch and batch size, on a small synthetic dataset preprocessed in a temporary folder.
 * Measures batches/s with 0 and 2 workers (consumer takes batches as fast as they come), and the
 * time a consumer waits per batch when it spends `--step` seconds per step (simulating training:
 * `sleep` leaves the cores to the workers, `busy` spins one core as a real training step would).
 * Prints one JSON object.
 *
 *   node --import tsx bench/loader.ts [--batches 12] [--steps 8] [--step 0.5] [--cases 4] [--size small]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { writeSynthDataset, type SynthSize } from '../src/synth/index.js';
import { computeFingerprint, createBatchLoader, planExperiment, preprocessDataset, augmentationGeometry, type Plan } from '../src/data/index.js';
import { getNumThreads } from '../src/tensor/index.js';
import { cpuInfo } from '../src/core/index.js';

const { values } = parseArgs({
  options: {
    batches: { type: 'string', default: '12' },
    steps: { type: 'string', default: '8' },
    step: { type: 'string', default: '0.5' },
    cases: { type: 'string', default: '4' },
    size: { type: 'string', default: 'small' },
  },
});
const batches = Number(values.batches);
const steps = Number(values.steps);
const stepSeconds = Number(values.step);

function busyWait(seconds: number): void {
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    // spin: a training step keeps a core busy
  }
}

async function throughput(plan: Plan, dir: string, ids: string[], workers: number): Promise<{ batchesPerSecond: number; firstBatchSeconds: number }> {
  const loader = createBatchLoader({ preprocessedDirs: [dir], caseIds: [ids], plan, seed: 1, augment: true, oversampleForeground: 0.33, workers });
  try {
    const t0 = performance.now();
    await loader.next(); // warm-up: worker start, case reads
    const firstBatchSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    for (let k = 0; k < batches; k++) await loader.next();
    return { batchesPerSecond: batches / ((performance.now() - t1) / 1000), firstBatchSeconds };
  } finally {
    await loader.close();
  }
}

async function waitPerBatch(plan: Plan, dir: string, ids: string[], workers: number, mode: 'sleep' | 'busy'): Promise<number> {
  const loader = createBatchLoader({ preprocessedDirs: [dir], caseIds: [ids], plan, seed: 2, augment: true, oversampleForeground: 0.33, workers });
  try {
    await loader.next();
    const before = loader.waitSeconds;
    for (let k = 0; k < steps; k++) {
      await loader.next();
      if (mode === 'busy') busyWait(stepSeconds);
      else await new Promise((resolve) => setTimeout(resolve, stepSeconds * 1000));
    }
    return (loader.waitSeconds - before) / steps;
  } finally {
    await loader.close();
  }
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-bench-loader-'));
  try {
    const raw = path.join(root, 'Dataset001_tumor');
    const { caseIds } = await writeSynthDataset({ kind: 'tumor', cases: Number(values.cases), out: raw, seed: 3, size: values.size as SynthSize });
    const plan = planExperiment(await computeFingerprint([raw]), 'cpu');
    const dir = path.join(root, 'preprocessed');
    await preprocessDataset(raw, plan, dir, { workers: 2 });
    const geometry = augmentationGeometry(plan.configuration.patchSize);
    const result: Record<string, unknown> = {
      benchmark: 'loader',
      cpus: os.cpus().length,
      mainThreadTorchThreads: getNumThreads(),
      preset: 'cpu',
      synthSize: values.size,
      cases: caseIds.length,
      patchSize: plan.configuration.patchSize,
      sampledPatchSize: geometry.sampledPatchSize,
      dummy2d: geometry.dummy2d,
      batchSize: plan.configuration.batchSize,
      batches,
      steps,
      stepSeconds,
    };
    for (const workers of [0, 2]) {
      const { batchesPerSecond, firstBatchSeconds } = await throughput(plan, dir, caseIds, workers);
      result[`workers${workers}`] = {
        batchesPerSecond: Number(batchesPerSecond.toFixed(3)),
        secondsPerBatch: Number((1 / batchesPerSecond).toFixed(3)),
        firstBatchSeconds: Number(firstBatchSeconds.toFixed(3)),
        waitPerBatchSecondsSleepingConsumer: Number((await waitPerBatch(plan, dir, caseIds, workers, 'sleep')).toFixed(4)),
        waitPerBatchSecondsBusyConsumer: Number((await waitPerBatch(plan, dir, caseIds, workers, 'busy')).toFixed(4)),
      };
    }
    console.log(JSON.stringify({ cpu: cpuInfo(), ...result }, null, 2));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
