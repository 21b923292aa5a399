/**
 * Raw datasets: dataset.json validation, listRawCases, and checkDataset on small generated datasets,
 * one for every kind of problem, all reported in one pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ValidationError, type Affine, type Issue, type Shape3, type TypedArray } from '../../core/index.js';
import { checkDataset, listRawCases, readDatasetJson, writeDatasetJson, writeNifti, type DatasetJson } from '../index.js';

const SHAPE: Shape3 = [4, 5, 6];
const VOXELS = 4 * 5 * 6;

function affine(spacingXyz: [number, number, number] = [0.8, 0.8, 2], origin: [number, number, number] = [10, -20, 30]): Affine {
  return [
    [spacingXyz[0], 0, 0, origin[0]],
    [0, spacingXyz[1], 0, origin[1]],
    [0, 0, spacingXyz[2], origin[2]],
    [0, 0, 0, 1],
  ];
}

async function nifti(file: string, data: TypedArray, options: { shape?: Shape3; affine?: Affine } = {}): Promise<void> {
  const a = options.affine ?? affine();
  const spacing: Shape3 = [a[2][2], a[1][1], a[0][0]];
  await writeNifti(file, { data, shape: options.shape ?? SHAPE, spacing, affine: a });
}

const image = () => new Int16Array(VOXELS).map((_, i) => (i % 17) * 10 - 50);
const label = (values = [0, 1]) => new Uint8Array(VOXELS).map((_, i) => values[i % values.length]!);

const JSON_OK: DatasetJson = {
  channel_names: { '0': 'CT' },
  labels: { background: 0, lesion: 1 },
  numTraining: 2,
  file_ending: '.nii.gz',
  name: 'tiny',
};

async function withDataset(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raw-dataset-'));
  try {
    await body(path.join(dir, 'Dataset001_Tiny'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function goodCase(dir: string, id: string, split: 'Tr' | 'Ts' = 'Tr'): Promise<void> {
  await nifti(path.join(dir, `images${split}`, `${id}_0000.nii.gz`), image());
  if (split === 'Tr') await nifti(path.join(dir, 'labelsTr', `${id}.nii.gz`), label());
}

function codes(issues: Issue[]): string[] {
  return issues.map((issue) => `${issue.code} ${path.basename(issue.file)}`).sort();
}

test('a valid dataset has no issues; listRawCases lists it sorted with absolute paths', async () => {
  await withDataset(async (dir) => {
    fs.mkdirSync(dir, { recursive: true });
    writeDatasetJson(dir, JSON_OK);
    await goodCase(dir, 'case_b');
    await goodCase(dir, 'case_a');
    await goodCase(dir, 'test_1', 'Ts');
    const result = await checkDataset(dir);
    assert.deepEqual(result.issues, []);
    assert.equal(result.cases, 2);
    assert.deepEqual(readDatasetJson(dir), JSON_OK);
    const cases = listRawCases(dir);
    assert.deepEqual(cases.map((c) => c.id), ['case_a', 'case_b']);
    assert.deepEqual(cases[0]!.images, [path.resolve(dir, 'imagesTr', 'case_a_0000.nii.gz')]);
    assert.equal(cases[0]!.label, path.resolve(dir, 'labelsTr', 'case_a.nii.gz'));
    const test = listRawCases(dir, 'Ts');
    assert.deepEqual(test, [{ id: 'test_1', images: [path.resolve(dir, 'imagesTs', 'test_1_0000.nii.gz')], label: null }]);
  });
});

test('dataset.json: every problem listed at once', async () => {
  await withDataset(async (dir) => {
    fs.mkdirSync(dir, { recursive: true });
    const json = { channel_names: { '1': 5 }, labels: { lesion: 1, other: 3, bad: 'x' }, numTraining: -1, name: 7 };
    fs.writeFileSync(path.join(dir, 'dataset.json'), JSON.stringify(json));
    const expectedIssues = [
      'bad-channels channel_names',
      'bad-value numTraining',
      'labels-not-consecutive labels',
      'missing-background labels',
      'missing-field file_ending',
      'wrong-type channel_names.1',
      'wrong-type labels.bad',
      'wrong-type name',
    ];
    assert.throws(() => readDatasetJson(dir), (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.deepEqual(error.issues.map((issue) => `${issue.code} ${issue.path}`).sort(), expectedIssues);
      assert.ok(error.issues.every((issue) => issue.file === path.join(dir, 'dataset.json')));
      assert.match(error.message, /8 problems found/);
      return true;
    });
    const result = await checkDataset(dir);
    assert.deepEqual(result.issues.map((issue) => `${issue.code} ${issue.path}`).sort(), expectedIssues);
    assert.throws(() => writeDatasetJson(dir, json as unknown as DatasetJson), ValidationError);
    fs.writeFileSync(path.join(dir, 'dataset.json'), '{"channel_names": ');
    assert.deepEqual(codes((await checkDataset(dir)).issues), ['bad-json dataset.json']);
    fs.rmSync(path.join(dir, 'dataset.json'));
    assert.deepEqual(codes((await checkDataset(dir)).issues), ['not-found dataset.json', ]);
    assert.throws(() => readDatasetJson(dir), /dataset.json not found/);
    fs.writeFileSync(path.join(dir, 'dataset.json'), JSON.stringify({ ...JSON_OK, file_ending: '/../../x.nii.gz' }));
    assert.deepEqual(codes((await checkDataset(dir)).issues), ['outside-dataset dataset.json']);
    fs.writeFileSync(path.join(dir, 'dataset.json'), JSON.stringify({ ...JSON_OK, labels: { background: 0, a: [1, 2], b: 2 } }));
    assert.deepEqual((await checkDataset(dir)).issues.map((issue) => issue.code), ['missing-field', 'not-found']);
  });
});

test('checkDataset reports every case problem in one pass', async () => {
  await withDataset(async (dir) => {
    const outside = path.join(path.dirname(dir), 'elsewhere');
    fs.mkdirSync(outside, { recursive: true });
    fs.mkdirSync(dir, { recursive: true });
    writeDatasetJson(dir, { ...JSON_OK, numTraining: 5 });
    const tr = (name: string) => path.join(dir, 'imagesTr', name);
    const lb = (name: string) => path.join(dir, 'labelsTr', name);
    await goodCase(dir, 'a_ok');
    await nifti(tr('b_nolabel_0000.nii.gz'), image());
    await nifti(lb('c_noimage.nii.gz'), label());
    await goodCase(dir, 'd_extra');
    await nifti(tr('d_extra_0001.nii.gz'), image());
    await goodCase(dir, 'f_truncated');
    const whole = fs.readFileSync(tr('f_truncated_0000.nii.gz'));
    fs.writeFileSync(tr('f_truncated_0000.nii.gz'), whole.subarray(0, whole.byteLength - 40));
    await goodCase(dir, 'g_4d');
    const fourD = fs.readFileSync(tr('g_4d_0000.nii.gz'));
    await nifti(tr('g_4d_0000.nii'), image()); // uncompressed copy to patch dim[0]/dim[4] in place
    const raw = fs.readFileSync(tr('g_4d_0000.nii'));
    raw.writeInt16LE(4, 40);
    raw.writeInt16LE(2, 48);
    raw.writeInt16LE(2, 46); // dims [6, 5, 2, 2]: same byte count as [6, 5, 4]
    fs.rmSync(tr('g_4d_0000.nii'));
    const { gzipSync } = await import('node:zlib');
    fs.writeFileSync(tr('g_4d_0000.nii.gz'), gzipSync(raw));
    assert.ok(fourD.byteLength > 0);
    await nifti(tr('h_shape_0000.nii.gz'), image());
    await nifti(lb('h_shape.nii.gz'), new Uint8Array(60), { shape: [2, 5, 6] });
    await nifti(tr('i_spacing_0000.nii.gz'), image());
    await nifti(lb('i_spacing.nii.gz'), label(), { affine: affine([0.8, 0.8, 2.5]) });
    await nifti(tr('j_origin_0000.nii.gz'), image());
    await nifti(lb('j_origin.nii.gz'), label(), { affine: affine(undefined, [10, -20, 31]) });
    await nifti(tr('k_values_0000.nii.gz'), image());
    await nifti(lb('k_values.nii.gz'), label([0, 1, 3]));
    await nifti(tr('l_nan_0000.nii.gz'), new Float32Array(VOXELS).map((_, i) => (i === 7 ? NaN : i === 9 ? Infinity : i)));
    await nifti(lb('l_nan.nii.gz'), label());
    await nifti(path.join(outside, 'm_0000.nii.gz'), image());
    fs.symlinkSync(path.join(outside, 'm_0000.nii.gz'), tr('m_link_0000.nii.gz'));
    await nifti(lb('m_link.nii.gz'), label());
    await nifti(tr('weird.nii.gz'), image());
    const result = await checkDataset(dir);
    assert.equal(result.cases, 11);
    assert.deepEqual(codes(result.issues), [
      'bad-file-name weird.nii.gz',
      'geometry-mismatch h_shape.nii.gz',
      'geometry-mismatch i_spacing.nii.gz',
      'geometry-mismatch j_origin.nii.gz',
      'missing-image c_noimage.nii.gz',
      'missing-label b_nolabel.nii.gz',
      'non-finite l_nan_0000.nii.gz',
      'not-3d g_4d_0000.nii.gz',
      'num-training-mismatch dataset.json',
      'outside-dataset m_link_0000.nii.gz',
      'unexpected-channel d_extra_0001.nii.gz',
      'unexpected-label k_values.nii.gz',
      'unreadable f_truncated_0000.nii.gz',
    ]);
    const byCode = new Map(result.issues.map((issue) => [issue.code, issue]));
    assert.match(byCode.get('non-finite')!.message, /1 NaN and 1 infinite voxels/);
    assert.match(byCode.get('unexpected-label')!.message, /label values 3 are not declared/);
    const geometry = (name: string) => result.issues.find((issue) => issue.file.endsWith(name))!.message;
    assert.match(geometry('h_shape.nii.gz'), /^shape \[2, 5, 6\] \(z, y, x\) differs from image h_shape_0000.nii.gz's \[4, 5, 6\]$/);
    // x spacing 0.8 -> 0.8 over 5 voxels, y 0.8, z 2 -> 2.5 over 3 steps: 1.5 mm = 1.875 voxels of 0.8 mm.
    assert.match(geometry('i_spacing.nii.gz'), /^spacing \[2\.5, 0\.8, 0\.8\] mm \(z, y, x\) differs from image i_spacing_0000.nii.gz's \[2, 0\.8, 0\.8\]: voxel centres lie up to 1\.8[78] voxel apart/); // 1.875, either side by float32's 0.8
    assert.match(geometry('j_origin.nii.gz'), /^origin \[10, -20, 31\] mm differs from image j_origin_0000.nii.gz's \[10, -20, 30\]: voxel centres lie up to 1\.25 voxel apart \(tolerance 0\.01 voxel\)$/);
    assert.match(byCode.get('num-training-mismatch')!.message, /numTraining is 5 but imagesTr holds 11 cases/);
    assert.match(byCode.get('unreadable')!.message, /truncated|gzip/);
    assert.equal(byCode.get('num-training-mismatch')!.path, 'numTraining');
  });
});

test('every channel of a case lies on channel 0\'s grid (core\'s one test): another origin is refused, one below the tolerance accepted', async () => {
  await withDataset(async (dir) => {
    fs.mkdirSync(dir, { recursive: true });
    writeDatasetJson(dir, { ...JSON_OK, channel_names: { '0': 'CT', '1': 'PET' }, numTraining: 2 });
    for (const id of ['p_moved', 'q_close']) await goodCase(dir, id);
    // 0.5 mm along x is 0.625 voxel of 0.8 mm; 0.004 mm is 0.005 voxel, under GRID_TOLERANCE_VOXELS.
    await nifti(path.join(dir, 'imagesTr', 'p_moved_0001.nii.gz'), image(), { affine: affine(undefined, [10.5, -20, 30]) });
    await nifti(path.join(dir, 'imagesTr', 'q_close_0001.nii.gz'), image(), { affine: affine(undefined, [10.004, -20, 30]) });
    const { issues } = await checkDataset(dir);
    assert.deepEqual(codes(issues), ['geometry-mismatch p_moved_0001.nii.gz']);
    assert.match(issues[0]!.message, /^origin \[10\.5, -20, 30\] mm differs from channel image p_moved_0000.nii.gz's \[10, -20, 30\]: voxel centres lie up to 0\.625 voxel apart/);
  });
});

test('missing channels and missing folders', async () => {
  await withDataset(async (dir) => {
    fs.mkdirSync(dir, { recursive: true });
    writeDatasetJson(dir, { ...JSON_OK, channel_names: { '0': 'CT', '1': 'PET' }, numTraining: 1 });
    assert.deepEqual(codes((await checkDataset(dir)).issues), ['not-found imagesTr']);
    await goodCase(dir, 'p');
    assert.deepEqual(codes((await checkDataset(dir)).issues), ['missing-channel p_0001.nii.gz']);
    const cases = listRawCases(dir);
    assert.equal(cases[0]!.images.length, 2);
    fs.rmSync(path.join(dir, 'labelsTr'), { recursive: true });
    assert.deepEqual(codes((await checkDataset(dir)).issues), ['missing-channel p_0001.nii.gz', 'missing-label p.nii.gz', 'not-found labelsTr']);
    assert.deepEqual(codes((await checkDataset(path.join(dir, 'nope'))).issues), ['not-found nope']);
  });
});

test('check reports each header problem under its own code (not "unreadable"), every problem of a file', async () => {
  await withDataset(async (dir) => {
    fs.mkdirSync(dir, { recursive: true });
    const cases: [string, (raw: Buffer) => void][] = [
      ['a_pixdim', (raw) => raw.writeFloatLE(0, 80)], // pixdim[1] = 0
      ['b_singular', (raw) => [0, 1, 2].forEach((c) => raw.writeFloatLE(0, 296 + 4 * c))], // srow_y 3x3 part 0
      ['c_nan_sform', (raw) => raw.writeFloatLE(NaN, 284)], // srow_x[1]
      ['d_quaternion', (raw) => {
        raw.writeInt16LE(0, 254); // sform_code 0: the qform decides
        [0.8, 0.6, 0.1].forEach((value, index) => raw.writeFloatLE(value, 256 + 4 * index));
      }],
      ['e_qfac', (raw) => {
        raw.writeInt16LE(0, 254);
        raw.writeFloatLE(-0.5, 76);
      }],
      ['f_offset', (raw) => raw.writeFloatLE(-4, 108)],
      ['g_scaling', (raw) => {
        raw.writeFloatLE(NaN, 112); // scl_slope NaN with scl_inter -1024
        raw.writeFloatLE(-1024, 116);
      }],
      ['h_two', (raw) => {
        raw.writeFloatLE(NaN, 88); // pixdim[3] (z)
        raw.writeFloatLE(Infinity, 308); // srow_z[1]
      }],
      ['i_datatype', (raw) => raw.writeInt16LE(32, 70)], // complex64
    ];
    const { gzipSync, gunzipSync } = await import('node:zlib');
    for (const [id, patch] of cases) {
      await goodCase(dir, id);
      const file = path.join(dir, 'imagesTr', `${id}_0000.nii.gz`);
      const raw = gunzipSync(fs.readFileSync(file));
      patch(raw);
      fs.writeFileSync(file, gzipSync(raw));
    }
    writeDatasetJson(dir, { ...JSON_OK, numTraining: cases.length });
    const result = await checkDataset(dir);
    assert.deepEqual(codes(result.issues), [
      'bad-pixdim a_pixdim_0000.nii.gz',
      'bad-pixdim h_two_0000.nii.gz',
      'bad-qfac e_qfac_0000.nii.gz',
      'bad-quaternion d_quaternion_0000.nii.gz',
      'bad-scaling g_scaling_0000.nii.gz',
      'bad-vox-offset f_offset_0000.nii.gz',
      'non-finite-sform c_nan_sform_0000.nii.gz',
      'non-finite-sform h_two_0000.nii.gz',
      'singular-sform b_singular_0000.nii.gz',
      'unsupported-datatype i_datatype_0000.nii.gz',
    ]);
    const message = (code: string) => result.issues.find((issue) => issue.code === code)!.message;
    assert.equal(message('bad-pixdim'), 'pixdim[1] is 0 (voxel sizes must be finite and > 0)');
    assert.match(message('singular-sform'), /^the sform \(sform_code 1\) is singular: its 3x3 part \[\[0\.8, 0, 0\], \[0, 0, 0\], \[0, 0, 2\]\] has determinant 0/);
    assert.match(message('non-finite-sform'), /^srow_x\[1\] is NaN/);
    assert.match(message('bad-quaternion'), /b\^2 \+ c\^2 \+ d\^2 = 1\.01 > 1/);
    assert.match(message('unsupported-datatype'), /complex64/);
  });
});
