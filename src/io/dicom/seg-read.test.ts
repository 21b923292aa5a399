/**
 * A SEG read back onto its source series (dicom-seg-read.ts) equals the mask written, voxel for
 * voxel, however the frames are ordered and however they are placed: our writer's SEG; the same
 * SEG rewritten by pydicom (reorder_seg_frames.py) with its frames reversed, or interleaved, in
 * implicit VR and without source references (placed by ImagePositionPatient alone); a SEG written
 * by dcmjs's own Segmentation derivation (another writer, its frames from the last slice down); and the SEG of
 * the series as one Enhanced CT file (frames referenced by number). The reference is the mask
 * handed to the writer, and pydicom's own reading of the SEG (check_seg.py) agrees with it. A SEG
 * shown on another series (of its frame of reference, or of another), one whose frame moved off its source
 * image, and a CT image given as a SEG are refused naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import dcmjs from 'dcmjs';
import type { Affine } from '../../core/index.js';
import { InputError } from '../../core/index.js';
import { readNpy } from '../dataset/npy.js';
import { writeDicomSeg } from './seg.js';
import { parseDicomSeg, segOnSeries } from './seg-read.js';
import { readDicomSeries, type DicomSeries } from './series.js';
import { checkSegWithPydicom, DICOM_FIXTURES, makeDicomSeries, pydicomAvailable, PYTHON } from '../test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-seg-read-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

const SHAPE: [number, number, number] = [5, 7, 6];
/** Oblique (tilted 16.3 degrees about x): the slice normal is not an axis, so a position check that ignored x or y would fail. */
const AFFINE: Affine = [[-0.8, 0, 0, 12], [0, -0.9 * 0.96, 2.4 * 0.28, 25], [0, 0.9 * 0.28, 2.4 * 0.96, -40], [0, 0, 0, 1]];
const DATA = Int16Array.from({ length: 210 }, (_, i) => ((i * 53) % 210) - 100);
/** Label 1 and 2 on different slices (1 absent from slice 4, 2 from slice 0), so frames do not follow slices one to one. */
const MASK = Uint8Array.from(DATA, (v, i) => {
  const k = Math.floor(i / 42);
  return v > 60 && k > 0 ? 2 : v > 0 && k < 4 ? 1 : 0;
});
const LABELS = [{ value: 1, name: 'infection' }, { value: 2, name: 'effusion' }];

/**
 * The mask as a SEG written by dcmjs's own Segmentation derivation (another writer): it normalizes
 * the series into one multi-frame data set in its own slice order (from the highest position along
 * the normal down, the reverse of ours here), and each of its frames references the instance
 * dcmjs lists for it; the labelmap of each of its frames is our slice of that instance.
 */
function writeSegWithDcmjs(folder: string, series: DicomSeries, out: string): void {
  const datasets = fs.readdirSync(folder).map((name) => {
    const bytes = fs.readFileSync(path.join(folder, name));
    const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    return { ...dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict), _meta: dcmjs.data.DicomMetaDictionary.namifyDataset(dict.meta) };
  });
  const multiframe = dcmjs.normalizers.Normalizer.normalizeToDataset(datasets);
  const sliceOfFrame = (multiframe.ReferencedSeriesSequence.ReferencedInstanceSequence as { ReferencedSOPInstanceUID: string }[])
    .map((item) => series.instances.findIndex((instance) => instance.sopInstanceUid === item.ReferencedSOPInstanceUID));
  const seg = new dcmjs.derivations.Segmentation([multiframe]);
  const pixelsPerFrame = series.rows * series.columns;
  const framesOf = LABELS.map((label) => sliceOfFrame.flatMap((k, f) => (MASK.subarray(k * pixelsPerFrame, (k + 1) * pixelsPerFrame).includes(label.value) ? [f + 1] : [])));
  seg.setNumberOfFrames(framesOf.flat().length);
  const code = { CodeValue: '52988006', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Lesion' };
  for (const [index, label] of LABELS.entries()) {
    const pixels = Uint8Array.from(framesOf[index]!.flatMap((frame) => [...MASK.subarray(sliceOfFrame[frame - 1]! * pixelsPerFrame, (sliceOfFrame[frame - 1]! + 1) * pixelsPerFrame)].map((v) => (v === label.value ? 1 : 0))));
    seg.addSegment({ SegmentLabel: label.name, SegmentAlgorithmType: 'MANUAL', SegmentedPropertyCategoryCodeSequence: code, SegmentedPropertyTypeCodeSequence: code }, pixels, framesOf[index]!);
  }
  seg.bitPackPixelData();
  fs.writeFileSync(out, Buffer.from(dcmjs.data.datasetToDict(seg.dataset).write()));
}

