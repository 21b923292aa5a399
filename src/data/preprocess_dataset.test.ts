/**
 * Dataset-level fingerprint, planning and preprocessing on a small raw dataset written here:
 * workers 0 / 1 / 2 give identical caches, a second run skips complete cases, a broken case file
 * is redone, and bad datasets fail with an InputError naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { identityAffine, InputError, Rng, ValidationError, type Shape3 } from '../core/index.js';
import { readNpy, writeDatasetJson, writeNifti } from '../io/index.js';
import { computeFingerprint } from './fingerprint.js';
import { planExperiment } from './planning.js';
import { loadPlan, validatePlan } from './planning_schema.js';
import { preprocessDataset } from './preprocess_dataset.js';
import { unetConfigFromPlan } from './planning_unet.js';

async function writeDataset(dir: string, cases: number, labels: Record<string, number>, seed: number): Promise<void> {
  fs.mkdirSync(path.join(dir, 'imagesTr'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'labelsTr'), { recursive: true });
  writeDatasetJson(dir, { channel_names: { '0': 'CT' }, labels, numTraining: cases, file_ending: '.nii.gz' });
  const rng = new Rng(seed);
  for (let c = 0; c < cases; c++) {
    const shape: Shape3 = [8 + c, 20, 18];
    const spacing: Shape3 = [2.5 + 0.5 * c, 0.8, 0.8];
    const voxels = shape[0] * shape[1] * shape[2];
    const image = new Int16Array(voxels);
    const label = new Uint8Array(voxels);
    for (let z = 0; z < shape[0]; z++) {
      for (let y = 0; y < shape[1]; y++) {
        for (let x = 0; x < shape[2]; x++) {
          const i = (z * shape[1] + y) * shape[2] + x;
          const inside = (y - 10) ** 2 / 64 + (x - 9) ** 2 / 49 <= 1;
          if (!inside) continue;
          image[i] = Math.round(rng.normal(-600, 200));
          if (z >= 2 && z < 5 && Math.abs(y - 10) < 3 && Math.abs(x - 9) < 3) {
            label[i] = Math.max(...Object.values(labels)) > 1 && x > 9 ? 2 : 1;
            image[i] = Math.round(rng.normal(40, 30));
          }
        }
      }
    }
    const affine = identityAffine([spacing[2], spacing[1], spacing[0]]);
    await writeNifti(path.join(dir, 'imagesTr', `case${c}_0000.nii.gz`), { data: image, shape, spacing, affine });
    await writeNifti(path.join(dir, 'labelsTr', `case${c}.nii.gz`), { data: label, shape, spacing, affine });
  }
}

function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) out[name] = fs.readFileSync(path.join(dir, name)).toString('base64');
  return out;
}

test('fingerprint -> plan -> preprocess, with 0, 1 and 2 workers, resumable', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-data-'));
  try {
    const a = path.join(root, 'Dataset001_A');
    const b = path.join(root, 'Dataset002_B');
    await writeDataset(a, 3, { background: 0, lesion: 1 }, 1);
    await writeDataset(b, 2, { background: 0, tumor: 1, core: 2 }, 2);

    const fingerprint = await computeFingerprint([a, b], { sampleBudget: 50_000 });
    assert.equal(fingerprint.summary.numCases, 5);
    assert.equal(fingerprint.summary.intensitySampling.samplesPerCase, 10_000);
    const ct = fingerprint.summary.foregroundIntensityPropertiesPerChannel[0]!;
    assert.ok(ct.mean > -20 && ct.mean < 100, `foreground mean ${ct.mean}`);
    const plan = planExperiment(fingerprint, 'tiny');
    assert.deepEqual(validatePlan(plan), []);
    assert.deepEqual(plan.datasets.map((d) => d.name), ['Dataset001_A', 'Dataset002_B']);
    assert.deepEqual(plan.configuration.targetSpacing, [3, Math.fround(0.8), Math.fround(0.8)]);
    assert.equal(plan.configuration.normalization[0]!.scheme, 'ct');
    assert.equal(unetConfigFromPlan(plan, 'Dataset002_B').numClasses, 3);
    assert.deepEqual(unetConfigFromPlan(plan).numClassesPerDataset, { Dataset001_A: 2, Dataset002_B: 3 });

    const outs = [0, 1, 2].map((workers) => path.join(root, `out${workers}`));
    for (const [workers, out] of outs.entries()) {
      const result = await preprocessDataset(a, plan, out, { workers });
      assert.deepEqual(result.processed, ['case0', 'case1', 'case2']);
    }
    const reference = listing(outs[0]!);
    assert.deepEqual(listing(outs[1]!), reference);
    assert.deepEqual(listing(outs[2]!), reference);

    const data = readNpy(path.join(outs[0]!, 'case1.npy'));
    const seg = readNpy(path.join(outs[0]!, 'case1_seg.npy'));
    assert.equal(data.dtype, '<f4');
    assert.equal(seg.dtype, '|i1');
    assert.equal(data.shape.length, 4);
    assert.deepEqual(seg.shape, [1, ...data.shape.slice(1)]);
    const properties = JSON.parse(fs.readFileSync(path.join(outs[0]!, 'case1.json'), 'utf8'));
    assert.deepEqual(properties.shapeBeforeCropping, [9, 20, 18]);
    assert.deepEqual(properties.originalSpacing, [3, Math.fround(0.8), Math.fround(0.8)]);
    assert.ok(properties.classLocations['1'].length > 0);
    assert.deepEqual(loadPlan(path.join(outs[0]!, 'plan.json')), plan);

    const again = await preprocessDataset(a, plan, outs[2]!, { workers: 2 });
    assert.deepEqual(again.processed, []);
    assert.deepEqual(again.skipped, ['case0', 'case1', 'case2']);
    fs.truncateSync(path.join(outs[2]!, 'case2.npy'), 100);
    const repaired = await preprocessDataset(a, plan, outs[2]!, { workers: 1 });
    assert.deepEqual(repaired.processed, ['case2']);
    assert.deepEqual(listing(outs[2]!), reference);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('bad datasets: missing label, channel mismatch, broken image name the file', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-data-'));
  try {
    const dir = path.join(root, 'Dataset003_C');
    await writeDataset(dir, 2, { background: 0, lesion: 1 }, 3);
    const plan = planExperiment(await computeFingerprint(dir, { sampleBudget: 1000 }), 'tiny');

    fs.rmSync(path.join(dir, 'labelsTr', 'case1.nii.gz'));
    await assert.rejects(computeFingerprint(dir), (e: unknown) => e instanceof InputError && /case1_0000\.nii\.gz: case 'case1' has no label/.test(e.message));
    // preprocess runs the dataset check of `check` and `train`: every issue listed, nothing written.
    await assert.rejects(preprocessDataset(dir, plan, path.join(root, 'out')), (e: unknown) => e instanceof ValidationError && e.issues.some((i) => i.code === 'missing-label' && i.file.endsWith('case1.nii.gz')));
    assert.equal(fs.existsSync(path.join(root, 'out')), false);

    await writeDataset(dir, 2, { background: 0, lesion: 1 }, 3);
    const twoChannels = { ...plan, configuration: { ...plan.configuration, normalization: [...plan.configuration.normalization, plan.configuration.normalization[0]!] } };
    await assert.rejects(preprocessDataset(dir, twoChannels, path.join(root, 'out')), (e: unknown) => e instanceof InputError && /dataset\.json: the dataset has 1 channel/.test(e.message));

    await writeDataset(dir, 2, { background: 0, lesion: 1 }, 3);
    fs.writeFileSync(path.join(dir, 'imagesTr', 'case0_0000.nii.gz'), 'not a nifti');
    await assert.rejects(preprocessDataset(dir, plan, path.join(root, 'out2'), { workers: 1 }), (e: unknown) => e instanceof InputError && /case0_0000\.nii\.gz/.test(e.message));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a plan of another dataset, and a cache made with another plan or for another dataset, are refused before anything is written', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-data-'));
  try {
    const a = path.join(root, 'Dataset001_A');
    const b = path.join(root, 'Dataset002_B');
    await writeDataset(a, 2, { background: 0, lesion: 1 }, 1);
    await writeDataset(b, 2, { background: 0, lesion: 1 }, 2);
    const planA = planExperiment(await computeFingerprint(a, { sampleBudget: 1000 }), 'tiny');
    await assert.rejects(
      preprocessDataset(b, planA, path.join(root, 'never')),
      (e: unknown) => e instanceof InputError && e.code === 'plan-mismatch' && /'Dataset001_A'.*not the dataset 'Dataset002_B'/.test(e.message),
    );
    assert.equal(fs.existsSync(path.join(root, 'never')), false);

    const cache = path.join(root, 'cache');
    await preprocessDataset(a, planA, cache, { workers: 0 });
    const before = listing(cache);
    const otherSpacing = { ...planA, configuration: { ...planA.configuration, targetSpacing: [4, 1, 1] as [number, number, number] } };
    await assert.rejects(
      preprocessDataset(a, otherSpacing, cache, { workers: 0 }),
      (e: unknown) => e instanceof InputError && e.code === 'cache-mismatch' && e.message.startsWith(`${cache}: `) && /another plan.*use another --out folder/.test(e.message),
    );
    const trainFlags = { option: '--preprocessed', forceFlag: '--force' };
    await assert.rejects(preprocessDataset(a, otherSpacing, cache, { workers: 0, cache: trainFlags }), /use another --preprocessed folder, or --force to replace it/);
    assert.deepEqual(listing(cache), before, 'the refused calls changed nothing');
    // The same preprocessing under another batch size is the same cache; --force replaces another one.
    const otherBatch = { ...planA, configuration: { ...planA.configuration, batchSize: planA.configuration.batchSize + 1 } };
    assert.deepEqual((await preprocessDataset(a, otherBatch, cache, { workers: 0 })).skipped, ['case0', 'case1']);
    assert.deepEqual((await preprocessDataset(a, otherSpacing, cache, { workers: 0, cache: { ...trainFlags, force: true } })).processed, ['case0', 'case1']);

    // Another dataset's cases in the cache: refused too (a plan covering both datasets).
    const planAB = planExperiment(await computeFingerprint([a, b], { sampleBudget: 1000 }), 'tiny');
    const shared = path.join(root, 'shared');
    await preprocessDataset(a, planAB, shared, { workers: 0 });
    await assert.rejects(preprocessDataset(b, planAB, shared, { workers: 0 }), (e: unknown) => e instanceof InputError && e.code === 'cache-mismatch' && /cases of 'Dataset001_A', not only of 'Dataset002_B'/.test(e.message));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
