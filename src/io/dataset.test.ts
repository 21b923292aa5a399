/**
 * Raw datasets: dataset.json validation, listRawCases, and checkDataset on small generated datasets,
 * one for every kind of problem, all reported in one pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ValidationError, type Affine, type Issue, type Shape3, type TypedArray } from '../core/index.js';
import { checkDataset, listRawCases, readDatasetJson, writeDatasetJson, writeNifti, type DatasetJson } from './index.js';

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
      'affine-mismatch i_spacing.nii.gz',
      'affine-mismatch j_origin.nii.gz',
      'bad-file-name weird.nii.gz',
      'missing-image c_noimage.nii.gz',
      'missing-label b_nolabel.nii.gz',
      'non-finite l_nan_0000.nii.gz',
      'not-3d g_4d_0000.nii.gz',
      'num-training-mismatch dataset.json',
      'outside-dataset m_link_0000.nii.gz',
      'shape-mismatch h_shape.nii.gz',
      'spacing-mismatch i_spacing.nii.gz',
      'unexpected-channel d_extra_0001.nii.gz',
      'unexpected-label k_values.nii.gz',
      'unreadable f_truncated_0000.nii.gz',
    ]);
    const byCode = new Map(result.issues.map((issue) => [issue.code, issue]));
    assert.match(byCode.get('non-finite')!.message, /1 NaN and 1 infinite voxels/);
    assert.match(byCode.get('unexpected-label')!.message, /label values 3 are not declared/);
    assert.match(byCode.get('affine-mismatch')!.message, /direction|origin/);
    assert.match(result.issues.find((issue) => issue.file.endsWith('j_origin.nii.gz'))!.message, /origin/);
    assert.match(byCode.get('num-training-mismatch')!.message, /numTraining is 5 but imagesTr holds 11 cases/);
    assert.match(byCode.get('unreadable')!.message, /truncated|gzip/);
    assert.equal(byCode.get('num-training-mismatch')!.path, 'numTraining');
    // A looser tolerance accepts the 0.5 mm spacing difference.
    const loose = await checkDataset(dir, { spacingTolerance: 1, affineTolerance: 2 });
    assert.ok(!loose.issues.some((issue) => /spacing|affine/.test(issue.code)));
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