function reorder(source: string, out: string, ...options: string[]): number[] {
  return JSON.parse(execFileSync(PYTHON, [path.join(DICOM_FIXTURES, 'reorder_seg_frames.py'), source, out, ...options], { encoding: 'utf8' })) as number[];
}

test('the written mask comes back voxel-exact from our SEG, from pydicom rewrites with frames reversed or interleaved (implicit VR, placed by position alone), from dcmjs\'s SEG writer, and from an Enhanced CT source', async (t) => {
  if (!pydicomAvailable(t)) return;
  makeDicomSeries(at('ct'), { data: DATA, shape: SHAPE, affine: AFFINE });
  const series = readDicomSeries(at('ct'));
  await writeDicomSeg(at('ours.seg.dcm'), series, MASK, LABELS, { softwareVersion: 'test' });
  const ours = segOnSeries(parseDicomSeg(at('ours.seg.dcm')), series);
  assert.deepEqual(ours.mask, MASK);
  assert.deepEqual(ours.segments, [{ number: 1, label: 'infection' }, { number: 2, label: 'effusion' }]);
  // Label 1 on slices 0-3 and label 2 on slices 1-4 (each slice holds some of its voxels): 8 frames.
  assert.deepEqual([ours.frames, ours.placedBySource, ours.placedByPosition, ours.overlapVoxels], [8, 8, 0, 0]);
  // pydicom's independent reading (check_seg.py) gives the same volume.
  checkSegWithPydicom(at('ours.seg.dcm'), at('ct'), at('pydicom.npy'));
  assert.deepEqual(Uint8Array.from(readNpy(at('pydicom.npy')).data as Uint8Array), MASK);

  assert.deepEqual(reorder(at('ours.seg.dcm'), at('reversed.seg.dcm')), [7, 6, 5, 4, 3, 2, 1, 0]);
  const reversed = segOnSeries(parseDicomSeg(at('reversed.seg.dcm')), series);
  assert.deepEqual(reversed.mask, MASK);
  assert.equal(reversed.placedBySource, 8);

  assert.deepEqual(reorder(at('ours.seg.dcm'), at('positions.seg.dcm'), '--order', 'interleave', '--positions-only', '--implicit'), [0, 2, 4, 6, 1, 3, 5, 7]);
  const byPosition = segOnSeries(parseDicomSeg(at('positions.seg.dcm')), series);
  assert.deepEqual(byPosition.mask, MASK);
  assert.deepEqual([byPosition.placedBySource, byPosition.placedByPosition], [0, 8]);

  // dcmjs's SEG: its frames run from the last slice to the first, each naming its source instance.
  writeSegWithDcmjs(at('ct'), series, at('dcmjs.seg.dcm'));
  const dcmjsSeg = parseDicomSeg(at('dcmjs.seg.dcm'));
  const firstFrameSlice = series.instances.findIndex((instance) => instance.sopInstanceUid === (dcmjsSeg.frames[0]!.DerivationImageSequence as { SourceImageSequence: { ReferencedSOPInstanceUID: string }[] }[])[0]!.SourceImageSequence[0]!.ReferencedSOPInstanceUID);
  assert.equal(firstFrameSlice, 3, "dcmjs's first frame is segment 1's last slice (3)");
  const byDcmjs = segOnSeries(dcmjsSeg, series);
  assert.deepEqual(byDcmjs.mask, MASK);
  assert.deepEqual([byDcmjs.frames, byDcmjs.placedBySource], [8, 8]);

  fs.mkdirSync(at('enhanced'));
  execFileSync(PYTHON, [path.join(DICOM_FIXTURES, 'make_enhanced_ct.py'), at('ct'), at('enhanced', 'ct.dcm')]);
  const enhanced = readDicomSeries(at('enhanced'));
  await writeDicomSeg(at('enhanced.seg.dcm'), enhanced, MASK, LABELS, { softwareVersion: 'test' });
  reorder(at('enhanced.seg.dcm'), at('enhanced-reversed.seg.dcm'));
  for (const file of ['enhanced.seg.dcm', 'enhanced-reversed.seg.dcm']) {
    const read = segOnSeries(parseDicomSeg(at(file)), enhanced);
    assert.deepEqual(read.mask, MASK, file);
    assert.equal(read.placedBySource, 8, file);
  }
});

