/**
 * The batch loader on a real (tiny) preprocessed cache made by synth -> plan -> preprocess:
 * forced-foreground sampling, replay from records, identical batch k with 0 and 2 workers and after
 * seek, multi-dataset tasks, padding of a patch beyond the case, no tensor leaks, bad input errors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../../core/index.js';
import { writeSynthDataset, type LesionKind } from '../../synth/index.js';
import { liveTensors } from '../../tensor/index.js';
import { computeFingerprint } from '../fingerprint.js';
import { planExperiment } from '../planning.js';
import type { Plan } from '../planning_schema.js';
import { preprocessDataset } from '../preprocess_dataset.js';
import { applyAugmentation } from './augment_pipeline.js';
import { batchSpecFromOptions, cropSample, drawBatch, makeBatch, renderBatch } from './batch.js';
import type { BatchRecord, HostBatch, LoaderOptions } from './batch_types.js';
import { CaseStore } from './case_store.js';
import { createBatchLoader } from './loader.js';
import { isPlainCrop } from './spatial_transform.js';

/** Synthetic phantom cases (synth) -> fingerprint -> 'tiny' plan -> preprocessDataset, in a temporary folder. */
interface TestDataset {
  root: string;
  plan: Plan;
  preprocessedDirs: string[];
  caseIds: string[][];
  remove(): void;
}

/** Two small synthetic datasets (tumor and effusion by default), preprocessed under one plan. */
async function makeTestDataset(kinds: LesionKind[] = ['tumor', 'effusion'], casesPerDataset = 2): Promise<TestDataset> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-sampling-'));
  const rawDirs: string[] = [];
  const caseIds: string[][] = [];
  for (const [index, kind] of kinds.entries()) {
    const dir = path.join(root, `Dataset00${index + 1}_${kind}`);
    const written = await writeSynthDataset({ kind, cases: casesPerDataset, out: dir, seed: 11 + index, size: 'tiny' });
    rawDirs.push(dir);
    caseIds.push(written.caseIds);
  }
  const fingerprint = await computeFingerprint(rawDirs, { sampleBudget: 20_000 });
  const plan = planExperiment(fingerprint, 'tiny');
  const preprocessedDirs: string[] = [];
  for (const dir of rawDirs) {
    const out = path.join(root, 'preprocessed', path.basename(dir));
    await preprocessDataset(dir, plan, out, { workers: 0 });
    preprocessedDirs.push(out);
  }
  return { root, plan, preprocessedDirs, caseIds, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}

let dataset: TestDataset;

before(async () => {
  dataset = await makeTestDataset();
});

after(() => dataset.remove());

function options(overrides: Partial<LoaderOptions> = {}): LoaderOptions {
  return {
    preprocessedDirs: dataset.preprocessedDirs,
    caseIds: dataset.caseIds,
    plan: dataset.plan,
    seed: 42,
    augment: true,
    oversampleForeground: 0.33,
    workers: 0,
    ...overrides,
  };
}

function foregroundVoxels(batch: HostBatch, sample: number): number {
  const voxels = batch.shape[2] * batch.shape[3] * batch.shape[4];
  let count = 0;
  for (let i = sample * voxels; i < (sample + 1) * voxels; i++) if (batch.seg[i]! > 0) count += 1;
  return count;
}

