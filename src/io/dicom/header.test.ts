/**
 * DICOM in and out on series that Debian's python3-pydicom writes from the infer phantom
 * (test/fixtures/dicom/make_dicom_series.py): the header reader against the tags written, its
 * refusals of malformed headers, the series checks (tilt, gaps, non-uniform spacing, mixed
 * orientations and sizes, several series, a non-CT modality), dcm2niix's conversion back onto the
 * phantom's grid (affine and voxels), the SEG read back by pydicom (check_seg.py) and dcmjs, and
 * `import nsclc-effusion` from a DICOM CT folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import dcmjs from 'dcmjs';
import { GRID_MISMATCH, InputError, type Affine } from '../../core/index.js';
import { readDicomHeader, isDicomFile } from './header.js';
import { checkDicomSeries, chooseSeries, readDicomSeries, scanDicomFolder } from './series.js';
import { convertDicomSeries } from './convert.js';
import { packBits, writeDicomSeg, SEGMENTATION_SOP_CLASS_UID } from './seg.js';
import { readNifti } from '../nifti/read.js';
import { writeNifti } from '../nifti/write.js';
import { importDataset } from '../dataset/importers/index.js';
import { readNpy } from '../dataset/npy.js';
import { checkSegWithPydicom, dcm2niixAvailable, makeDicomSeries, pydicomAvailable } from '../test-support.js';

const PHANTOM = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/infer/phantom.nii.gz');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-test-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The oblique phantom (rotated about two axes, as a real scan of a turned patient) and an axial copy. */
const phantom = readNifti(PHANTOM).then((image) => ({ image, data: Int16Array.from(image.data as Int16Array) }));
const AXIAL: Affine = [
  [-0.8, 0, 0, 101.5],
  [0, -0.9, 0, 80.25],
  [0, 0, 2.5, -180],
  [0, 0, 0, 1],
];

function maxAffineDifference(a: Affine, b: Affine): number {
  return Math.max(...a.flatMap((row, r) => row.map((value, c) => Math.abs(value - b[r]![c]!))));
}

function refusedWith(work: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

test('the header reader returns the tags pydicom wrote, explicit and implicit VR', async (t) => {
  if (!pydicomAvailable(t)) return;
  const { image, data } = await phantom;
  for (const implicit of [false, true]) {
    const dir = path.join(tmp, implicit ? 'implicit' : 'explicit');
    const uid = makeDicomSeries(dir, { data, shape: image.shape, affine: image.affine, implicit });
    const file = path.join(dir, 's01_0003.dcm');
    assert.equal(isDicomFile(file), true);
    const header = readDicomHeader(file);
    assert.equal(header.transferSyntaxUid, implicit ? '1.2.840.10008.1.2' : '1.2.840.10008.1.2.1');
    assert.equal(header.text.SeriesInstanceUID, uid);
    assert.equal(header.text.Modality, 'CT');
    assert.equal(header.text.PatientID, 'PHANTOM-001');
    assert.deepEqual(header.numbers.Rows, [image.shape[1]]);
    assert.deepEqual(header.numbers.Columns, [image.shape[2]]);
    assert.equal(header.numbers.InstanceNumber?.[0], 3);
    assert.equal(header.numbers.ImageOrientationPatient?.length, 6);
    assert.equal(header.hasPixelData, true);
  }
});

test('malformed headers are refused naming the file and the byte, never read as something plausible', async (t) => {
  if (!pydicomAvailable(t)) return;
  const { image, data } = await phantom;
  const dir = path.join(tmp, 'malformed-source');
  makeDicomSeries(dir, { data, shape: image.shape, affine: image.affine });
  const good = fs.readFileSync(path.join(dir, 's01_0001.dcm'));
  const write = (name: string, bytes: Uint8Array): string => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, bytes);
    return file;
  };
  refusedWith(() => readDicomHeader(write('short.dcm', good.subarray(0, 100))), 'dicom-malformed', /ends inside the preamble/);
  const noMagic = Buffer.from(good);
  noMagic.write('DICX', 128, 'latin1');
  refusedWith(() => readDicomHeader(write('nomagic.dcm', noMagic)), 'not-dicom', /no 'DICM'/);
  const position = good.indexOf(Buffer.from('(0020,0032)', 'latin1')); // not in the file: locate the element by its tag bytes instead
  assert.equal(position, -1);
  const ippTag = good.indexOf(Buffer.from([0x20, 0x00, 0x32, 0x00, 0x44, 0x53])); // (0020,0032) DS
  assert.ok(ippTag > 132);
  const truncated = good.subarray(0, ippTag + 10);
  refusedWith(() => readDicomHeader(write('truncated.dcm', truncated)), 'dicom-malformed', new RegExp(`at byte ${ippTag + 8}: the file ends inside element \\(0020,0032\\)`));
  const badVr = Buffer.from(good);
  badVr.write('ZZ', ippTag + 4, 'latin1');
  refusedWith(() => readDicomHeader(write('badvr.dcm', badVr)), 'dicom-malformed', /\(0020,0032\) has an unknown VR "ZZ"/);
  const badDs = Buffer.from(good);
  badDs.write('x', ippTag + 8, 'latin1');
  refusedWith(() => readDicomHeader(write('badds.dcm', badDs)), 'dicom-malformed', /ImagePositionPatient \(0020,0032\) holds "x.*", not a decimal string/);
  const huge = Buffer.from(good);
  huge.writeUInt16LE(0xfff0, ippTag + 6); // a length running past the end of the file
  refusedWith(() => readDicomHeader(write('overrun.dcm', huge)), 'dicom-malformed', /the file ends inside element \(0020,0032\)/);
});

