/**
 * readNifti refuses malformed headers instead of reading them as something plausible. Each test
 * patches a valid file from our writer byte by byte (NIfTI-1 offsets, little-endian) and asserts
 * the InputError, its code, and that the message names the file and the field. Geometry that
 * disagrees with itself is compared with what nibabel reads (test/fixtures/io/nifti-geometry).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { InputError, type Affine } from '../../core/index.js';
import { assertFiniteVoxels, readNifti, readNiftiHeader, writeNifti } from '../index.js';
import { GZIP_GROWTH_START_BYTES, grownCapacity, initialGzipCapacity } from './read.js';

const GEOMETRY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/io/nifti-geometry');

/** NIfTI-1 byte offsets of the fields the tests patch. */
const AT = {
  dim: 40,
  qfac: 76,
  pixdim: 76, // pixdim[i] at 76 + 4 i
  voxOffset: 108,
  sclSlope: 112,
  sclInter: 116,
  qformCode: 252,
  sformCode: 254,
  quatern: 256, // b, c, d, then qoffset x, y, z
  srow: 280, // srow_x[0..3], srow_y[0..3], srow_z[0..3]
} as const;
const DATA_OFFSET = 352;
const MiB = 2 ** 20;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nifti-validate-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/** Voxel values -60..59 (x fastest), so that scaling tests know each value. */
const VALUES = Int16Array.from({ length: 120 }, (_, i) => i - 60);
const AFFINE: Affine = [
  [0.7, 0, 0, -10],
  [0, 0.7, 0, 20],
  [0, 0, 2.5, 30],
  [0, 0, 0, 1],
];

async function validBytes(data: Int16Array | Float32Array = VALUES): Promise<Buffer> {
  const file = path.join(dir, `valid-${data.constructor.name}.nii`);
  await writeNifti(file, { data, shape: [4, 5, 6], spacing: [2.5, 0.7, 0.7], affine: AFFINE });
  return fs.readFileSync(file);
}

let counter = 0;
/** A copy of `bytes` with `edit` applied, written under a fresh name; returns the path. */
function patched(bytes: Buffer, edit: (copy: Buffer) => void, extension = '.nii'): string {
  const copy = Buffer.from(bytes);
  edit(copy);
  const file = path.join(dir, `case-${++counter}${extension}`);
  fs.writeFileSync(file, extension.endsWith('.gz') ? zlib.gzipSync(copy, { level: 1 }) : copy);
  return file;
}

async function assertRefused(read: Promise<unknown>, file: string, code: string, message: string | RegExp): Promise<void> {
  await assert.rejects(read, (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.code, code);
    assert.equal(error.file, file);
    assert.ok(error.message.startsWith(`${file}: `), error.message);
    if (typeof message === 'string') assert.equal(error.message, `${file}: ${message}`);
    else assert.match(error.message, message);
    return true;
  });
}

test('1. NaN, infinite, zero or negative pixdim[1..3] is refused by readNifti and readNiftiHeader', async () => {
  const bytes = await validBytes();
  const cases: [number, number, string][] = [
    [1, NaN, 'pixdim[1] is NaN'],
    [2, 0, 'pixdim[2] is 0'],
    [3, -2.5, 'pixdim[3] is -2.5'],
    [2, Infinity, 'pixdim[2] is Infinity'],
  ];
  for (const [index, value, what] of cases) {
    const file = patched(bytes, (b) => b.writeFloatLE(value, AT.pixdim + 4 * index));
    const message = `${what} (voxel sizes must be finite and > 0)`;
    await assertRefused(readNifti(file), file, 'bad-header', message);
    await assertRefused(readNiftiHeader(file), file, 'bad-header', message);
  }
  // Every problem at once, in one message.
  const both = patched(bytes, (b) => {
    b.writeFloatLE(0, AT.pixdim + 4);
    b.writeFloatLE(NaN, AT.pixdim + 12);
  }, '.nii.gz');
  await assertRefused(readNifti(both), both, 'bad-header', 'pixdim[1] is 0 (voxel sizes must be finite and > 0); pixdim[3] is NaN (voxel sizes must be finite and > 0)');
});

