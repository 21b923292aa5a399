/**
 * Batches of a dataset with an ignore label: drawBatch passes each task's ignore label to the
 * patch choice, so no forced-foreground patch is centred on an ignore voxel, while a task
 * without one keeps treating the same value as a class; the loader options are checked; and a
 * raw dataset with an ignore label is planned without a class for it and preprocessed without
 * class locations of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { identityAffine } from '../../core/index.js';
import { writeDatasetJson, writeNifti } from '../../io/index.js';
import { computeFingerprint } from '../fingerprint.js';
import { planExperiment } from '../planning.js';
import { unetConfigFromPlan } from '../planning_unet.js';
import { preprocessDataset } from '../preprocess_dataset.js';
import type { Plan } from '../planning_schema.js';
import type { Triple } from '../planning_topology.js';
import { batchSpecFromOptions, drawBatch } from './batch.js';
import type { LoaderOptions } from './batch_types.js';
import type { CaseStore, LoadedCase } from './case_store.js';

const SHAPE: Triple = [12, 24, 24];
const PATCH: Triple = [8, 16, 16];
const IGNORE = 2;

/** One case: lesion (1) in a small block, a large ignore (2) block; locations of both stored, none near the lower faces. */
function syntheticCase(): LoadedCase {
  const [z, y, x] = SHAPE;
  const seg = new Int8Array(z * y * x);
  const at = (k: number, j: number, i: number): number => (k * y + j) * x + i;
  const locations: Record<string, [number, number, number][]> = { '1': [], '2': [] };
  for (let k = 0; k < z; k++) for (let j = 0; j < y; j++) for (let i = 0; i < x; i++) {
    if (k >= 5 && k < 7 && j >= 10 && j < 12 && i >= 10 && i < 12) {
      seg[at(k, j, i)] = 1;
      locations['1']!.push([k, j, i]);
    } else if (k >= 4 && j >= 14 && i >= 8) {
      seg[at(k, j, i)] = IGNORE;
      locations['2']!.push([k, j, i]);
    }
  }
  return { id: 'c0', data: new Float32Array(z * y * x), seg, channels: 1, shape: SHAPE, classLocations: locations };
}

const loaded = syntheticCase();
const store = { get: () => loaded } as unknown as CaseStore;

function options(overrides: Partial<LoaderOptions>): LoaderOptions {
  const plan = { configuration: { patchSize: PATCH, batchSize: 4, normalization: [{ channel: 'CT', scheme: 'zscore', useMaskForNorm: false }] } } as unknown as Plan;
  // every sample forced foreground, no augmentation (the sampled patch is the final patch)
  return { preprocessedDirs: ['/cache/A'], caseIds: [['c0']], plan, seed: 3, augment: false, oversampleForeground: 1, workers: 0, ...overrides };
}

/** The voxel a forced-foreground patch was centred on, from its lower bound (never clamped here). */
const centreLabel = (lowerBound: Triple): number => {
  const [k, j, i] = lowerBound.map((lb, axis) => lb + Math.floor(PATCH[axis]! / 2));
  return loaded.seg[(k! * SHAPE[1] + j!) * SHAPE[2] + i!]!;
};

test('no forced-foreground patch is centred on an ignore voxel', () => {
  const spec = batchSpecFromOptions(options({ ignoreLabels: [IGNORE] }));
  let forced = 0;
  for (let k = 0; k < 50; k++) {
    for (const sample of drawBatch(spec, k, store).samples) {
      assert.ok(sample.forcedForeground);
      forced++;
      assert.equal(sample.foregroundLabel, 1);
      assert.equal(centreLabel(sample.lowerBound), 1);
    }
  }
  assert.equal(forced, 200);
  // without an ignore label the value 2 is a class and about half of the patches centre on it
  const plain = batchSpecFromOptions(options({}));
  const onTwo = Array.from({ length: 50 }, (_, k) => drawBatch(plain, k, store).samples)
    .flat()
    .filter((sample) => sample.foregroundLabel === 2 && centreLabel(sample.lowerBound) === 2).length;
  assert.ok(onTwo > 50, `${onTwo} of 200 patches on label 2`);
});

test('ignoreLabels needs one entry per preprocessed folder, each a positive integer or null', () => {
  assert.throws(() => batchSpecFromOptions(options({ ignoreLabels: [] })), /ignoreLabels has 0 entries for 1 preprocessed folder/);
  assert.throws(() => batchSpecFromOptions(options({ ignoreLabels: [0] })), /ignoreLabels must be positive integers or null/);
  assert.deepEqual(batchSpecFromOptions(options({})).ignoreLabels, [null]);
});

test('a raw dataset with an ignore label: planned without a class for it, cached without its locations', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-ignore-'));
  try {
    const raw = path.join(root, 'Dataset001_Ignore');
    writeDatasetJson(raw, { channel_names: { '0': 'CT' }, labels: { background: 0, lesion: 1, ignore: IGNORE }, numTraining: 2, file_ending: '.nii.gz' });
    const [z, y, x] = SHAPE;
    for (const id of ['a', 'b']) {
      const image = new Int16Array(z * y * x).map((_, i) => (i % 23) * 10 - 100);
      await writeNifti(path.join(raw, 'imagesTr', `${id}_0000.nii.gz`), { data: image, shape: SHAPE, spacing: [1, 1, 1], affine: identityAffine([1, 1, 1]) });
      await writeNifti(path.join(raw, 'labelsTr', `${id}.nii.gz`), { data: Uint8Array.from(loaded.seg), shape: SHAPE, spacing: [1, 1, 1], affine: identityAffine([1, 1, 1]) });
    }
    const plan = planExperiment(await computeFingerprint([raw], { sampleBudget: 2_000 }), 'tiny');
    assert.equal(unetConfigFromPlan(plan).numClasses, 2);
    const cache = path.join(root, 'cache');
    await preprocessDataset(raw, plan, cache, { workers: 0 });
    const properties = JSON.parse(fs.readFileSync(path.join(cache, 'a.json'), 'utf8')) as { classLocations: Record<string, unknown[]> };
    assert.deepEqual(Object.keys(properties.classLocations), ['1']);
    assert.ok(properties.classLocations['1']!.length > 0);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
