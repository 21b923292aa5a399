/**
 * Series as scanners write them: one CT-like phantom series (pydicom, make_dicom_series.py)
 * re-encoded by Debian's own encoders (dcmtk's dcmcjpeg, dcmcjpls, dcmcrle, dcmconv; GDCM's
 * gdcmconv) into each transfer syntax, then read by predict's path (readDicomSeries, then
 * convertDicomSeries). References: lossless syntaxes give exactly the phantom's HU; lossy JPEG gives
 * exactly libjpeg's HU as dcmtk's dcmdjpeg decodes it, and lossy JPEG 2000 OpenJPEG's as gdcmconv
 * decodes it, both read by pydicom (read_hu.py). Also: headers in big endian and deflate read as
 * the little-endian original; a truncated or undecodable file and an unknown syntax are refused
 * naming the user's file. Enhanced CT (one multi-frame file, also compressed without a basic offset
 * table) gives the phantom's HU and affine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, type Affine } from '../../core/index.js';
import { readDicomHeader } from './header.js';
import { readDicomSeries } from './series.js';
import { convertDicomSeries } from './convert.js';
import { readNifti } from '../nifti/read.js';
import { readNpy } from '../dataset/npy.js';
import { DICOM_FIXTURES, dcm2niixAvailable, decodersAvailable, makeDicomSeries, PYTHON, pydicomAvailable } from '../test-support.js';

const PHANTOM = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/infer/phantom.nii.gz');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-decode-test-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** 6 slices of 48 x 40: air, soft tissue and bone edges with deterministic noise, -1024..1500 HU. */
const SHAPE: [number, number, number] = [6, 40, 48];
const AXIAL: Affine = [
  [-0.7, 0, 0, 20],
  [0, -0.7, 0, 15],
  [0, 0, 2, -40],
  [0, 0, 0, 1],
];
function ctPhantom(): Int16Array {
  const data = new Int16Array(SHAPE[0] * SHAPE[1] * SHAPE[2]);
  let seed = 12345;
  const noise = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return (seed / 2147483648 - 0.5) * 60;
  };
  for (let z = 0; z < SHAPE[0]; z++) {
    for (let y = 0; y < SHAPE[1]; y++) {
      for (let x = 0; x < SHAPE[2]; x++) {
        const r = Math.hypot((x - 24) / 20, (y - 20) / 16);
        const bone = Math.hypot(x - 30 + z, y - 14) < 5;
        const value = r > 1 ? -1024 : bone ? 1200 + 300 * Math.sin(x / 3) : 40 + 30 * Math.sin((x + 2 * y + 5 * z) / 4) + noise();
        data[(z * SHAPE[1] + y) * SHAPE[2] + x] = Math.round(value);
      }
    }
  }
  return data;
}

let source: string | undefined;
/** The uncompressed phantom series (explicit VR little endian), written once. */
function sourceSeries(): string {
  if (source === undefined) {
    source = path.join(tmp, 'source');
    makeDicomSeries(source, { data: ctPhantom(), shape: SHAPE, affine: AXIAL });
  }
  return source;
}

/** The source series re-encoded file by file with `tool args IN OUT` into a new folder. */
function encode(name: string, tool: string, args: string[], from = sourceSeries()): string {
  const out = path.join(tmp, name);
  fs.mkdirSync(out, { recursive: true });
  for (const file of fs.readdirSync(from).sort()) execFileSync(tool, [...args, path.join(from, file), path.join(out, file)], { stdio: 'pipe' });
  return out;
}

/** HU [z, y, x] as predict's path reads the series. */
async function ourHu(folder: string, name: string, dcm2niixDecodes = false): Promise<Float64Array> {
  const converted = await convertDicomSeries(readDicomSeries(folder), path.join(tmp, `work-${name}${dcm2niixDecodes ? '-dcm2niix' : ''}`), 'case_0000', { dcm2niixDecodes });
  const nifti = await readNifti(converted.file);
  assert.deepEqual(nifti.shape, SHAPE);
  return Float64Array.from(nifti.data as ArrayLike<number>);
}

/** HU [z, y, x] of `folder` decoded by `tool args` and read by pydicom. */
function referenceHu(folder: string, name: string, tool: string, args: string[]): Float64Array {
  const decoded = encode(`reference-${name}`, tool, args, folder);
  const npy = path.join(tmp, `reference-${name}.npy`);
  execFileSync(PYTHON, [path.join(DICOM_FIXTURES, 'read_hu.py'), decoded, npy]);
  return Float64Array.from(readNpy(npy).data as ArrayLike<number>);
}

function difference(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; share: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    if (d > 1e-3) differing++; // beyond float32 rounding of a non-integral rescale
  }
  return { max, share: differing / a.length };
}