test('forced-foreground samples contain foreground; sample 0 follows the random rule', () => {
  const spec = batchSpecFromOptions(options({ augment: false }));
  const store = new CaseStore();
  assert.deepEqual(spec.sampledPatchSize, dataset.plan.configuration.patchSize, 'validation batches use the final patch');
  let forcedWithForeground = 0;
  let randomForeground = 0;
  let forcedForeground = 0;
  const batches = 30;
  for (let k = 0; k < batches; k++) {
    const { batch, record } = makeBatch(spec, k, store);
    assert.deepEqual(record.samples.map((s) => s.forcedForeground), [false, true]);
    assert.equal(record.samples[0]!.foregroundLabel, null, 'sample 0 is random');
    assert.equal(record.samples[1]!.foregroundLabel, 1);
    if (foregroundVoxels(batch, 1) > 0) forcedWithForeground += 1;
    forcedForeground += foregroundVoxels(batch, 1);
    randomForeground += foregroundVoxels(batch, 0);
  }
  // Without augmentation the stored voxel is inside the patch, so every forced patch has foreground.
  assert.equal(forcedWithForeground, batches);
  assert.ok(forcedForeground > 3 * randomForeground, `forced ${forcedForeground} vs random ${randomForeground} foreground voxels`);
  // With augmentation (enlarged patch, rotation) forced patches still mostly hold foreground.
  const augmented = batchSpecFromOptions(options());
  let augmentedWithForeground = 0;
  for (let k = 0; k < 12; k++) if (foregroundVoxels(makeBatch(augmented, k, store).batch, 1) > 0) augmentedWithForeground += 1;
  assert.ok(augmentedWithForeground >= 9, `${augmentedWithForeground} of 12 augmented forced patches hold foreground`);
});

test('a batch replayed from its JSON record is identical; two datasets give task indices; no tensor leaks', () => {
  const spec = batchSpecFromOptions(options());
  const store = new CaseStore();
  const tasks = new Set<number>();
  const liveBefore = liveTensors();
  for (let k = 0; k < 8; k++) {
    const { batch, record } = makeBatch(spec, k, store);
    const replayed = renderBatch(spec, JSON.parse(JSON.stringify(record)) as BatchRecord, new CaseStore());
    assert.deepEqual(replayed, batch);
    assert.deepEqual(drawBatch(spec, k, store), record, 'drawing is deterministic');
    batch.tasks.forEach((task, j) => {
      tasks.add(task);
      assert.ok(dataset.caseIds[task]!.includes(batch.caseIds[j]!), 'case belongs to its task');
    });
    const [b, c, z, y, x] = batch.shape;
    assert.deepEqual([b, c, z, y, x], [2, 1, ...dataset.plan.configuration.patchSize]);
    assert.equal(batch.image.length, b * c * z * y * x);
    assert.equal(batch.seg.length, b * z * y * x);
    assert.ok(batch.seg.every((v) => v >= 0));
  }
  assert.deepEqual([...tasks].sort(), [0, 1], 'balanced sampling reaches both datasets');
  assert.equal(liveTensors(), liveBefore, 'no tensor leaks');
});

test('every sample equals the two-step pure path (crop the sampled patch, then the pipeline on a copy); a plain-crop step reads the final patch from the case into its slot', () => {
  const spec = batchSpecFromOptions(options());
  const store = new CaseStore();
  let plain = 0;
  let resampled = 0;
  let patchBeyondCase = 0;
  for (let k = 0; k < 16; k++) {
    const { batch, record } = makeBatch(spec, k, store);
    const voxels = spec.finalPatchSize[0] * spec.finalPatchSize[1] * spec.finalPatchSize[2];
    record.samples.forEach((sample, j) => {
      if (isPlainCrop(sample.augmentation!.spatial)) plain += 1;
      else resampled += 1;
      const loaded = store.get(spec.preprocessedDirs[sample.task]!, sample.caseId);
      if (sample.lowerBound.some((lb, axis) => lb < 0 || lb + spec.sampledPatchSize[axis]! > loaded.shape[axis]!)) patchBeyondCase += 1;
      // The two-step path: crop the whole sampled patch, then the pipeline (its spatial step centre-crops or resamples),
      // without reuseInput: it must leave the crop as it was.
      const crop = cropSample(spec, sample, store);
      const untouched = { image: crop.image.slice(), seg: crop.seg.slice() };
      const reference = applyAugmentation(crop, sample.augmentation!, { device: spec.device });
      assert.deepEqual(crop.image, untouched.image, `batch ${k} sample ${j}: the crop's image untouched`);
      assert.deepEqual(crop.seg, untouched.seg, `batch ${k} sample ${j}: the crop's labels untouched`);
      assert.deepEqual(batch.image.subarray(j * voxels, (j + 1) * voxels), reference.image, `batch ${k} sample ${j} image`);
      assert.deepEqual(batch.seg.subarray(j * voxels, (j + 1) * voxels), reference.seg, `batch ${k} sample ${j} labels`);
    });
  }
  assert.ok(plain >= 8 && resampled >= 2, `${plain} plain-crop and ${resampled} resampled samples checked`);
  assert.ok(patchBeyondCase >= 1, `${patchBeyondCase} of them reach beyond the case (padding checked too)`);
});