test('2a. sform_code > 0 with a non-finite srow entry or a singular 3x3 part is refused', async () => {
  const bytes = await validBytes();
  const nan = patched(bytes, (b) => b.writeFloatLE(NaN, AT.srow + 4 * (4 + 1)));
  await assertRefused(readNifti(nan), nan, 'bad-header', 'srow_y[1] is NaN (sform_code 1 makes the sform the geometry; its entries must be finite)');
  const inf = patched(bytes, (b) => b.writeFloatLE(-Infinity, AT.srow + 4 * 3));
  await assertRefused(readNifti(inf), inf, 'bad-header', /srow_x\[3\] is -Infinity/);
  const zero = patched(bytes, (b) => {
    for (const r of [0, 1, 2]) for (const c of [0, 1, 2]) b.writeFloatLE(0, AT.srow + 4 * (4 * r + c));
  });
  await assertRefused(readNifti(zero), zero, 'bad-header', 'the sform (sform_code 1) is singular: its 3x3 part [[0, 0, 0], [0, 0, 0], [0, 0, 0]] has determinant 0, so it maps no voxel grid to the world');
  // Rank 2: the z column a copy of the x column (non-zero norms, zero volume).
  const flat = patched(bytes, (b) => {
    for (const r of [0, 1, 2]) b.writeFloatLE(b.readFloatLE(AT.srow + 4 * (4 * r)), AT.srow + 4 * (4 * r + 2));
  });
  await assertRefused(readNifti(flat), flat, 'bad-header', /sform \(sform_code 1\) is singular: its 3x3 part \[\[0\.7, 0, 0\.7\], \[0, 0\.7, 0\], \[0, 0, 0\]\]/);
  // An unused sform (sform_code 0) is not judged: the qform is read.
  const unused = patched(bytes, (b) => {
    b.writeInt16LE(0, AT.sformCode);
    b.writeFloatLE(NaN, AT.srow);
  });
  assert.equal((await readNifti(unused)).geometrySource, 'qform');
});

test('2b. a used qform with NaN quaternion/offset, qfac not +-1 or a non-unit quaternion is refused; qfac 0 reads as 1', async () => {
  const bytes = await validBytes();
  const qformOnly = (edit: (b: Buffer) => void) => (b: Buffer) => {
    b.writeInt16LE(0, AT.sformCode);
    edit(b);
  };
  const why = '(qform_code 1 and sform_code 0 make the qform the geometry; it must be finite)';
  const c = patched(bytes, qformOnly((b) => b.writeFloatLE(NaN, AT.quatern + 4)));
  await assertRefused(readNifti(c), c, 'bad-header', `quatern_c is NaN ${why}`);
  const offset = patched(bytes, qformOnly((b) => b.writeFloatLE(NaN, AT.quatern + 20)));
  await assertRefused(readNifti(offset), offset, 'bad-header', `qoffset_z is NaN ${why}`);
  const half = patched(bytes, qformOnly((b) => b.writeFloatLE(-0.5, AT.qfac)));
  await assertRefused(readNifti(half), half, 'bad-header', 'pixdim[0] (qfac) is -0.5 (must be 1 or -1, or 0 read as 1)');
  const nanQfac = patched(bytes, qformOnly((b) => b.writeFloatLE(NaN, AT.qfac)));
  await assertRefused(readNifti(nanQfac), nanQfac, 'bad-header', /pixdim\[0\] \(qfac\) is NaN/);
  const long = patched(bytes, qformOnly((b) => [0.8, 0.6, 0.1].forEach((v, i) => b.writeFloatLE(v, AT.quatern + 4 * i))));
  await assertRefused(readNifti(long), long, 'bad-header', /quatern_b, quatern_c, quatern_d \(0\.8, 0\.6, 0\.1\) have b\^2 \+ c\^2 \+ d\^2 = 1\.01 > 1/);

  const one = await readNifti(patched(bytes, qformOnly(() => {})));
  const zero = await readNifti(patched(bytes, qformOnly((b) => b.writeFloatLE(0, AT.qfac))));
  assert.equal(zero.geometrySource, 'qform');
  assert.deepEqual(zero.affine, one.affine);
  // The writer's qform is the affine (right-handed, no shear): float32 rounding of 0.7 only.
  for (let r = 0; r < 3; r++) for (let k = 0; k < 4; k++) assert.ok(Math.abs(one.affine[r]![k]! - AFFINE[r]![k]!) < 1e-6);
  // A NaN in an unused qform (the sform wins) is not judged.
  const unused = await readNifti(patched(bytes, (b) => b.writeFloatLE(NaN, AT.quatern)));
  assert.equal(unused.geometrySource, 'sform');
});

