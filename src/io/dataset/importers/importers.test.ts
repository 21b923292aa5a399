/**
 * msd-lung, structseg-gtv and nsclc-effusion importers on tiny files laid out as the releases, and the
 * PleThora reorientation against nibabel (test/fixtures/importers/make_importers_fixtures.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDataset, readDatasetJson, readNifti, readNpy } from '../../index.js';
import { findAxisMapping, importDataset, IMPORT_META_FILE, type ImportMeta } from './index.js';
import { affine, binaryMask, filesUnder, huImage, issuesOf, nifti, VOXELS, withTemp } from './test-support.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/importers/', import.meta.url));

test('msd-lung: v1 dataset.json (modality, relase), macOS ._ files skipped, test images to imagesTs', async () => {
  await withTemp(async (dir) => {
    const task = path.join(dir, 'Task06_Lung');
    for (const id of ['lung_001', 'lung_003']) {
      await nifti(path.join(task, 'imagesTr', `${id}.nii.gz`), huImage(id.length));
      await nifti(path.join(task, 'labelsTr', `${id}.nii.gz`), binaryMask(3));
      fs.writeFileSync(path.join(task, 'imagesTr', `._${id}.nii.gz`), 'AppleDouble junk');
      fs.writeFileSync(path.join(task, 'labelsTr', `._${id}.nii.gz`), 'AppleDouble junk');
    }
    await nifti(path.join(task, 'imagesTs', 'lung_002.nii.gz'), huImage(5));
    fs.writeFileSync(
      path.join(task, 'dataset.json'),
      JSON.stringify({
        name: 'Lung',
        description: 'Lung and cancer segmentation',
        reference: 'The Cancer Imaging Archive',
        licence: 'CC-BY-SA 4.0',
        relase: '1.0 04/05/2018',
        tensorImageSize: '3D',
        modality: { '0': 'CT' },
        labels: { '0': 'background', '1': 'cancer' },
        numTraining: 2,
        numTest: 1,
        training: [
          { image: './imagesTr/lung_001.nii.gz', label: './labelsTr/lung_001.nii.gz' },
          { image: './imagesTr/lung_003.nii.gz', label: './labelsTr/lung_003.nii.gz' },
          { image: './imagesTr/._lung_001.nii.gz', label: './labelsTr/._lung_001.nii.gz' },
        ],
        test: ['./imagesTs/lung_002.nii.gz'],
      }),
    );
    const out = path.join(dir, 'Dataset_msd');
    const result = await importDataset('msd-lung', dir, out);
    assert.deepEqual(result.written, ['lung_001', 'lung_003', 'lung_002']);
    assert.deepEqual(filesUnder(out), [
      'dataset.json',
      'imagesTr/lung_001_0000.nii.gz',
      'imagesTr/lung_003_0000.nii.gz',
      'imagesTs/lung_002_0000.nii.gz',
      IMPORT_META_FILE,
      'labelsTr/lung_001.nii.gz',
      'labelsTr/lung_003.nii.gz',
    ]);
    const json = readDatasetJson(out);
    assert.deepEqual(json.labels, { background: 0, cancer: 1 });
    assert.equal(json.numTraining, 2);
    assert.deepEqual([...(await readNifti(path.join(out, 'imagesTr', 'lung_003_0000.nii.gz'))).data], [...huImage(8)]);
    assert.deepEqual([...(await readNifti(path.join(out, 'labelsTr', 'lung_001.nii.gz'))).data], [...binaryMask(3)]);
    const meta = JSON.parse(fs.readFileSync(path.join(out, IMPORT_META_FILE), 'utf8')) as ImportMeta;
    assert.deepEqual(meta.notes.sourceDatasetJson, { modality: { '0': 'CT' }, labels: { '0': 'background', '1': 'cancer' }, release: '1.0 04/05/2018' });
    assert.deepEqual((await checkDataset(out)).issues, []);
  });
});

test('msd-lung: listed files missing or outside the folder, a 4D image, a shape mismatch: all reported', async () => {
  await withTemp(async (dir) => {
    const task = path.join(dir, 'Task06_Lung');
    await nifti(path.join(task, 'imagesTr', 'lung_001.nii.gz'), new Int16Array(VOXELS * 2), { shape: [3, 4, 10] });
    await nifti(path.join(task, 'labelsTr', 'lung_001.nii.gz'), binaryMask());
    // A 4D image: write 3D, then patch dim[0] = 4 and dim[4] = 2 in the (uncompressed) header.
    const fourD = path.join(task, 'imagesTr', 'lung_004.nii');
    await nifti(fourD, new Int16Array(VOXELS * 2), { shape: [6, 4, 5] });
    const bytes = fs.readFileSync(fourD);
    bytes.writeInt16LE(4, 40);
    bytes.writeInt16LE(3, 46);
    bytes.writeInt16LE(2, 48);
    fs.writeFileSync(fourD, bytes);
    await nifti(path.join(task, 'labelsTr', 'lung_004.nii.gz'), binaryMask());
    fs.writeFileSync(
      path.join(task, 'dataset.json'),
      JSON.stringify({
        modality: { '0': 'CT' },
        labels: { '0': 'background', '1': 'cancer' },
        training: [
          { image: './imagesTr/lung_001.nii.gz', label: './labelsTr/lung_001.nii.gz' },
          { image: './imagesTr/lung_002.nii.gz', label: './labelsTr/lung_002.nii.gz' },
          { image: '../../etc/passwd', label: './labelsTr/lung_001.nii.gz' },
          { image: './imagesTr/lung_004.nii', label: './labelsTr/lung_004.nii.gz' },
        ],
        test: [],
      }),
    );
    const out = path.join(dir, 'out');
    assert.deepEqual(await issuesOf(importDataset('msd-lung', task, out)), [
      'geometry-mismatch lung_001.nii.gz',
      'not-3d lung_004.nii',
      'not-found lung_002.nii.gz',
      'not-found lung_002.nii.gz',
      'outside-dataset dataset.json',
    ]);
    assert.equal(fs.existsSync(out), false);
  });
});

test('structseg-gtv: Lung_GTV/<n>/data + label -> structseg_<nnn>; missing files reported', async () => {
  await withTemp(async (dir) => {
    const root = path.join(dir, 'Lung_GTV');
    for (const n of ['2', '10']) {
      await nifti(path.join(root, n, 'data.nii.gz'), huImage(Number(n)));
      await nifti(path.join(root, n, 'label.nii.gz'), binaryMask(Number(n)));
    }
    const out = path.join(dir, 'Dataset_gtv');
    const result = await importDataset('structseg-gtv', dir, out);
    assert.deepEqual(result.written, ['structseg_002', 'structseg_010']);
    assert.deepEqual(readDatasetJson(out).labels, { background: 0, GTV: 1 });
    assert.deepEqual([...(await readNifti(path.join(out, 'labelsTr', 'structseg_010.nii.gz'))).data], [...binaryMask(10)]);
    assert.deepEqual((await checkDataset(out)).issues, []);

    await nifti(path.join(root, '11', 'data.nii.gz'), huImage());
    await nifti(path.join(root, '12', 'label.nii.gz'), binaryMask());
    fs.writeFileSync(path.join(root, '2', 'label.nii.gz'), fs.readFileSync(path.join(root, '2', 'label.nii.gz')).subarray(0, 40));
    assert.deepEqual(await issuesOf(importDataset('structseg-gtv', root, path.join(dir, 'out2'))), [
      'not-found data.nii.gz',
      'not-found label.nii.gz',
      'truncated label.nii.gz',
    ]);
  });
});

test('reorientation: axis mapping from both affines (flip; permutation + flips), as nibabel finds it', async () => {
  const ct = await readNifti(path.join(FIXTURES, 'plethora_ct.nii.gz'));
  const rpi = await readNifti(path.join(FIXTURES, 'plethora_mask_rpi.nii.gz'));
  const permuted = await readNifti(path.join(FIXTURES, 'plethora_mask_permuted.nii.gz'));
  assert.deepEqual(findAxisMapping(ct.affine, ct.shape, rpi.affine, rpi.shape), { maskAxis: [0, 1, 2], flip: [true, false, true] });
  // CT axes L, P, S; mask axes P, I, R: CT x runs along mask z reversed, CT y along mask x, CT z along mask y reversed.
  assert.deepEqual(findAxisMapping(ct.affine, ct.shape, permuted.affine, permuted.shape), { maskAxis: [2, 0, 1], flip: [true, false, true] });
  assert.deepEqual(findAxisMapping(ct.affine, ct.shape, ct.affine, ct.shape), { maskAxis: [0, 1, 2], flip: [false, false, false] });
  const shifted = ct.affine.map((row) => [...row]) as typeof ct.affine;
  shifted[2][3] += 5; // two slices off
  assert.match(String(findAxisMapping(ct.affine, ct.shape, shifted, ct.shape)), /field of view differs \(the grids are shifted by -2\.00 voxels along mask axis z\)/);
  const finer = ct.affine.map((row) => [...row]) as typeof ct.affine;
  finer[0][0] = -0.35;
  assert.match(String(findAxisMapping(ct.affine, ct.shape, finer, ct.shape)), /spacing differs/);
});

async function plethora(src: string, cases: Record<string, string>): Promise<void> {
  for (const [patient, mask] of Object.entries(cases)) {
    fs.mkdirSync(path.join(src, 'Effusions', patient), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, mask), path.join(src, 'Effusions', patient, `${patient}_effusion_first_reviewer.nii.gz`));
    fs.mkdirSync(path.join(src, 'images'), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'plethora_ct.nii.gz'), path.join(src, 'images', `${patient}.nii.gz`));
  }
}

test('nsclc-effusion: masks reoriented onto the CT grid and thresholded at 0.5, equal to nibabel', async () => {
  await withTemp(async (dir) => {
    const src = path.join(dir, 'nsclc');
    await plethora(src, { 'LUNG1-001': 'plethora_mask_rpi.nii.gz', 'LUNG1-002': 'plethora_mask_permuted.nii.gz' });
    const out = path.join(dir, 'Dataset_effusion');
    await importDataset('nsclc-effusion', src, out);
    const ct = await readNifti(path.join(FIXTURES, 'plethora_ct.nii.gz'));
    for (const [patient, name] of [['LUNG1-001', 'rpi'], ['LUNG1-002', 'permuted']] as const) {
      const label = await readNifti(path.join(out, 'labelsTr', `${patient}.nii.gz`));
      const expected = readNpy(path.join(FIXTURES, `plethora_expected_${name}.npy`));
      assert.deepEqual(expected.shape, ct.shape);
      assert.deepEqual([...label.data], [...expected.data]);
      assert.deepEqual(label.affine, ct.affine);
      const image = await readNifti(path.join(out, 'imagesTr', `${patient}_0000.nii.gz`));
      assert.deepEqual([...image.data], [...ct.data]);
    }
    const meta = JSON.parse(fs.readFileSync(path.join(out, IMPORT_META_FILE), 'utf8')) as ImportMeta;
    const masks = meta.cases['LUNG1-002']!.masks as Record<string, Record<string, unknown>>;
    assert.equal(masks['labelsTr/LUNG1-002.nii.gz']!.reoriented, 'image x <- mask -z, image y <- mask x, image z <- mask -y');
    assert.match(String(masks['labelsTr/LUNG1-002.nii.gz']!.thresholded), /^3 non-binary voxels/);
    assert.deepEqual(readDatasetJson(out).labels, { background: 0, effusion: 1 });
    assert.deepEqual((await checkDataset(out)).issues, []);
  });
});

test('nsclc-effusion: a pair whose geometry cannot be matched is refused naming both files; a mask without CT is reported', async () => {
  await withTemp(async (dir) => {
    const src = path.join(dir, 'nsclc');
    await plethora(src, { 'LUNG1-001': 'plethora_mask_rpi.nii.gz' });
    const badMask = path.join(src, 'Effusions', 'LUNG1-003', 'LUNG1-003_effusion_first_reviewer.nii.gz');
    await nifti(badMask, binaryMask(), { affine: affine([0.7, 0.8, 5]) });
    await nifti(path.join(src, 'images', 'LUNG1-003.nii.gz'), huImage(), { affine: affine([0.7, 0.8, 2.5]) });
    fs.mkdirSync(path.join(src, 'Effusions', 'LUNG1-004'));
    fs.copyFileSync(path.join(FIXTURES, 'plethora_mask_rpi.nii.gz'), path.join(src, 'Effusions', 'LUNG1-004', 'LUNG1-004_effusion_first_reviewer.nii.gz'));
    const out = path.join(dir, 'out');
    try {
      await importDataset('nsclc-effusion', src, out);
      assert.fail('expected a refusal');
    } catch (error) {
      const message = (error as Error).message;
      assert.match(message, /LUNG1-003_effusion_first_reviewer\.nii\.gz: cannot be matched to the image .*images\/LUNG1-003\.nii\.gz: the spacing differs/);
      assert.match(message, /LUNG1-004\.nii\.gz: CT of LUNG1-004 not found/);
    }
    assert.equal(fs.existsSync(out), false);
  });
});