test('a patch reaching beyond the case is padded: image 0, labels -1 -> 0', () => {
  const spec = batchSpecFromOptions(options({ augment: false }));
  const store = new CaseStore();
  const caseId = dataset.caseIds[0]![0]!;
  const record: BatchRecord = {
    batchIndex: 0,
    samples: [{ task: 0, caseId, forcedForeground: false, foregroundLabel: null, lowerBound: [-4, -5, -6], augmentation: null }],
  };
  const batch = renderBatch(spec, record, store);
  const [, , z, y, x] = batch.shape;
  for (let k = 0; k < z; k++) {
    for (let j = 0; j < y; j++) {
      for (let i = 0; i < x; i++) {
        if (k >= 4 && j >= 5 && i >= 6) continue;
        const index = (k * y + j) * x + i;
        assert.equal(batch.image[index], 0);
        assert.equal(batch.seg[index], 0);
      }
    }
  }
});

test('batch k is identical with 0 and 2 workers and after seek(k); waitSeconds accumulates', async () => {
  const inline = createBatchLoader(options({ seed: 7 }));
  const expected: HostBatch[] = [];
  for (let k = 0; k < 5; k++) expected.push(await inline.next());
  assert.equal(inline.position, 5);
  assert.ok(inline.waitSeconds > 0);
  inline.seek(3);
  assert.deepEqual(await inline.next(), expected[3]);
  await inline.close();

  const threaded = createBatchLoader(options({ seed: 7, workers: 2, prefetch: 3 }));
  try {
    for (let k = 0; k < 5; k++) assert.deepEqual(await threaded.next(), expected[k], `batch ${k}`);
    threaded.seek(1);
    assert.equal(threaded.position, 1);
    assert.deepEqual(await threaded.next(), expected[1], 'batch 1 after seek');
    assert.deepEqual(await threaded.next(), expected[2], 'batch 2 after seek');
    assert.ok(threaded.waitSeconds > 0);
  } finally {
    await threaded.close();
  }
  await assert.rejects(threaded.next(), /closed/);
});

test('release(): later batches are written into the handed-back arrays, with the same values as into new ones (in this thread and in a worker)', async () => {
  const fresh = createBatchLoader(options({ seed: 9 }));
  const expected: HostBatch[] = [];
  for (let k = 0; k < 6; k++) expected.push(await fresh.next());
  await fresh.close();
  for (const workers of [0, 1]) {
    const loader = createBatchLoader(options({ seed: 9, workers, prefetch: 1 }));
    const arrays = new Set<Float32Array>();
    try {
      for (let k = 0; k < 6; k++) {
        const batch = await loader.next();
        assert.deepEqual({ ...batch }, { ...expected[k]!, image: batch.image, seg: batch.seg }, `${workers} worker(s), batch ${k}`);
        assert.deepEqual([...batch.image], [...expected[k]!.image], `${workers} worker(s), batch ${k} image`);
        assert.deepEqual([...batch.seg], [...expected[k]!.seg], `${workers} worker(s), batch ${k} labels`);
        // A worker writes into arrays shared with this thread.
        if (workers === 1) assert.ok(batch.image.buffer instanceof SharedArrayBuffer && batch.seg.buffer instanceof SharedArrayBuffer);
        arrays.add(batch.image);
        loader.release!(batch);
      }
    } finally {
      await loader.close();
    }
    // In this thread the next batch goes into the arrays released before it; a worker with one batch
    // prefetched alternates between two slots.
    assert.equal(arrays.size, workers === 0 ? 1 : 2, `${workers} worker(s): arrays used`);
  }
});