interface GeometryCase {
  affine: number[][];
  voxel_sizes: number[];
  zooms: number[];
  source: 'sform' | 'qform' | 'pixdim';
}
const geometry = JSON.parse(fs.readFileSync(path.join(GEOMETRY, 'expected.json'), 'utf8')) as { cases: Record<string, GeometryCase> };

test('3. geometry follows nibabel: the affine it chooses; spacing = get_zooms() (pixdim) unless the affine\'s voxel sizes disagree, then theirs with a note', async () => {
  assert.equal(Object.keys(geometry.cases).length, 5);
  for (const [name, want] of Object.entries(geometry.cases)) {
    const image = await readNifti(path.join(GEOMETRY, name));
    assert.equal(image.geometrySource, want.source, name);
    // Affine entries are float32 values in both readers; only the qform's quaternion arithmetic
    // rounds (float64 here, float64 in nibabel), so 1e-12 relative holds for every entry.
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) {
        const [a, b] = [image.affine[r]![c]!, want.affine[r]![c]!];
        assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${name} affine[${r}][${c}] ${a} vs nibabel ${b}`);
      }
    }
    // nibabel's get_zooms() and voxel_sizes(affine) are x, y, z; spacing is z, y, x. With a note
    // the affine's voxel sizes (float64 norms of float32 entries in both: 1e-12), else pixdim exactly.
    for (let axis = 0; axis < 3; axis++) {
      const a = image.spacing[2 - axis]!;
      if (image.geometryNote === undefined) assert.equal(a, want.zooms[axis]!, `${name} voxel size ${axis}: ${a} vs nibabel's get_zooms() ${want.zooms[axis]}`);
      else assert.ok(Math.abs(a - want.voxel_sizes[axis]!) <= 1e-12 * want.voxel_sizes[axis]!, `${name} voxel size ${axis}: ${a} vs nibabel ${want.voxel_sizes[axis]}`);
    }
  }
  const disagree = await readNifti(path.join(GEOMETRY, 'sform_pixdim_disagree.nii'));
  assert.deepEqual(geometry.cases['sform_pixdim_disagree.nii']!.zooms, [1, 1, 1]);
  assert.equal(disagree.geometryNote, "pixdim [1, 1, 1] differs from the sform's voxel sizes [0.7, 0.7, 2.5] by more than 0.00001 relative; the sform's are used, as nibabel's affine places the voxels");
  for (const name of ['sform_pixdim_agree.nii', 'qform_only_pixdim.nii', 'qform_qfac_zero.nii', 'no_codes_pixdim.nii']) {
    assert.equal((await readNifti(path.join(GEOMETRY, name))).geometryNote, undefined, name);
  }
});

test('4. a NaN, infinite, negative or fractional vox_offset is refused; one inside the header means right after it', async () => {
  const bytes = await validBytes();
  for (const [value, shown] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-16, '-16'], [352.5, '352.5']] as const) {
    const file = patched(bytes, (b) => b.writeFloatLE(value, AT.voxOffset));
    await assertRefused(readNifti(file), file, 'bad-header', `vox_offset is ${shown} (must be a whole number of bytes >= 0)`);
  }
  const inside = await readNifti(patched(bytes, (b) => b.writeFloatLE(0, AT.voxOffset)));
  assert.deepEqual(inside.data, VALUES);
});

