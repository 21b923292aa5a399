/**
 * covid19-ctseg importer on tiny files laid out as the Zenodo release: case ids, HU images kept,
 * Radiopaedia 0..255 images mapped back to HU (against the numpy reference), masks, lungs,
 * import_meta.json, resume, and refusals with every problem listed and nothing written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../../core/index.js';
import { checkDataset, readNifti, readDatasetJson } from '../../index.js';
import { COVID19_CTSEG_CASE_IDS, covidCaseId, importDataset, IMPORT_META_FILE, type ImportMeta } from './index.js';
import { binaryMask, filesUnder, huImage, issuesOf, nifti, VOXELS, withTemp } from './test-support.js';

const REFERENCE = JSON.parse(
  fs.readFileSync(new URL('../../../../test/fixtures/importers/importers_reference.json', import.meta.url), 'utf8'),
) as { values: number[]; hu: number[]; hu_int16: number[] };
// The copy the package ships (data/), so CI always runs the comparison.
const SPLIT_FILE = fileURLToPath(new URL('../../../../data/covid19_ctseg_5fold_split.json', import.meta.url));

/** 0..255 values as the Radiopaedia scans hold them. */
const windowed = () => new Float32Array(VOXELS).map((_, i) => REFERENCE.values[(i * 41) % 256]!);
const lungs = () => new Uint8Array(VOXELS).map((_, i) => i % 3);

async function release(src: string, options: { skipInfection?: string; badShape?: string; badValue?: string } = {}): Promise<void> {
  const images = path.join(src, 'COVID-19-CT-Seg_20cases');
  await nifti(path.join(images, 'coronacases_org_001.nii.gz'), huImage());
  await nifti(path.join(images, 'radiopaedia_org_covid-19-pneumonia-10_85902_1-dcm.nii.gz'), windowed(), { datatype: 'float32' });
  await nifti(path.join(images, 'radiopaedia_org_covid-19-pneumonia-10_85902_3-dcm.nii.gz'), windowed(), { datatype: 'uint8' });
  for (const id of ['coronacases_001', 'radiopaedia_10_85902_1', 'radiopaedia_10_85902_3']) {
    if (options.skipInfection !== id) {
      const mask = binaryMask(id.length);
      if (options.badValue === id) mask[3] = 5;
      const file = path.join(src, 'Infection_Mask', `${id}.nii.gz`);
      if (options.badShape === id) await nifti(file, mask.subarray(0, 48), { shape: [3, 4, 4] });
      else await nifti(file, mask);
    }
    await nifti(path.join(src, 'Lung_Mask', `${id}.nii.gz`), lungs());
  }
}

test('case ids: the release names map to the ids of the 5-fold split file', () => {
  assert.equal(covidCaseId('coronacases_org_007.nii.gz'), 'coronacases_007');
  assert.equal(covidCaseId('radiopaedia_org_covid-19-pneumonia-29_86491_1-dcm.nii.gz'), 'radiopaedia_29_86491_1');
  assert.equal(covidCaseId('radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm.nii'), 'radiopaedia_4_85506_1');
  assert.equal(covidCaseId('notes.nii.gz'), undefined);
  assert.equal(COVID19_CTSEG_CASE_IDS.length, 20);
});

test('case ids equal those of covid19_ctseg_5fold_split.json', () => {
  const split = JSON.parse(fs.readFileSync(SPLIT_FILE, 'utf8')) as { folds: { train: string[]; test: string[] }[] };
  for (const fold of split.folds) assert.deepEqual([...fold.train, ...fold.test].sort(), [...COVID19_CTSEG_CASE_IDS].sort());
});

