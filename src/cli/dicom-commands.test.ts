/**
 * `predict` on DICOM, as a user runs it: a CT series that Debian's python3-pydicom writes from the
 * infer phantom (oblique orientation) goes through predict with the tiny fixture U-Net; the mask's
 * affine equals the phantom's, the SEG's frames land on the source instances and hold the NIfTI
 * mask, and a folder of two series is listed and refused (exit 2) without --series. The same
 * series re-encoded by dcmtk (JPEG-LS, lossy JPEG baseline) gives the uncompressed series' mask;
 * so does the series as one Enhanced CT file (its SEG, read by pydicom, references the source frames
 * by number and holds the mask); a truncated
 * compressed file is refused naming it (exit 2), before the model is loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNifti, readNpy } from '../io/index.js';
import { checkSegWithPydicom, dcm2niixAvailable, decodersAvailable, DICOM_FIXTURES, makeDicomSeries, PYTHON, pydicomAvailable } from '../io/test-support.js';
import { FIXTURES, TINY_CONFIG, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { lesionseg } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-dicom-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

const ready = (async () => {
  const model = fixtureUNet();
  writeTestCheckpoint(at('run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  const phantom = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  return { phantom, data: Int16Array.from(phantom.data as Int16Array) };
})();

test('predict -i DICOM_SERIES: the mask has the phantom geometry, the SEG lands on the source instances', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { phantom, data } = await ready;
  makeDicomSeries(at('ct'), { data, shape: phantom.shape, affine: phantom.affine });
  const run = await lesionseg('predict', '-m', at('run'), '-i', at('ct'), '-o', at('out'), '--output-type', 'nifti,dicom-seg', '--json');
  assert.equal(run.code, 0, run.stderr);
  const record = (JSON.parse(run.stdout) as { cases: { output: string; dicomSeg: string; dicom: { geometryDifferenceMm: number } }[] }).cases[0]!;
  assert.equal(record.output, at('out', 'ct.nii.gz'));
  assert.equal(record.dicomSeg, at('out', 'ct.seg.dcm'));
  const mask = await readNifti(record.output);
  const difference = Math.max(...mask.affine.flatMap((row, r) => row.map((value, c) => Math.abs(value - phantom.affine[r]![c]!))));
  t.diagnostic(`mask affine vs phantom: ${difference.toExponential(2)} mm; dcm2niix's grid vs the DICOM tags: ${record.dicom.geometryDifferenceMm.toExponential(2)} mm`);
  assert.ok(difference < 1e-4, `affine differs by ${difference} mm`);
  assert.deepEqual(mask.shape, phantom.shape);

  const check = checkSegWithPydicom(record.dicomSeg, at('ct'), at('seg.npy'));
  assert.equal(check.misplacedFrames, 0);
  assert.deepEqual(check.segments.map((s) => s.label), ['lesion', 'effusion']);
  // Segment numbers are the label values here (1 lesion, 2 effusion): the SEG holds the NIfTI mask voxel for voxel.
  assert.deepEqual(Uint8Array.from(readNpy(at('seg.npy')).data as Uint8Array), Uint8Array.from(mask.data as Uint8Array));
  assert.deepEqual(fs.readdirSync(at('ct')).filter((name) => !name.endsWith('.dcm')), [], 'nothing written into the DICOM folder');
});

test('predict on a folder of two series lists them and exits 2; --series picks one; dicom-seg needs DICOM input', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { phantom, data } = await ready;
  const first = makeDicomSeries(at('two'), { data, shape: phantom.shape, affine: phantom.affine, seriesNumber: 4, description: 'lung' });
  const second = makeDicomSeries(at('two'), { data, shape: phantom.shape, affine: phantom.affine, seriesNumber: 5, description: 'mediastinum' });
  const run = await lesionseg('predict', '-m', at('run'), '-i', at('two'), '-o', at('out-two'));
  assert.equal(run.code, 2, run.stderr);
  assert.doesNotMatch(run.stderr, /^\s+at /m);
  assert.match(run.stderr, new RegExp(`holds 2 DICOM series; choose one with --series UID: ${first.replaceAll('.', '\\.')} \\(series 4, "lung", CT, 11 instances\\); ${second.replaceAll('.', '\\.')} \\(series 5, "mediastinum", CT, 11 instances\\)`));
  assert.equal(fs.existsSync(at('out-two')), false);
  const picked = await lesionseg('predict', '-m', at('run'), '-i', at('two'), '-o', at('picked.dcm'), '--series', second, '--output-type', 'dicom-seg');
  assert.equal(picked.code, 0, picked.stderr);
  assert.equal(fs.existsSync(at('picked.dcm')), true);
  assert.equal(fs.existsSync(at('picked.nii.gz')), false);
  // Two --series runs on one folder into one -o: one file per series, named by SeriesNumber (nothing replaced).
  for (const uid of [first, second]) {
    const bySeries = await lesionseg('predict', '-m', at('run'), '-i', at('two'), '-o', at('by-series'), '--series', uid, '--output-type', 'nifti,dicom-seg');
    assert.equal(bySeries.code, 0, bySeries.stderr);
  }
  assert.deepEqual(fs.readdirSync(at('by-series')).sort(), ['two_series4.nii.gz', 'two_series4.seg.dcm', 'two_series5.nii.gz', 'two_series5.seg.dcm']);
  for (const [number, uid] of [[4, first], [5, second]] as const) {
    assert.equal(checkSegWithPydicom(at('by-series', `two_series${number}.seg.dcm`), at('two'), at(`by-series-${number}.npy`)).referencedSeries, uid);
  }
  const nifti = await lesionseg('predict', '-m', at('run'), '-i', path.join(FIXTURES, 'phantom.nii.gz'), '-o', at('x.nii.gz'), '--output-type', 'dicom-seg');
  assert.equal(nifti.code, 2);
  assert.match(nifti.stderr, /--output-type dicom-seg needs a DICOM series as -i/);
  const inside = await lesionseg('predict', '-m', at('run'), '-i', at('two'), '-o', at('two', 'masks'), '--series', first);
  assert.equal(inside.code, 2);
  assert.match(inside.stderr, /-o lies inside the DICOM input folder/);
  // A folder of .dcm files none of which is DICOM is refused by the DICOM reader, naming the folder.
  fs.mkdirSync(at('not-dicom'));
  fs.writeFileSync(at('not-dicom', 'a.dcm'), Buffer.alloc(300, 7));
  const junk = await lesionseg('predict', '-m', at('run'), '-i', at('not-dicom'), '-o', at('out-junk'));
  assert.equal(junk.code, 2, junk.stderr);
  assert.match(junk.stderr, /not-dicom: holds no DICOM files \(none has the DICM preamble\)/);
  assert.doesNotMatch(junk.stderr, /^\s+at /m);
  assert.equal(fs.existsSync(at('out-junk')), false);
});

/** `folder`'s files re-encoded with `tool args IN OUT` (dcmtk) into `out`. */
function encode(folder: string, out: string, tool: string, args: string[]): void {
  fs.mkdirSync(out, { recursive: true });
  for (const name of fs.readdirSync(folder)) execFileSync(tool, [...args, path.join(folder, name), path.join(out, name)]);
}