const LOSSLESS: [string, string, string, string[]][] = [
  ['JPEG lossless', '1.2.840.10008.1.2.4.57', 'dcmcjpeg', ['+el']],
  ['JPEG lossless SV1', '1.2.840.10008.1.2.4.70', 'dcmcjpeg', ['+e1']],
  ['JPEG-LS lossless', '1.2.840.10008.1.2.4.80', 'dcmcjpls', []],
  ['RLE', '1.2.840.10008.1.2.5', 'dcmcrle', []],
  ['JPEG 2000 lossless', '1.2.840.10008.1.2.4.90', 'gdcmconv', ['--j2k']],
  ['big endian', '1.2.840.10008.1.2.2', 'dcmconv', ['+tb']],
  ['deflate', '1.2.840.10008.1.2.1.99', 'dcmconv', ['+td']],
];

test('lossless syntaxes (JPEG lossless, JPEG-LS, RLE, JPEG 2000, big endian, deflate) give exactly the phantom HU', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t) || !decodersAvailable(t)) return;
  const phantom = ctPhantom();
  for (const [name, syntax, tool, args] of LOSSLESS) {
    const folder = encode(name.replaceAll(' ', '-'), tool, args);
    assert.equal(readDicomHeader(path.join(folder, 's01_0001.dcm')).transferSyntaxUid, syntax, name);
    const hu = await ourHu(folder, name.replaceAll(' ', '-'));
    const { max } = difference(hu, phantom);
    assert.equal(max, 0, `${name}: HU differ from the phantom by up to ${max}`);
  }
});

test('big endian and deflated headers read as the little-endian original', async (t) => {
  if (!pydicomAvailable(t) || !decodersAvailable(t)) return;
  const original = readDicomHeader(path.join(sourceSeries(), 's01_0003.dcm'));
  for (const [name, args] of [['header-big', ['+tb']], ['header-deflate', ['+td']]] as const) {
    const header = readDicomHeader(path.join(encode(name, 'dcmconv', [...args]), 's01_0003.dcm'));
    assert.deepEqual(header.numbers, original.numbers, name);
    assert.deepEqual(header.text, original.text, name);
    assert.equal(header.pixelData?.length, SHAPE[1] * SHAPE[2] * 2, name);
  }
});

test("lossy JPEG (baseline 8-bit, extended 12-bit) gives exactly libjpeg's HU as dcmdjpeg decodes it; lossy JPEG 2000 gdcmconv's", async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t) || !decodersAvailable(t)) return;
  const phantom = ctPhantom();
  const cases: [string, string, string, string[], string, string[]][] = [
    ['baseline', '1.2.840.10008.1.2.4.50', 'dcmcjpeg', ['+eb', '+q', '75'], 'dcmdjpeg', []],
    ['extended', '1.2.840.10008.1.2.4.51', 'dcmcjpeg', ['+ee', '+q', '75'], 'dcmdjpeg', []],
    ['j2k-lossy', '1.2.840.10008.1.2.4.91', 'gdcmconv', ['--j2k', '--lossy', '-q', '30'], 'gdcmconv', ['--raw']],
  ];
  for (const [name, syntax, tool, args, decoder, decoderArgs] of cases) {
    const folder = encode(name, tool, args);
    assert.equal(readDicomHeader(path.join(folder, 's01_0001.dcm')).transferSyntaxUid, syntax, name);
    const hu = await ourHu(folder, name);
    const reference = referenceHu(folder, name, decoder, decoderArgs);
    const ours = difference(hu, reference);
    const lossy = difference(hu, phantom);
    t.diagnostic(`${name}: vs ${decoder} max |diff| ${ours.max} HU; vs the uncompressed phantom max ${lossy.max.toFixed(1)} HU on ${(100 * lossy.share).toFixed(1)} % of voxels`);
    // float32 NIfTI of a non-integral rescale: within float32 rounding of |HU| <= 2500 (2^-23 * 4096).
    assert.ok(ours.max <= 5e-4, `${name}: HU differ from ${decoder}'s by up to ${ours.max}`);
    assert.ok(lossy.max > 0, `${name}: the encoding was not lossy`);
    if (name === 'baseline') {
      // What predict read before: dcm2niix's own JPEG decoder, set against libjpeg's.
      const theirs = difference(await ourHu(folder, name, true), reference);
      t.diagnostic(`baseline: dcm2niix's own decoder vs dcmdjpeg: max |diff| ${theirs.max.toFixed(2)} HU on ${(100 * theirs.share).toFixed(1)} % of voxels`);
      assert.ok(theirs.max > 1, `dcm2niix's own decoder now agrees with libjpeg (max |diff| ${theirs.max} HU): the README's numbers are out of date`);
    }
  }
});

function refused(work: () => unknown, code: string, file: string, pattern: RegExp): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.code, code, error.message);
    assert.equal(error.file, file);
    assert.match(error.message, pattern);
    return true;
  });
}

