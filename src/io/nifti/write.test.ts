/**
 * writeNifti: header bytes against nibabel's file for the same array and affine, round trips through
 * readNifti (.nii and .nii.gz), kept header codes, datatype conversion and refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, type Affine, type Volume } from '../../core/index.js';
import { readNifti, readNiftiHeader, writeNifti } from '../index.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/io/nifti');
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as {
  writer: { file: string; affine: number[][]; shape_xyz: [number, number, number] };
};

function referenceVolume(): Volume<Int16Array> {
  const [nx, ny, nz] = expected.writer.shape_xyz;
  const data = new Int16Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) data[x + nx * (y + ny * z)] = (x + 6 * y + 30 * z) * 7 - 200;
  const affine = expected.writer.affine as Affine;
  const spacing = [2, 1, 0].map((c) => Math.hypot(affine[0][c]!, affine[1][c]!, affine[2][c]!)) as [number, number, number];
  return { data, shape: [nz, ny, nx], spacing, affine };
}

function withTempDir(body: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nifti-write-'));
    try {
      await body(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('header and data bytes equal nibabel\'s for the same array and affine', withTempDir(async (dir) => {
  const file = path.join(dir, 'ours.nii');
  await writeNifti(file, referenceVolume());
  const ours = fs.readFileSync(file);
  const theirs = fs.readFileSync(path.join(FIXTURES, expected.writer.file));
  assert.equal(ours.byteLength, theirs.byteLength);
  const differing: number[] = [];
  for (let i = 0; i < 352; i++) if (ours[i] !== theirs[i]) differing.push(i);
  assert.deepEqual(differing, [], `header bytes differ at ${differing.join(', ')}`);
  assert.ok(ours.subarray(352).equals(theirs.subarray(352)), 'voxel bytes equal');
}));

test('round trip through readNifti keeps data and the float32 affine (.nii and .nii.gz)', withTempDir(async (dir) => {
  const volume = referenceVolume();
  for (const name of ['a.nii', 'b.nii.gz']) {
    const file = path.join(dir, name);
    await writeNifti(file, volume);
    const back = await readNifti(file);
    assert.deepEqual(back.shape, volume.shape);
    assert.ok(back.data instanceof Int16Array);
    assert.deepEqual(Array.from(back.data as ArrayLike<number>), Array.from(volume.data));
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) assert.equal(back.affine[r]![c], Math.fround(volume.affine[r]![c]!));
    for (let axis = 0; axis < 3; axis++) assert.ok(Math.abs(back.spacing[axis]! - volume.spacing[axis]!) < 1e-6);
    assert.equal(back.header.qformCode, 1);
    assert.equal(back.header.sformCode, 1);
    assert.equal(back.header.xyztUnits, 2);
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), ['a.nii', 'b.nii.gz'], 'no temporary files left');
  const gz = fs.readFileSync(path.join(dir, 'b.nii.gz'));
  assert.deepEqual([gz[0], gz[1]], [0x1f, 0x8b]);
}));

test('a source header keeps its codes, units and description; geometry follows the affine', withTempDir(async (dir) => {
  const source = await readNifti(path.join(FIXTURES, 'sform_only_shear.nii.gz'));
  const file = path.join(dir, 'mask.nii.gz');
  const mask = new Uint8Array(source.data.length).map((_, i) => i % 3);
  await writeNifti(file, { ...source, data: mask }, { header: { ...source.header, descrip: 'predicted mask' } });
  const back = await readNifti(file);
  assert.equal(back.datatype, 'uint8');
  assert.equal(back.header.qformCode, 0);
  assert.equal(back.header.sformCode, 2);
  assert.equal(back.header.descrip, 'predicted mask');
  assert.deepEqual(back.affine, source.affine, 'sheared sform kept exactly');
  assert.deepEqual(Array.from(back.data as ArrayLike<number>), Array.from(mask));
}));

test('datatype conversion rounds and clips', withTempDir(async (dir) => {
  const file = path.join(dir, 'c.nii');
  const data = new Float32Array([-3.2, 0.4, 0.6, 1.5, 254.7, 300, NaN, 2]);
  await writeNifti(file, { data, shape: [2, 2, 2], spacing: [1, 1, 1], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] }, { datatype: 'uint8' });
  const back = await readNifti(file);
  assert.deepEqual(Array.from(back.data as ArrayLike<number>), [0, 0, 1, 2, 255, 255, 0, 2]);
  assert.equal((await readNiftiHeader(file)).datatype, 'uint8');
}));

test('bad volumes are refused before anything is written', withTempDir(async (dir) => {
  const file = path.join(dir, 'bad.nii.gz');
  const affine: Affine = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  await assert.rejects(writeNifti(file, { data: new Float32Array(7), shape: [2, 2, 2], spacing: [1, 1, 1], affine }), (error: unknown) => {
    assert.ok(error instanceof InputError);
    assert.match(error.message, /data has 7 values, shape \[2, 2, 2\] needs 8/);
    return true;
  });
  const nanAffine = affine.map((row) => [...row]) as Affine;
  nanAffine[0][3] = NaN;
  await assert.rejects(writeNifti(file, { data: new Float32Array(8), shape: [2, 2, 2], spacing: [1, 1, 1], affine: nanAffine }), /non-finite/);
  await assert.rejects(writeNifti(file, { data: new Float32Array(8), shape: [2, 2, 2], spacing: [1, 1, 1], affine }, { compressionLevel: 12 }), /compression level 12/);
  await assert.rejects(writeNifti(path.join(dir, 'x.mha'), { data: new Float32Array(8), shape: [2, 2, 2], spacing: [1, 1, 1], affine }), /must end with .nii or .nii.gz/);
  assert.deepEqual(fs.readdirSync(dir), []);
}));

test('a singular or non-finite affine is refused (code bad-affine) and an existing file is kept', withTempDir(async (dir) => {
  const file = path.join(dir, 'kept.nii');
  fs.writeFileSync(file, 'already here');
  const volume = (affine: Affine) => ({ data: new Float32Array(8), shape: [2, 2, 2] as [number, number, number], spacing: [1, 1, 1] as [number, number, number], affine });
  const cases: [string, Affine, RegExp][] = [
    ['zero column', [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], /singular affine: its 3x3 part \[\[1, 0, 0\], \[0, 0, 0\], \[0, 0, 1\]\] has determinant 0/],
    ['parallel columns', [[0.7, 0.7, 0, 0], [0, 0, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, 1]], /singular affine/],
    ['all zero', [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]], /singular affine/],
    ['infinite', [[Infinity, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], /non-finite entries: \[\[Infinity, 0, 0, 0\]/],
  ];
  for (const [what, affine, message] of cases) {
    await assert.rejects(writeNifti(file, volume(affine)), (error: unknown) => {
      assert.ok(error instanceof InputError, what);
      assert.equal(error.code, 'bad-affine', what);
      assert.match(error.message, message, what);
      assert.ok(error.message.startsWith(`${file}: `), what);
      return true;
    });
  }
  assert.equal(fs.readFileSync(file, 'utf8'), 'already here');
  assert.deepEqual(fs.readdirSync(dir), ['kept.nii']);
}));

test('pixdim is the volume\'s spacing where the affine agrees to 1e-5 (so an oblique image keeps it), else the affine\'s voxel sizes', withTempDir(async (dir) => {
  const [c, s] = [Math.cos(0.4), Math.sin(0.4)];
  const f = Math.fround;
  // Oblique columns of float32 entries: their norms are 0.9 and 1.5 up to ~1e-8, not exactly.
  const oblique: Affine = [
    [f(1.5 * c), f(-0.9 * s), 0, 4],
    [f(1.5 * s), f(0.9 * c), 0, -2],
    [0, 0, 3, 1],
    [0, 0, 0, 1],
  ];
  const kept = path.join(dir, 'kept.nii');
  await writeNifti(kept, { data: new Uint8Array(8), shape: [2, 2, 2], spacing: [3, f(0.9), 1.5], affine: oblique });
  assert.deepEqual((await readNiftiHeader(kept)).pixdim.slice(0, 3), [1.5, f(0.9), 3]);
  const back = await readNifti(kept);
  assert.deepEqual(back.spacing, [3, f(0.9), 1.5]);
  assert.equal(back.geometryNote, undefined);
  // A spacing 1% off the affine is not the grid's: the affine's voxel sizes are written (float32).
  const other = path.join(dir, 'other.nii');
  await writeNifti(other, { data: new Uint8Array(8), shape: [2, 2, 2], spacing: [3.03, 0.9, 1.5], affine: oblique });
  assert.equal((await readNiftiHeader(other)).pixdim[2], 3);
}));