test('series checks: tilt, a missing slice, non-uniform spacing, mixed orientation and size, MR, several series', async (t) => {
  if (!pydicomAvailable(t)) return;
  const { image, data } = await phantom;
  const cases = [
    ['tilt', 'dicom-gantry-tilt', /GantryDetectorTilt 12 degrees/],
    ['gap', 'dicom-missing-slices', /missing slices: 5 mm between s01_0002\.dcm \(instance 2\) and s01_0004\.dcm \(instance 3\), 2x the median spacing 2\.5 mm \(about 1 slice\(s\) absent\)/],
    ['nonuniform', 'dicom-nonuniform-spacing', /non-uniform slice spacing: 3 mm between s01_0003\.dcm .* the median is 2\.5 mm/],
    ['mixed-orientation', 'dicom-mixed-orientation', /mixes orientations/],
    ['mixed-size', 'dicom-mixed-series', /mixes image sizes: 18x21 .* and 18x20/],
  ] as const;
  for (const [variant, code, pattern] of cases) {
    const dir = path.join(tmp, `variant-${variant}`);
    makeDicomSeries(dir, { data, shape: image.shape, affine: image.affine, variant });
    refusedWith(() => readDicomSeries(dir), code, pattern);
  }
  const mr = path.join(tmp, 'mr');
  makeDicomSeries(mr, { data, shape: image.shape, affine: image.affine, modality: 'MR' });
  refusedWith(() => readDicomSeries(mr), 'dicom-not-ct', /is modality MR, not CT/);

  const two = path.join(tmp, 'two-series');
  const first = makeDicomSeries(two, { data, shape: image.shape, affine: image.affine, seriesNumber: 2, description: 'lung kernel' });
  const second = makeDicomSeries(two, { data, shape: image.shape, affine: AXIAL, seriesNumber: 3, description: 'soft tissue' });
  const listing = new RegExp(`holds 2 DICOM series; choose one with --series UID: ${first.replaceAll('.', '\\.')} \\(series 2, "lung kernel", CT, 11 instances\\); ${second.replaceAll('.', '\\.')} \\(series 3, "soft tissue", CT, 11 instances\\)`);
  refusedWith(() => readDicomSeries(two), 'dicom-several-series', listing);
  refusedWith(() => readDicomSeries(two, '1.2.3'), 'dicom-unknown-series', /holds no series 1\.2\.3 \(--series\)/);
  const scan = scanDicomFolder(two);
  assert.equal(checkDicomSeries(two, chooseSeries(scan, second)).seriesNumber, 3);
});