test('import: HU kept, Radiopaedia window mapped back to HU, infection and lungs, meta, a clean check', async () => {
  await withTemp(async (dir) => {
    const src = path.join(dir, 'zenodo');
    const out = path.join(dir, 'Dataset_covid');
    await release(src);
    const result = await importDataset('covid19-ctseg', src, out);
    assert.deepEqual(result.written, ['coronacases_001', 'radiopaedia_10_85902_1', 'radiopaedia_10_85902_3']);
    assert.deepEqual(filesUnder(out), [
      'dataset.json',
      'imagesTr/coronacases_001_0000.nii.gz',
      'imagesTr/radiopaedia_10_85902_1_0000.nii.gz',
      'imagesTr/radiopaedia_10_85902_3_0000.nii.gz',
      IMPORT_META_FILE,
      'labelsTr/coronacases_001.nii.gz',
      'labelsTr/radiopaedia_10_85902_1.nii.gz',
      'labelsTr/radiopaedia_10_85902_3.nii.gz',
      'lungsTr/coronacases_001.nii.gz',
      'lungsTr/radiopaedia_10_85902_1.nii.gz',
      'lungsTr/radiopaedia_10_85902_3.nii.gz',
    ]);
    const corona = await readNifti(path.join(out, 'imagesTr', 'coronacases_001_0000.nii.gz'));
    assert.equal(corona.datatype, 'int16');
    assert.deepEqual([...corona.data], [...huImage()]);
    for (const id of ['radiopaedia_10_85902_1', 'radiopaedia_10_85902_3']) {
      const image = await readNifti(path.join(out, 'imagesTr', `${id}_0000.nii.gz`));
      assert.equal(image.datatype, 'int16');
      const expected = windowed().map((v) => REFERENCE.hu_int16[v]!);
      assert.deepEqual([...image.data], [...expected]);
    }
    const extremes = [0, 255].map((v) => REFERENCE.hu[v]);
    assert.deepEqual(extremes, [-1250, 250]);
    const label = await readNifti(path.join(out, 'labelsTr', 'coronacases_001.nii.gz'));
    assert.equal(label.datatype, 'uint8');
    assert.deepEqual([...label.data], [...binaryMask('coronacases_001'.length)]);
    const lung = await readNifti(path.join(out, 'lungsTr', 'radiopaedia_10_85902_3.nii.gz'));
    assert.deepEqual([...lung.data], [...lungs()]);
    assert.deepEqual(lung.affine, corona.affine);

    const json = readDatasetJson(out);
    assert.deepEqual(json.labels, { background: 0, infection: 1 });
    assert.equal(json.numTraining, 3);
    const meta = JSON.parse(fs.readFileSync(path.join(out, IMPORT_META_FILE), 'utf8')) as ImportMeta;
    assert.equal(meta.complete, true);
    assert.equal((meta.cases.coronacases_001!.intensity as { convention: string }).convention, 'hu');
    assert.equal((meta.cases.radiopaedia_10_85902_1!.intensity as { convention: string }).convention, 'radiopaedia-window');
    assert.deepEqual(meta.cases.radiopaedia_10_85902_1!.samePatientAs, ['radiopaedia_10_85902_3']);
    assert.deepEqual(meta.notes.samePatient, [['radiopaedia_10_85902_1', 'radiopaedia_10_85902_3']]);
    assert.equal(meta.cases.radiopaedia_10_85902_1!.sourceDatatype, 'float32');

    const check = await checkDataset(out);
    assert.deepEqual(check.issues, []);
    assert.equal(check.cases, 3);

    // The same import again completes/keeps; anything else into this folder is refused.
    const again = await importDataset('covid19-ctseg', src, out);
    assert.deepEqual(again.kept.length, 3);
    assert.deepEqual(again.written, []);
    await assert.rejects(importDataset('msd-lung', src, out), (error: unknown) => error instanceof InputError && /holds a different import/.test(error.message) && error.message.includes(out));
  });
});

test('an interrupted import resumes: missing cases are written, finished ones kept', async () => {
  await withTemp(async (dir) => {
    const src = path.join(dir, 'zenodo');
    const out = path.join(dir, 'out');
    await release(src);
    await importDataset('covid19-ctseg', src, out);
    fs.rmSync(path.join(out, 'imagesTr', 'radiopaedia_10_85902_3_0000.nii.gz'));
    fs.rmSync(path.join(out, 'dataset.json'));
    const resumed = await importDataset('covid19-ctseg', src, out);
    assert.deepEqual(resumed.written, ['radiopaedia_10_85902_3']);
    assert.deepEqual(resumed.kept, ['coronacases_001', 'radiopaedia_10_85902_1']);
    assert.deepEqual((await checkDataset(out)).issues, []);
  });
});

