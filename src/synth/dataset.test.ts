/**
 * writeSynthDataset: the raw layout read back (our reader, and the values nibabel read from the
 * same spec in test/fixtures/synth/synth_reference.json), case independence from the count, and
 * the overwrite policy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNifti } from '../io/index.js';
import { generatePhantom, writeSynthDataset, type SynthDatasetMeta } from './index.js';
import { sha256 } from './test-support.js';

interface VolumeReference {
  dtype: string;
  shapeXyz: number[];
  zoomsXyz: number[];
  affine: number[][];
  axcodes: string[];
  sha256: string;
  min: number;
  max: number;
}
interface DatasetReference {
  seed: number;
  datasetJson: unknown;
  cases: { caseId: string; intensity: string; image: VolumeReference; label: VolumeReference; lungs: VolumeReference }[];
}
const datasetReference = (
  JSON.parse(fs.readFileSync(new URL('../../test/fixtures/synth/synth_reference.json', import.meta.url), 'utf8')) as { dataset: DatasetReference }
).dataset;

function temporaryFolder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-synth-'));
}

test('a covid dataset reads back as nibabel read the same spec', async () => {
  const out = path.join(temporaryFolder(), 'covid');
  try {
    const { caseIds } = await writeSynthDataset({ kind: 'covid', cases: 2, out, seed: datasetReference.seed, size: 'tiny', radiopaediaConvention: true });
    assert.deepEqual(caseIds, ['covid_000', 'covid_001']);
    const datasetJson = JSON.parse(fs.readFileSync(path.join(out, 'dataset.json'), 'utf8')) as unknown;
    assert.deepEqual(datasetJson, datasetReference.datasetJson);
    assert.equal(datasetReference.cases.length, 2);
    for (const ref of datasetReference.cases) {
      const files = {
        image: path.join(out, 'imagesTr', `${ref.caseId}_0000.nii.gz`),
        label: path.join(out, 'labelsTr', `${ref.caseId}.nii.gz`),
        lungs: path.join(out, 'lungsTr', `${ref.caseId}.nii.gz`),
      };
      for (const key of ['image', 'label', 'lungs'] as const) {
        const image = await readNifti(files[key]);
        const expected = ref[key];
        assert.equal(sha256(image.data), expected.sha256, `${ref.caseId} ${key}: bytes differ from what nibabel read`);
        assert.equal(image.datatype, expected.dtype);
        assert.deepEqual([...image.shape].reverse(), expected.shapeXyz);
        image.affine.forEach((row, r) => row.forEach((v, c) => assert.ok(Math.abs(v - expected.affine[r]![c]!) < 1e-4)));
        assert.deepEqual(expected.axcodes, ['L', 'P', 'S']);
      }
      const meta = JSON.parse(fs.readFileSync(path.join(out, 'synth_meta.json'), 'utf8')) as SynthDatasetMeta;
      assert.equal(meta.cases[ref.caseId]!.intensity, ref.intensity);
    }
    // Every other covid case in the Radiopaedia convention, 0..255 (nibabel's min/max).
    assert.deepEqual(datasetReference.cases.map((c) => c.intensity), ['hu', 'radiopaedia']);
    assert.ok(datasetReference.cases[1]!.image.min >= 0 && datasetReference.cases[1]!.image.max <= 255);
    assert.ok(datasetReference.cases[0]!.image.min < -1000);
    assert.equal(datasetReference.cases[0]!.lungs.max, 2);
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
});

test('case i does not depend on the number of cases; tumor datasets have no lungsTr', async () => {
  const root = temporaryFolder();
  try {
    await writeSynthDataset({ kind: 'tumor', cases: 1, out: path.join(root, 'one'), seed: 9, size: 'tiny' });
    await writeSynthDataset({ kind: 'tumor', cases: 2, out: path.join(root, 'two'), seed: 9, size: 'tiny' });
    const a = await readNifti(path.join(root, 'one', 'imagesTr', 'tumor_000_0000.nii.gz'));
    const b = await readNifti(path.join(root, 'two', 'imagesTr', 'tumor_000_0000.nii.gz'));
    assert.deepEqual(a.data, b.data);
    const direct = generatePhantom('tumor', { seed: 9, size: 'tiny', caseIndex: 1 });
    const second = await readNifti(path.join(root, 'two', 'imagesTr', 'tumor_001_0000.nii.gz'));
    assert.deepEqual(second.data, direct.image.data);
    assert.equal(fs.existsSync(path.join(root, 'two', 'lungsTr')), false);
    const datasetJson = JSON.parse(fs.readFileSync(path.join(root, 'two', 'dataset.json'), 'utf8')) as { labels: unknown; numTraining: number };
    assert.deepEqual(datasetJson.labels, { background: 0, cancer: 1 });
    assert.equal(datasetJson.numTraining, 2);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('overwrite policy: refuses foreign or different folders, completes the same spec', async () => {
  const root = temporaryFolder();
  try {
    const foreign = path.join(root, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    await assert.rejects(writeSynthDataset({ kind: 'gtv', cases: 1, out: foreign, seed: 1, size: 'tiny' }), /foreign: is not empty and holds no readable synth_meta.json/);
    assert.deepEqual(fs.readdirSync(foreign), ['notes.txt']);

    const out = path.join(root, 'gtv');
    await writeSynthDataset({ kind: 'gtv', cases: 1, out, seed: 1, size: 'tiny' });
    await assert.rejects(writeSynthDataset({ kind: 'gtv', cases: 1, out, seed: 2, size: 'tiny' }), /different synthetic dataset: seed 1 \(asked 2\)/);
    await assert.rejects(writeSynthDataset({ kind: 'effusion', cases: 1, out, seed: 1, size: 'tiny' }), /kind "gtv" \(asked "effusion"\)/);

    const firstImage = path.join(out, 'imagesTr', 'gtv_000_0000.nii.gz');
    const before = fs.statSync(firstImage).mtimeMs;
    const ticks: string[] = [];
    const progress = { start() {}, tick(_steps?: number, status?: string) { ticks.push(status ?? ''); }, stop() {} };
    await writeSynthDataset({ kind: 'gtv', cases: 2, out, seed: 1, size: 'tiny', progress });
    assert.deepEqual(ticks, ['gtv_000 kept', 'gtv_001']);
    assert.equal(fs.statSync(firstImage).mtimeMs, before, 'the existing case is kept, not rewritten');
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'synth_meta.json'), 'utf8')) as SynthDatasetMeta;
    assert.deepEqual(Object.keys(meta.cases), ['gtv_000', 'gtv_001']);
    assert.equal(meta.numCases, 2);
    await assert.rejects(writeSynthDataset({ kind: 'gtv', cases: 1, out, seed: 1, size: 'tiny' }), /holds 2 cases .* more than the 1 asked for/);

    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    await assert.rejects(writeSynthDataset({ kind: 'gtv', cases: 1, out: file, seed: 1, size: 'tiny' }), /a-file: exists and is not a folder/);
    await assert.rejects(writeSynthDataset({ kind: 'gtv', cases: 0, out: path.join(root, 'zero'), seed: 1, size: 'tiny' }), /--cases must be a positive integer/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