test('dcm2niix converts a series back onto the phantom grid: affine to 1e-4 mm, every voxel equal', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { image, data } = await phantom;
  for (const [name, affine] of [['oblique', image.affine], ['axial', AXIAL]] as const) {
    const dir = path.join(tmp, `convert-${name}`);
    makeDicomSeries(dir, { data, shape: image.shape, affine });
    const series = readDicomSeries(dir);
    const tagDifference = maxAffineDifference(series.affine, affine);
    assert.ok(tagDifference < 1e-4, `${name}: tags' affine differs by ${tagDifference} mm`);
    const work = path.join(tmp, `work-${name}`);
    const converted = await convertDicomSeries(series, work, 'case_0000');
    const nifti = await readNifti(converted.file);
    const difference = maxAffineDifference(nifti.affine, affine);
    t.diagnostic(`${name}: NIfTI affine vs phantom ${difference.toExponential(2)} mm; dcm2niix's grid vs the tags ${converted.geometryDifferenceMm.toExponential(2)} mm (${converted.reorientation})`);
    assert.ok(difference < 1e-4, `${name}: affine differs by ${difference} mm`);
    assert.deepEqual(nifti.shape, image.shape);
    assert.deepEqual(Int16Array.from(nifti.data as Int16Array), data);
  }
});

/**
 * A dcm2niix that runs the real one, then moves its volume by `shiftMm` along world z (srow_z[3] at
 * byte 324 and qoffset_z at byte 276 of the NIfTI-1 header, both float32 little-endian).
 */
function shiftingDcm2niix(dir: string, shiftMm: number): string {
  const script = path.join(dir, `dcm2niix-shift-${shiftMm}.mjs`);
  fs.writeFileSync(script, [
    '#!/usr/bin/env node',
    "import { execFileSync } from 'node:child_process';",
    "import * as fs from 'node:fs';",
    "import * as path from 'node:path';",
    'const args = process.argv.slice(2);',
    "process.stdout.write(execFileSync('dcm2niix', args));",
    "const out = args[args.indexOf('-o') + 1];",
    "for (const name of fs.existsSync(out ?? '') ? fs.readdirSync(out) : []) {",
    "  if (!name.endsWith('.nii')) continue;",
    '  const file = path.join(out, name);',
    '  const bytes = fs.readFileSync(file);',
    `  for (const offset of [276, 324]) bytes.writeFloatLE(bytes.readFloatLE(offset) + ${shiftMm}, offset);`,
    '  fs.writeFileSync(file, bytes);',
    '}',
  ].join('\n'));
  fs.chmodSync(script, 0o755);
  return script;
}

test("a dcm2niix volume off the tags' grid is refused by core's one same-grid test; one within 0.01 voxel is accepted", async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { image, data } = await phantom;
  const dir = path.join(tmp, 'convert-shifted');
  makeDicomSeries(dir, { data, shape: image.shape, affine: AXIAL });
  const series = readDicomSeries(dir);
  // The smallest voxel size is 0.8 mm: 0.02 mm is 0.025 voxel (refused), 0.004 mm is 0.005 voxel (accepted).
  await assert.rejects(convertDicomSeries(series, path.join(tmp, 'work-shift-far'), 'case_0000', { dcm2niix: shiftingDcm2niix(tmp, 0.02) }), (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.code, GRID_MISMATCH);
    assert.match(error.message, /dcm2niix's volume of series .* does not lie on the grid of its ImagePositionPatient.*: origin .* voxel centres lie up to 0\.025 voxel apart/);
    return true;
  });
  const close = await convertDicomSeries(series, path.join(tmp, 'work-shift-close'), 'case_0000', { dcm2niix: shiftingDcm2niix(tmp, 0.004) });
  assert.ok(Math.abs(close.geometryDifferenceMm - 0.004) < 1e-4, String(close.geometryDifferenceMm));
});

test('packBits packs pixel n into bit n % 8 of byte n / 8 across frames, to an even length', () => {
  const frames = [Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 1, 1]), Uint8Array.from([0, 1, 0, 0, 0, 0, 0, 0, 0])];
  assert.deepEqual([...packBits(frames, 9)], [0b10000001, 0b00000101, 0, 0]);
});