test('problems are all listed, naming the files, and nothing is written', async () => {
  await withTemp(async (dir) => {
    const src = path.join(dir, 'zenodo');
    const out = path.join(dir, 'out');
    await release(src, { skipInfection: 'radiopaedia_10_85902_1', badShape: 'coronacases_001' });
    fs.writeFileSync(path.join(src, 'Infection_Mask', 'radiopaedia_99_1_1.nii.gz'), 'junk');
    assert.deepEqual(await issuesOf(importDataset('covid19-ctseg', src, out)), [
      'geometry-mismatch coronacases_001.nii.gz',
      'missing-image radiopaedia_99_1_1.nii.gz',
      'not-found radiopaedia_10_85902_1.nii.gz',
    ]);
    assert.equal(fs.existsSync(out), false);
  });
});

test('a mask value outside the release labels is refused; no dataset.json is written', async () => {
  await withTemp(async (dir) => {
    const src = path.join(dir, 'zenodo');
    const out = path.join(dir, 'out');
    await release(src, { badValue: 'radiopaedia_10_85902_3' });
    assert.deepEqual(await issuesOf(importDataset('covid19-ctseg', src, out)), ['unexpected-label radiopaedia_10_85902_3.nii.gz']);
    assert.equal(fs.existsSync(path.join(out, 'dataset.json')), false);
    assert.ok(!filesUnder(out).some((name) => name.includes('radiopaedia_10_85902_3')));
  });
});

test('a non-empty --out that is not this import is refused; a missing source is an InputError', async () => {
  await withTemp(async (dir) => {
    const src = path.join(dir, 'zenodo');
    await release(src);
    const out = path.join(dir, 'busy');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    await assert.rejects(importDataset('covid19-ctseg', src, out), /busy: is not empty/);
    await assert.rejects(importDataset('covid19-ctseg', path.join(dir, 'nowhere'), path.join(dir, 'o2')), /nowhere: source folder not found/);
    await assert.rejects(importDataset('covid', src, path.join(dir, 'o3')), /unknown import kind 'covid': use one of covid19-ctseg/);
  });
});

test('--labels lungs+infection: labelsTr is Lung_and_Infection_Mask as released, dataset.json names both lungs', async () => {
  await withTemp(async (dir) => {
    const src = path.join(dir, 'zenodo');
    const out = path.join(dir, 'Dataset_lungs');
    await release(src);
    // Without the combined folder the label set cannot be made: refused, naming the folder.
    assert.deepEqual(await issuesOf(importDataset('covid19-ctseg', src, out, { labels: 'lungs+infection' })), ['not-found Lung_and_Infection_Mask']);
    const combined = (id: string) => new Uint8Array(VOXELS).map((_, i) => (binaryMask(id.length)[i] === 1 ? 3 : lungs()[i]!));
    for (const id of ['coronacases_001', 'radiopaedia_10_85902_1', 'radiopaedia_10_85902_3']) await nifti(path.join(src, 'Lung_and_Infection_Mask', `${id}.nii.gz`), combined(id));
    await importDataset('covid19-ctseg', src, out, { labels: 'lungs+infection' });
    const json = readDatasetJson(out);
    assert.deepEqual(json.labels, { background: 0, 'left lung': 1, 'right lung': 2, infection: 3 });
    const label = await readNifti(path.join(out, 'labelsTr', 'coronacases_001.nii.gz'));
    assert.deepEqual([...label.data], [...combined('coronacases_001')]);
    assert.deepEqual(new Set(Array.from(label.data as Uint8Array)), new Set([0, 1, 2, 3]));
    assert.deepEqual((await checkDataset(out)).issues, []);
    // Resuming it with the other label set is another import: refused.
    await assert.rejects(importDataset('covid19-ctseg', src, out), (error: unknown) => error instanceof InputError && /different import: labels/.test(error.message));
    // The default import of the same release still takes the infection alone.
    const infectionOnly = path.join(dir, 'Dataset_infection');
    await importDataset('covid19-ctseg', src, infectionOnly, { labels: 'infection' });
    assert.deepEqual(readDatasetJson(infectionOnly).labels, { background: 0, infection: 1 });
    await assert.rejects(importDataset('msd-lung', src, path.join(dir, 'o4'), { labels: 'infection' }), /--labels applies to covid19-ctseg only/);
  });
});
