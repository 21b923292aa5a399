/**
 * DICOM tags that decide the voxels, on series pydicom writes (make_dicom_series.py) and then
 * edits one instance of (pydicom, or bytes cut): each misdescribed instance is refused from its
 * header, naming the file and the tag, before dcm2niix runs; the decoded size is known from the
 * headers (11 slices x 18 x 21 x 2 bytes for the int16 phantom), so `predict --max-image-gib` refuses
 * a series before conversion and before the model is even looked for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../core/index.js';
import { readDicomSeries } from './series.js';
import { checkDicomImageSize } from './voxels.js';
import { readNifti } from '../nifti/read.js';
import { makeDicomSeries, pydicomAvailable, PYTHON } from '../test-support.js';
import { lesionseg } from '../../cli/test-support.js';

const PHANTOM = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/infer/phantom.nii.gz');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-voxels-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const phantom = readNifti(PHANTOM).then((image) => ({ image, data: Int16Array.from(image.data as Int16Array) }));

/** Python statements run on `ds` (pydicom's reading of `file`), then saved back. */
const EDITS = {
  'no-intercept': 'del ds.RescaleIntercept',
  'slope-zero': 'ds.RescaleSlope = "0"',
  'slope-nan': 'ds.add(DataElement(0x00281053, "DS", "NaN"))',
  'secondary-capture': 'ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"; ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID',
  'bits-8': 'ds.BitsAllocated = 8; ds.BitsStored = 8; ds.HighBit = 7',
  'short-pixels': 'ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]',
} as const;

/** The phantom series, written once by pydicom; each test edits a copy. */
let source: string | null = null;

async function seriesWith(name: string, edit: keyof typeof EDITS | null): Promise<{ dir: string; edited: string }> {
  if (source === null) {
    const { image, data } = await phantom;
    source = path.join(tmp, 'source');
    makeDicomSeries(source, { data, shape: image.shape, affine: image.affine });
  }
  const dir = path.join(tmp, name);
  fs.cpSync(source, dir, { recursive: true });
  const edited = path.join(dir, 's01_0004.dcm');
  if (edit !== null) {
    const code = `import sys, warnings; warnings.simplefilter("ignore"); import pydicom; from pydicom.dataelem import DataElement; ds = pydicom.dcmread(sys.argv[1]); ${EDITS[edit]}; ds.save_as(sys.argv[1])`;
    execFileSync(PYTHON, ['-c', code, edited]);
  }
  return { dir, edited };
}

function refusedWith(work: () => unknown, file: string, code: string, pattern: RegExp): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.startsWith(`${file}: `), error.message);
    assert.match(error.message, pattern);
    assert.equal(error.message.includes('\n'), false);
    return true;
  });
}

test('voxel tags: missing intercept, slope 0 or NaN, a non-CT SOP class, BitsAllocated or PixelData that disagree', async (t) => {
  if (!pydicomAvailable(t)) return;
  const cases: [keyof typeof EDITS, string, RegExp][] = [
    ['no-intercept', 'dicom-missing-tag', /has no RescaleIntercept \(0028,1052\), which a CT image must have/],
    ['slope-zero', 'dicom-bad-tag', /RescaleSlope \(0028,1053\) is 0/],
    ['slope-nan', 'dicom-malformed', /RescaleSlope \(0028,1053\) holds "NaN", not a decimal string/],
    ['secondary-capture', 'dicom-not-ct', /SOPClassUID \(0008,0016\) is 1\.2\.840\.10008\.5\.1\.4\.1\.1\.7, not CT Image Storage/],
    ['bits-8', 'dicom-bad-pixel-data', /PixelData \(7FE0,0010\) holds 756 bytes, but .* = 18 x 21 x 8\/8 = 378/],
    ['short-pixels', 'dicom-bad-pixel-data', /PixelData \(7FE0,0010\) holds 378 bytes, but .* = 18 x 21 x 16\/8 = 756/],
  ];
  for (const [edit, code, pattern] of cases) {
    const { dir, edited } = await seriesWith(edit, edit);
    refusedWith(() => readDicomSeries(dir), edited, code, pattern);
  }
});

test('a truncated last slice is refused naming its file, not dropped', async (t) => {
  if (!pydicomAvailable(t)) return;
  const { dir } = await seriesWith('truncated', null);
  const last = path.join(dir, 's01_0011.dcm');
  const bytes = fs.readFileSync(last);
  fs.writeFileSync(last, bytes.subarray(0, bytes.length - 100));
  refusedWith(() => readDicomSeries(dir), last, 'dicom-truncated', /the file ends inside PixelData \(7FE0,0010\): 656 of its 756 bytes are there/);
});

test('--max-image-gib is checked from the headers: before conversion and before the model is looked for', async (t) => {
  if (!pydicomAvailable(t)) return;
  const { dir } = await seriesWith('size', null);
  const series = readDicomSeries(dir);
  assert.equal(series.decodedBytes, 11 * 18 * 21 * 2);
  checkDicomImageSize(series, series.decodedBytes);
  refusedWith(() => checkDicomImageSize(series, series.decodedBytes - 1), dir, 'too-large', /11 x 18 x 21 voxels decode to 8316 bytes, over the limit of 8315 bytes per image/);
  const run = await lesionseg('predict', '-i', dir, '-o', path.join(tmp, 'out'), '-m', path.join(tmp, 'no-such-model'), '--max-image-gib', '0.000001');
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /^lesionseg: .*size: series [\d.]+: 11 x 18 x 21 voxels decode to 8316 bytes, over the limit of 1074 bytes per image \(predict --max-image-gib raises it\)$/m);
});