test("predict on JPEG-LS gives the uncompressed series' mask, on 12-bit lossy JPEG the mask of dcmdjpeg's decoded copy, on Enhanced CT the single-frame series' mask and a SEG referencing its frames; a truncated file exits 2 naming it", async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t) || !decodersAvailable(t)) return;
  const { phantom, data } = await ready;
  makeDicomSeries(at('plain'), { data, shape: phantom.shape, affine: phantom.affine });
  encode(at('plain'), at('jpeg-ls'), 'dcmcjpls', []);
  encode(at('plain'), at('extended'), 'dcmcjpeg', ['+ee', '+q', '50']);
  encode(at('extended'), at('extended-decoded'), 'dcmdjpeg', []);
  // The tiny fixture network is untrained: masks are compared where the HU are the same, voxel for voxel.
  for (const [name, reference] of [['jpeg-ls', 'plain'], ['extended', 'extended-decoded']] as const) {
    const masks = [];
    for (const folder of [name, reference]) {
      const run = await lesionseg('predict', '-m', at('run'), '-i', at(folder), '-o', at(`${folder}.nii.gz`));
      assert.equal(run.code, 0, run.stderr);
      masks.push(Uint8Array.from((await readNifti(at(`${folder}.nii.gz`))).data as Uint8Array));
    }
    assert.deepEqual(masks[0], masks[1], name);
  }
  // The same series as one Enhanced CT file: the same HU on the same grid, so the same mask; its SEG references the source frames by number.
  fs.mkdirSync(at('enhanced'));
  execFileSync(PYTHON, [path.join(DICOM_FIXTURES, 'make_enhanced_ct.py'), at('plain'), at('enhanced', 'ct.dcm')]);
  const enhanced = await lesionseg('predict', '-m', at('run'), '-i', at('enhanced'), '-o', at('enhanced.nii.gz'), '--output-type', 'nifti,dicom-seg');
  assert.equal(enhanced.code, 0, enhanced.stderr);
  const enhancedMask = Uint8Array.from((await readNifti(at('enhanced.nii.gz'))).data as Uint8Array);
  assert.deepEqual(enhancedMask, Uint8Array.from((await readNifti(at('plain.nii.gz'))).data as Uint8Array));
  const enhancedSeg = checkSegWithPydicom(at('enhanced.seg.dcm'), at('enhanced'), at('enhanced-seg.npy'));
  assert.equal(enhancedSeg.referencedInstances.length, 1);
  assert.ok(enhancedSeg.referencedFrameNumbers.every((frame) => frame !== null), 'every frame names its source frame');
  assert.equal(enhancedSeg.misplacedFrames, 0);
  assert.deepEqual(Uint8Array.from(readNpy(at('enhanced-seg.npy')).data as Uint8Array), enhancedMask);
  const last = at('jpeg-ls', 's01_0011.dcm');
  fs.truncateSync(last, fs.statSync(last).size - 64);
  const cut = await lesionseg('predict', '-m', at('missing-model'), '-i', at('jpeg-ls'), '-o', at('cut.nii.gz'));
  assert.equal(cut.code, 2, cut.stderr);
  assert.match(cut.stderr, new RegExp(`${last.replaceAll('.', '\\.')}: the file ends inside its JPEG-LS lossless PixelData`));
  assert.doesNotMatch(cut.stderr, /lesionseg-dicom-|^\s+at /m);
  assert.equal(fs.existsSync(at('cut.nii.gz')), false);
});