test('a SEG on another series, a frame moved off its source image, and a CT image as a SEG are refused naming the file', async (t) => {
  if (!pydicomAvailable(t)) return;
  makeDicomSeries(at('a'), { data: DATA, shape: SHAPE, affine: AFFINE });
  // b: another series of the same acquisition (same frame of reference); c: another acquisition.
  makeDicomSeries(at('b'), { data: DATA, shape: SHAPE, affine: AFFINE, seriesNumber: 2 });
  makeDicomSeries(at('c'), { data: DATA, shape: SHAPE, affine: AFFINE, uidRoot: '1.2.826.0.1.3680043.8.498.7714' });
  const [a, b, c] = [readDicomSeries(at('a')), readDicomSeries(at('b')), readDicomSeries(at('c'))];
  await writeDicomSeg(at('a.seg.dcm'), a, MASK, LABELS, { softwareVersion: 'test' });
  const refusal = (code: string, pattern: RegExp) => (error: unknown) => error instanceof InputError && error.code === code && pattern.test(error.message) && error.message.includes('a.seg.dcm') || assert.fail(String(error));
  assert.equal(a.frameOfReferenceUid, b.frameOfReferenceUid);
  assert.throws(() => segOnSeries(parseDicomSeg(at('a.seg.dcm')), b), refusal('dicom-seg-mismatch', new RegExp(`references series ${a.seriesInstanceUid.replaceAll('.', '\\.')} \\(ReferencedSeriesSequence\\): it does not belong on series ${b.seriesInstanceUid.replaceAll('.', '\\.')} of`)));
  assert.throws(() => segOnSeries(parseDicomSeg(at('a.seg.dcm')), c), refusal('dicom-seg-mismatch', new RegExp(`has FrameOfReferenceUID ${a.frameOfReferenceUid.replaceAll('.', '\\.')}, the series ${c.frameOfReferenceUid.replaceAll('.', '\\.')}: it does not belong on series`)));

  fs.mkdirSync(at('moved'));
  fs.mkdirSync(at('ct-image'));
  // Frame 3's position moved 1 mm along the row direction; its source reference is unchanged.
  execFileSync(PYTHON, ['-c', `
import sys, pydicom
seg = pydicom.dcmread(sys.argv[1])
position = seg.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence[0]
row = [float(v) for v in seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient[:3]]
position.ImagePositionPatient = [f"{float(p) + r:.6f}" for p, r in zip(position.ImagePositionPatient, row)]
seg.save_as(sys.argv[2])
`, at('a.seg.dcm'), at('moved', 'a.seg.dcm')]);
  assert.throws(() => segOnSeries(parseDicomSeg(at('moved', 'a.seg.dcm')), a), refusal('dicom-seg-mismatch', /frame 3's ImagePositionPatient \[.*\] lies 1\.000 mm from its source image/));

  const ct = path.join(at('a'), fs.readdirSync(at('a'))[0]!);
  fs.copyFileSync(ct, at('ct-image', 'a.seg.dcm'));
  assert.throws(() => parseDicomSeg(at('ct-image', 'a.seg.dcm')), refusal('not-dicom', /is SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2, not a DICOM Segmentation/));
});