test('5. scaling that turns finite values infinite is refused; stored NaN voxels are read and left to assertFiniteVoxels', async () => {
  const bytes = await validBytes();
  // float32(1e38) * v exceeds float32's 3.40e38 for |v| >= 4: all of -60..59 but -3..3, 113 voxels.
  const huge = patched(bytes, (b) => b.writeFloatLE(1e38, AT.sclSlope));
  await assertRefused(readNifti(huge), huge, 'bad-header', 'scl_slope 1e+38 and scl_inter 0 make 113 of 120 voxels infinite (beyond the float32 range)');
  const nanSlope = patched(bytes, (b) => {
    b.writeFloatLE(NaN, AT.sclSlope);
    b.writeFloatLE(-1024, AT.sclInter);
  });
  await assertRefused(readNifti(nanSlope), nanSlope, 'bad-header', 'scl_slope is NaN with scl_inter -1024 (the intercept says the values are scaled, but by no usable slope)');

  const floats = Float32Array.from(VALUES);
  floats[7] = NaN;
  const withNan = patched(await validBytes(floats), (b) => b.writeFloatLE(2, AT.sclSlope));
  const image = await readNifti(withNan);
  assert.ok(Number.isNaN(image.data[7]));
  assert.equal(image.data[8], (8 - 60) * 2);
  assert.throws(() => assertFiniteVoxels(image.data, withNan), (error: unknown) => {
    assert.ok(error instanceof InputError);
    assert.equal(error.code, 'non-finite');
    assert.match(error.message, /^.*: 1 NaN and 0 infinite voxels/);
    return true;
  });
});

/** A gzipped header declaring `dims` of int16 followed by only `dataBytes` bytes (value 1). */
async function shortGzip(dims: [number, number, number], dataBytes: number): Promise<string> {
  const header = (await validBytes()).subarray(0, DATA_OFFSET);
  const raw = Buffer.alloc(DATA_OFFSET + dataBytes, 1);
  header.copy(raw);
  dims.forEach((n, i) => raw.writeInt16LE(n, AT.dim + 2 * (i + 1)));
  const file = path.join(dir, `case-${++counter}.nii.gz`);
  fs.writeFileSync(file, zlib.gzipSync(raw, { level: 1 }));
  return file;
}

test('6a. a small .nii.gz declaring 1 GiB fails as truncated without allocating the gigabyte', async () => {
  const file = await shortGzip([1024, 1024, 512], 8 * MiB);
  assert.ok(fs.statSync(file).size < MiB);
  // calloc'd pages count in rss only once written, so the allocation itself is watched through
  // arrayBuffers (bytes held by ArrayBuffers, touched or not), sampled while the read runs.
  const before = process.memoryUsage();
  let peak = { rss: before.rss, arrayBuffers: before.arrayBuffers };
  const sample = () => {
    const now = process.memoryUsage();
    peak = { rss: Math.max(peak.rss, now.rss), arrayBuffers: Math.max(peak.arrayBuffers, now.arrayBuffers) };
  };
  const timer = setInterval(sample, 1);
  try {
    await assertRefused(readNifti(file), file, 'truncated', 'data too short: dims [1024, 1024, 512] of int16 need 1073741824 bytes after offset 352, the file has 8388608');
  } finally {
    clearInterval(timer);
  }
  sample();
  // 64 MiB first buffer + 1 MiB inflate chunks; the old reader held the full 1024 MiB.
  assert.ok(peak.arrayBuffers - before.arrayBuffers < 300 * MiB, `arrayBuffers grew by ${(peak.arrayBuffers - before.arrayBuffers) / MiB} MiB`);
  assert.ok(peak.rss - before.rss < 300 * MiB, `rss grew by ${(peak.rss - before.rss) / MiB} MiB`);
});