test('a truncated compressed file, an undecodable one and an unknown transfer syntax are refused naming the file (exit 2)', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t) || !decodersAvailable(t)) return;
  const folder = encode('truncated', 'dcmcjpls', []);
  const last = path.join(folder, 's01_0006.dcm');
  const bytes = fs.readFileSync(last);
  fs.writeFileSync(last, bytes.subarray(0, bytes.length - 100));
  refused(() => readDicomSeries(folder), 'dicom-truncated', last, /the file ends inside its JPEG-LS lossless PixelData \(7FE0,0010\).*truncated/);

  // Intact items, garbage inside the fragment: only the decoder can tell, after the header checks.
  const corrupt = encode('corrupt', 'dcmcjpls', []);
  const victim = path.join(corrupt, 's01_0004.dcm');
  const original = fs.readFileSync(victim);
  const header = readDicomHeader(victim);
  const firstFragment = header.pixelData!.offset + 8 + original.readUInt32LE(header.pixelData!.offset + 4) + 8;
  original.fill(0x55, firstFragment, original.length - 8);
  fs.writeFileSync(victim, original);
  await assert.rejects(convertDicomSeries(readDicomSeries(corrupt), path.join(tmp, 'work-corrupt'), 'case_0000'), (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.code, 'dicom-undecodable');
    assert.equal(error.file, victim);
    assert.match(error.message, /dcmdjpls cannot decode its JPEG-LS lossless pixel data/);
    return true;
  });

  // 1.2.840.10008.1.2.4.52 (JPEG extended, processes 3 & 5, retired): the same length as .50's UID.
  const unknown = encode('unknown', 'dcmcjpeg', ['+eb']);
  const patched = path.join(unknown, 's01_0002.dcm');
  const file = fs.readFileSync(patched);
  const at = file.indexOf('1.2.840.10008.1.2.4.50', 132, 'latin1');
  file.write('1.2.840.10008.1.2.4.52', at, 'latin1');
  fs.writeFileSync(patched, file);
  refused(() => readDicomSeries(unknown), 'dicom-transfer-syntax', patched, /transfer syntax 1\.2\.840\.10008\.1\.2\.4\.52 \(0002,0010\), which no decoder lesionseg uses reads/);
});

test('Enhanced CT (one multi-frame file: functional groups; uncompressed, RLE and JPEG lossless without a basic offset table) gives the phantom HU on its grid', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t) || !decodersAvailable(t)) return;
  const phantom = ctPhantom();
  const native = path.join(tmp, 'enhanced', 'native');
  fs.mkdirSync(native, { recursive: true });
  execFileSync(PYTHON, [path.join(DICOM_FIXTURES, 'make_enhanced_ct.py'), sourceSeries(), path.join(native, 'ct.dcm')]);
  const single = readDicomSeries(sourceSeries());
  for (const [name, tool, args] of [['native', '', []], ['rle', 'dcmcrle', ['-ot']], ['jpeg-lossless', 'dcmcjpeg', ['+e1', '-ot']]] as const) {
    const folder = name === 'native' ? native : encode(`enhanced-${name}`, tool, [...args], native);
    const header = readDicomHeader(path.join(folder, 'ct.dcm'));
    assert.equal(header.functionalGroups?.perFrame.length, SHAPE[0], name);
    // The basic offset table (the first item of encapsulated PixelData) is empty: frames are found by their fragments.
    if (name !== 'native') assert.equal(fs.readFileSync(path.join(folder, 'ct.dcm')).readUInt32LE(header.pixelData!.offset + 4), 0, name);
    const series = readDicomSeries(folder);
    assert.deepEqual(series.instances.map((instance) => instance.frame), [1, 2, 3, 4, 5, 6], name);
    assert.deepEqual(series.affine, single.affine, name);
    assert.equal(series.sliceSpacingMm, single.sliceSpacingMm, name);
    const { max } = difference(await ourHu(folder, `enhanced-${name}`), phantom);
    assert.equal(max, 0, `${name}: HU differ from the phantom by up to ${max}`);
  }
  // The oblique infer phantom, whose slices run against the normal: k follows the frame numbers, as it follows instance numbers.
  const oblique = await readNifti(PHANTOM);
  const obliqueSeries = path.join(tmp, 'enhanced', 'oblique-series');
  makeDicomSeries(obliqueSeries, { data: Int16Array.from(oblique.data as Int16Array), shape: oblique.shape, affine: oblique.affine });
  const obliqueEnhanced = path.join(tmp, 'enhanced', 'oblique');
  fs.mkdirSync(obliqueEnhanced, { recursive: true });
  execFileSync(PYTHON, [path.join(DICOM_FIXTURES, 'make_enhanced_ct.py'), obliqueSeries, path.join(obliqueEnhanced, 'ct.dcm')]);
  const converted = await readNifti((await convertDicomSeries(readDicomSeries(obliqueEnhanced), path.join(tmp, 'work-enhanced-oblique'), 'case_0000')).file);
  const affineDifference = Math.max(...converted.affine.flatMap((row, r) => row.map((value, c) => Math.abs(value - oblique.affine[r]![c]!))));
  assert.ok(affineDifference < 1e-4, `oblique Enhanced CT: affine differs by ${affineDifference} mm`);
  assert.deepEqual(Int16Array.from(converted.data as Int16Array), Int16Array.from(oblique.data as Int16Array));
});