test('the SEG round-trips through pydicom and dcmjs: references, frame positions, segments, the mask', async (t) => {
  if (!pydicomAvailable(t)) return;
  const { image, data } = await phantom;
  const dir = path.join(tmp, 'seg-source');
  makeDicomSeries(dir, { data, shape: image.shape, affine: image.affine });
  const series = readDicomSeries(dir);
  // Two labels from intensity: the hand-made mask the SEG must reproduce voxel for voxel.
  const mask = Uint8Array.from(data, (value) => (value > 90 ? 2 : value > 40 ? 1 : 0));
  const segFile = path.join(tmp, 'out', 'case.seg.dcm');
  fs.mkdirSync(path.dirname(segFile), { recursive: true });
  const written = await writeDicomSeg(segFile, series, mask, [{ value: 1, name: 'infection' }, { value: 2, name: 'effusion' }], { softwareVersion: 'lesionseg test' });
  const slicesWith = (value: number) => new Set(Array.from(mask.keys()).filter((index) => mask[index] === value).map((index) => Math.floor(index / (image.shape[1] * image.shape[2])))).size;
  assert.equal(written.frames, slicesWith(1) + slicesWith(2));

  const check = checkSegWithPydicom(segFile, dir, path.join(tmp, 'seg-volume.npy'));
  assert.equal(check.sopClassUid, SEGMENTATION_SOP_CLASS_UID);
  assert.equal(check.frameOfReferenceUid, series.frameOfReferenceUid);
  assert.equal(check.studyInstanceUid, series.studyInstanceUid);
  assert.equal(check.referencedSeries, series.seriesInstanceUid);
  assert.deepEqual(new Set(check.referencedInstances), new Set(series.instances.map((i) => i.sopInstanceUid)));
  assert.deepEqual(check.segments, [
    { number: 1, label: 'infection', category: ['49755003', 'SCT'], type: ['52988006', 'SCT'] },
    { number: 2, label: 'effusion', category: ['49755003', 'SCT'], type: ['60046008', 'SCT'] },
  ]);
  assert.equal(check.frames, written.frames);
  assert.equal(check.misplacedFrames, 0);
  t.diagnostic(`${check.frames} frames; largest frame position difference from its source instance ${check.maxPositionDifferenceMm} mm`);
  const rebuilt = readNpy(path.join(tmp, 'seg-volume.npy'));
  assert.deepEqual(rebuilt.shape, [...image.shape]);
  assert.deepEqual(Uint8Array.from(rebuilt.data as Uint8Array), mask);

  const bytes = fs.readFileSync(segFile);
  const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const seg = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
  assert.equal(seg.SOPClassUID, SEGMENTATION_SOP_CLASS_UID);
  assert.equal(seg.NumberOfFrames, written.frames);
  assert.deepEqual(seg.SegmentSequence.map((s: { SegmentLabel: string }) => s.SegmentLabel), ['infection', 'effusion']);
  assert.equal(seg.PerFrameFunctionalGroupsSequence.length, written.frames);
  const firstFrame = seg.PerFrameFunctionalGroupsSequence[0];
  const source = series.instances.find((i) => i.sopInstanceUid === firstFrame.DerivationImageSequence.SourceImageSequence.ReferencedSOPInstanceUID)!;
  assert.deepEqual(firstFrame.PlanePositionSequence.ImagePositionPatient.map(Number), source.position);
});

test('import nsclc-effusion takes the CT as a TCIA-style DICOM folder (CT beside an MR series): converted onto its grid', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { image, data } = await phantom;
  const src = path.join(tmp, 'nsclc');
  // The CT and another series of the patient: the one CT series is taken.
  makeDicomSeries(path.join(src, 'NSCLC-Radiomics', 'LUNG1-001', 'ct'), { data, shape: image.shape, affine: image.affine });
  makeDicomSeries(path.join(src, 'NSCLC-Radiomics', 'LUNG1-001', 'mr'), { data, shape: image.shape, affine: image.affine, seriesNumber: 7, modality: 'MR' });
  const mask = Uint8Array.from(data, (value) => (value > 60 ? 1 : 0));
  const maskFile = path.join(src, 'Effusions', 'LUNG1-001', 'LUNG1-001_effusion_first_reviewer.nii.gz');
  fs.mkdirSync(path.dirname(maskFile), { recursive: true });
  await writeNifti(maskFile, { data: mask, shape: image.shape, spacing: image.spacing, affine: image.affine });
  const out = path.join(tmp, 'nsclc-raw');
  await importDataset('nsclc-effusion', src, out);
  const ct = await readNifti(path.join(out, 'imagesTr', 'LUNG1-001_0000.nii.gz'));
  assert.ok(maxAffineDifference(ct.affine, image.affine) < 1e-4);
  assert.deepEqual(Int16Array.from(ct.data as Int16Array), data);
  const label = await readNifti(path.join(out, 'labelsTr', 'LUNG1-001.nii.gz'));
  assert.deepEqual(Uint8Array.from(label.data as Uint8Array), mask);
});