test('6b. the gzip buffer is allocated in full only when ISIZE vouches for it, else grown by doubling', async () => {
  const data = 96 * MiB;
  assert.equal(initialGzipCapacity(data, 352, data + 352), data);
  assert.equal(initialGzipCapacity(data, 352, data + 353), GZIP_GROWTH_START_BYTES);
  assert.equal(initialGzipCapacity(data, 352, undefined), GZIP_GROWTH_START_BYTES);
  assert.equal(initialGzipCapacity(1000, 352, 0), 1000);
  const fiveGib = 5 * 2 ** 30; // ISIZE is the size mod 2^32
  assert.equal(initialGzipCapacity(fiveGib, 352, (fiveGib + 352) % 2 ** 32), fiveGib);
  assert.equal(grownCapacity(64 * MiB, 64 * MiB + 1, data), data);
  assert.equal(grownCapacity(64 * MiB, 64 * MiB + 1, 1024 * MiB), 128 * MiB);
  assert.equal(grownCapacity(64 * MiB, 300 * MiB, 1024 * MiB), 512 * MiB);

  // A real stream through the growing path: 96 MiB of uint8 plus trailing bytes (so ISIZE does
  // not match), with marks on both sides of the 64 MiB step.
  const header = (await validBytes()).subarray(0, DATA_OFFSET);
  const raw = Buffer.alloc(DATA_OFFSET + data + 16);
  header.copy(raw);
  [512, 512, 384].forEach((n, i) => raw.writeInt16LE(n, AT.dim + 2 * (i + 1)));
  raw.writeInt16LE(2, 70); // datatype uint8
  raw.writeInt16LE(8, 72); // bitpix
  const marks = [0, 64 * MiB - 1, 64 * MiB, data - 1];
  marks.forEach((index, k) => (raw[DATA_OFFSET + index] = k + 1));
  const file = path.join(dir, 'grow.nii.gz');
  fs.writeFileSync(file, zlib.gzipSync(raw, { level: 1 }));
  const image = await readNifti(file);
  assert.equal(image.data.length, data);
  assert.equal(image.data.buffer.byteLength, data);
  let sum = 0;
  for (let i = 0; i < image.data.length; i++) sum += image.data[i] as number;
  assert.equal(sum, 1 + 2 + 3 + 4);
  marks.forEach((index, k) => assert.equal(image.data[index], k + 1));
});

test('6c. an image declaring more than maxBytes (default 8 GiB) is refused before reading, naming the limit', async () => {
  const bytes = await validBytes();
  const file = patched(bytes, () => {});
  await assertRefused(readNifti(file, { maxBytes: 200 }), file, 'too-large', 'dims [6, 5, 4] of int16 need 240 bytes of memory, over the limit of 200 bytes per image (predict --max-image-gib raises it)');
  assert.equal((await readNifti(file, { maxBytes: 240 })).data.length, 120);
  // Scaling to float32 adds 4 bytes a voxel: 120 * (2 + 4) = 720 bytes.
  const scaled = patched(bytes, (b) => b.writeFloatLE(2, AT.sclSlope));
  await assertRefused(readNifti(scaled, { maxBytes: 719 }), scaled, 'too-large', /of int16, scaled to float32, need 720 bytes of memory, over the limit of 719 bytes/);
  // 32767^3 int16 voxels (64 TiB) in a file of a few hundred bytes, refused by the default limit.
  const huge = await shortGzip([32767, 32767, 32767], 0);
  await assertRefused(readNifti(huge), huge, 'too-large', 'dims [32767, 32767, 32767] of int16 need 65500 GiB of memory, over the limit of 8 GiB per image (predict --max-image-gib raises it)');
  await assertRefused(readNifti(file, { maxBytes: 0 }), file, 'bad-arguments', /maxBytes 0 is not a positive number/);
});
