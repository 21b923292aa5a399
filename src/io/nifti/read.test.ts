/**
 * readNifti against nibabel: every fixture's shape, dtype, affine, spacing, sum and sample voxels,
 * and the bad files it must refuse. Malformed headers built byte by byte are in nifti-validate.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../core/index.js';
import { readNifti, readNiftiHeader } from '../index.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/io/nifti');

interface ExpectedCase {
  shape_xyz: number[];
  dtype: string;
  affine: number[][];
  zooms_xyz: number[];
  sum: number;
  samples: { xyz: [number, number, number]; value: number }[];
  qform_code: number;
  sform_code: number;
  version: 1 | 2;
  little_endian: boolean;
}
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as {
  cases: Record<string, ExpectedCase>;
};

const SCALED = new Set(['scaled_int16.nii', 'scaled_uint8.nii']);

test('fixture list is complete', () => {
  assert.equal(Object.keys(expected.cases).length, 20);
});

for (const [name, want] of Object.entries(expected.cases)) {
  test(`readNifti ${name} matches nibabel`, async () => {
    const image = await readNifti(path.join(FIXTURES, name));
    const [nx, ny, nz] = want.shape_xyz as [number, number, number];
    assert.deepEqual(image.shape, [nz, ny, nx]);
    assert.equal(image.data.length, nx * ny * nz);
    assert.equal(image.header.version, want.version);
    assert.equal(image.header.littleEndian, want.little_endian);
    assert.equal(image.header.qformCode, want.qform_code);
    assert.equal(image.header.sformCode, want.sform_code);
    if (SCALED.has(name)) assert.ok(image.data instanceof Float32Array, 'scaled data is float32');
    else assert.equal(image.datatype, want.dtype.replace(/^[<>|]/, '').replace(/^i2$/, 'int16').replace(/^f4$/, 'float32'));
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) {
        const a = image.affine[r]![c]!;
        const b = want.affine[r]![c]!;
        assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `affine[${r}][${c}] ${a} vs nibabel ${b}`);
      }
    }
    // spacing is pixdim as nibabel's get_zooms() reads it (float32 values, exact in float64), z, y,
    // x, because in these files it agrees with the chosen affine's column norms to 1e-5 relative
    // (float32 rounding of the entries leaves ~1e-7), so no geometry note is set.
    assert.equal(image.geometrySource, want.sform_code > 0 ? 'sform' : want.qform_code > 0 ? 'qform' : 'pixdim');
    assert.equal(image.geometryNote, undefined);
    for (let axis = 0; axis < 3; axis++) {
      const column = 2 - axis;
      const norm = Math.hypot(want.affine[0]![column]!, want.affine[1]![column]!, want.affine[2]![column]!);
      const got = image.spacing[axis]!;
      assert.equal(got, want.zooms_xyz[column]!, `spacing[${axis}] ${got} vs nibabel's get_zooms() ${want.zooms_xyz[column]}`);
      assert.ok(Math.abs(got - norm) <= 1e-5 * norm, `spacing[${axis}] ${got} vs the affine's voxel size ${norm}`);
    }
    let sum = 0;
    for (let i = 0; i < image.data.length; i++) sum += Number(image.data[i]!);
    assert.ok(Math.abs(sum - want.sum) <= 1e-6 * Math.max(1, Math.abs(want.sum)), `sum ${sum} vs ${want.sum}`);
    for (const { xyz, value } of want.samples) {
      const [x, y, z] = xyz;
      const got = Number(image.data[x + nx * (y + ny * z)]!);
      assert.ok(Math.abs(got - value) <= 1e-6 * Math.max(1, Math.abs(value)), `voxel ${xyz}: ${got} vs ${value}`);
    }
  });
}

test('readNiftiHeader reads only the header', async () => {
  const header = await readNiftiHeader(path.join(FIXTURES, 'nifti2_float32.nii.gz'));
  assert.equal(header.version, 2);
  assert.deepEqual(header.dims, [6, 5, 4]);
  assert.equal(header.datatype, 'float32');
  assert.equal(header.voxOffset, 544);
  const four = await readNiftiHeader(path.join(FIXTURES, 'bad_4d.nii.gz'));
  assert.deepEqual(four.dims, [6, 5, 4, 2]);
});

const BAD: [string, string, RegExp][] = [
  ['bad_4d.nii.gz', 'not-3d', /4D \[6, 5, 4, 2\]/],
  ['bad_truncated.nii.gz', 'truncated', /truncated/],
  ['bad_not_nifti.nii', 'not-nifti', /not a NIfTI file/],
  ['bad_not_gzip.nii.gz', 'truncated', /gzip/],
  ['bad_short_data.nii', 'truncated', /data too short: dims \[6, 5, 4\] of int8 need 120 bytes/],
  ['bad_short_data_gz.nii.gz', 'truncated', /data too short/],
  ['bad_rgb.nii', 'unsupported-datatype', /unsupported NIfTI datatype 128 \(rgb24\)/],
  ['does_not_exist.nii.gz', 'not-found', /file not found/],
];
for (const [name, code, message] of BAD) {
  test(`readNifti rejects ${name} with an InputError naming the file`, async () => {
    const file = path.join(FIXTURES, name);
    await assert.rejects(readNifti(file), (error: unknown) => {
      assert.ok(error instanceof InputError, String(error));
      assert.equal(error.code, code);
      assert.equal(error.file, file);
      assert.ok(error.message.startsWith(`${file}: `));
      assert.match(error.message, message);
      return true;
    });
  });
}

test('a NaN scl_inter with a valid slope is refused (as nibabel does), a NaN slope with scl_inter 0 means no scaling', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nifti-read-'));
  try {
    const bytes = fs.readFileSync(path.join(FIXTURES, 'scaled_int16.nii'));
    const nanInter = Buffer.from(bytes);
    nanInter.writeFloatLE(NaN, 116);
    const interFile = path.join(dir, 'a.nii');
    fs.writeFileSync(interFile, nanInter);
    const nanSlope = Buffer.from(bytes);
    nanSlope.writeFloatLE(NaN, 112);
    nanSlope.writeFloatLE(0, 116);
    fs.writeFileSync(path.join(dir, 'b.nii'), nanSlope);
    const raw = await readNifti(path.join(dir, 'b.nii'));
    assert.ok(raw.data instanceof Int16Array);
    const scaled = await readNifti(path.join(FIXTURES, 'scaled_int16.nii'));
    for (let i = 0; i < raw.data.length; i++) assert.equal(scaled.data[i], (raw.data[i] as number) * 2.5 - 1024);
    await assert.rejects(readNifti(interFile), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.equal(error.code, 'bad-header');
      assert.equal(error.message, `${interFile}: scl_inter is NaN with scl_slope 2.5 (a valid slope needs a finite intercept)`);
      return true;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