test("data-parallel shards: the ranks' samples are exactly the one-process batch, foreground share kept", async () => {
  // A batch of 3 over 2 ranks: rank 0 makes samples 0-1, rank 1 sample 2 (nnU-Net's split).
  const plan: Plan = { ...dataset.plan, configuration: { ...dataset.plan.configuration, batchSize: 3 } };
  const whole = createBatchLoader(options({ plan, seed: 5 }));
  const ranks = [0, 1].map((rank) => createBatchLoader(options({ plan, seed: 5, shard: { rank, worldSize: 2 }, workers: rank })));
  try {
    for (let k = 0; k < 3; k++) {
      const expected = await whole.next();
      const parts = await Promise.all(ranks.map((loader) => loader.next()));
      assert.deepEqual(parts.map((p) => p.shape[0]), [2, 1], `batch ${k}: shares`);
      const voxels = expected.seg.length / 3;
      const channels = expected.shape[1];
      assert.deepEqual(parts[0]!.image, expected.image.subarray(0, 2 * channels * voxels), `batch ${k}: rank 0 images`);
      assert.deepEqual(parts[1]!.image, expected.image.subarray(2 * channels * voxels), `batch ${k}: rank 1 images`);
      assert.deepEqual([...parts[0]!.seg, ...parts[1]!.seg], [...expected.seg], `batch ${k}: labels`);
      assert.deepEqual([...parts[0]!.caseIds, ...parts[1]!.caseIds], expected.caseIds);
    }
  } finally {
    await whole.close();
    for (const loader of ranks) await loader.close();
  }
  // Forced foreground by the global position j >= round(3 * 0.67) = 2: the last sample, on rank 1.
  const store = new CaseStore(1 << 30);
  const shares = [0, 1].map((rank) => drawBatch(batchSpecFromOptions(options({ plan, shard: { rank, worldSize: 2 } })), 0, store));
  assert.deepEqual(shares.map((r) => r.samples.map((sample) => sample.forcedForeground)), [[false, false], [true]]);
  assert.throws(() => createBatchLoader(options({ plan, shard: { rank: 0, worldSize: 4 } })), /batch size 3 is smaller than the 4 ranks/);
});

test('bad loader input gives InputErrors naming what is wrong', async () => {
  assert.throws(() => createBatchLoader(options({ caseIds: [dataset.caseIds[0]!] })), (error: unknown) => {
    return error instanceof InputError && /caseIds has 1 list/.test(error.message);
  });
  assert.throws(() => createBatchLoader(options({ caseIds: [['nope'], dataset.caseIds[1]!] })), (error: unknown) => {
    return error instanceof InputError && error.message.includes(path.join(dataset.preprocessedDirs[0]!, 'nope.npy'));
  });
  // A corrupt case file fails the batch that reads it, in a worker too, as an InputError naming the file.
  const broken = path.join(dataset.root, 'broken');
  fs.cpSync(dataset.preprocessedDirs[0]!, broken, { recursive: true });
  const id = dataset.caseIds[0]![0]!;
  fs.writeFileSync(path.join(broken, `${id}_seg.npy`), 'not a numpy file');
  const loader = createBatchLoader(options({ preprocessedDirs: [broken], caseIds: [[id]], workers: 1 }));
  try {
    await assert.rejects(loader.next(), (error: unknown) => error instanceof InputError && error.message.includes(`${id}_seg.npy`));
  } finally {
    await loader.close();
  }
});
