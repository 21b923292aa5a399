/**
 * `lesionseg view SERIES_FOLDER FILE.seg.dcm --out PAGE.html` as a user runs it, on a small chest
 * phantom written as a DICOM series by pydicom and a two-segment SEG of a known mask written by
 * lesionseg's SEG writer: the mask the page carries (decoded from the page's own data block) equals
 * the mask written, voxel for voxel, also for the SEG rewritten by pydicom with its frames in
 * reverse order and in implicit VR, shown on the same page; the page loads in headless Chromium (src/report/test-support.ts) with no console
 * error. A SEG shown on another acquisition's series, and a SEG given with a NIfTI CT, are refused
 * with one line and exit 2, writing nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Affine, Shape3 } from '../core/index.js';
import { readDicomSeries, readNifti, writeDicomSeg } from '../io/index.js';
import { dcm2niixAvailable, DICOM_FIXTURES, makeDicomSeries, pydicomAvailable, PYTHON } from '../io/test-support.js';
import { CHROMIUM, PipeBrowser } from '../report/test-support.js';
import { lesionseg, type Run } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-view-dicom-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

const SHAPE: Shape3 = [12, 40, 48];
const AFFINE: Affine = [[-1.2, 0, 0, 30], [0, -1.2, 0, 25], [0, 0, 3, -20], [0, 0, 0, 1]];

/** Body 40 HU, two lungs -850 HU; mask: 1 a lesion in the patient's left lung (slices 3-7), 2 the right lung outside it. */
function phantom(): { ct: Int16Array; mask: Uint8Array } {
  const [nz, ny, nx] = SHAPE;
  const ct = new Int16Array(nz * ny * nx).fill(-1000);
  const mask = new Uint8Array(ct.length);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = (z * ny + y) * nx + x;
        if (((x - 24) / 22) ** 2 + ((y - 20) / 17) ** 2 <= 1) ct[i] = 40;
        const inLung = (cx: number) => ((x - cx) / 8) ** 2 + ((y - 20) / 11) ** 2 <= 1 && z > 0 && z < nz - 1;
        if (inLung(33) || inLung(15)) ct[i] = -850;
        if (inLung(15)) mask[i] = 2;
        if (((x - 33) / 4) ** 2 + ((y - 18) / 4) ** 2 + ((z - 5) / 2) ** 2 <= 1) [ct[i], mask[i]] = [-300, 1];
      }
    }
  }
  return { ct, mask };
}

/** Mask `index` the page carries, decoded from its data block (base64 NIfTI) and read by lesionseg's NIfTI reader. */
async function pageMask(page: string, index: number): Promise<Uint8Array> {
  const html = fs.readFileSync(page, 'utf8');
  const json = /<script type="application\/json" id="lesionseg-data">(.*?)<\/script>/s.exec(html)![1]!;
  const data = JSON.parse(json) as { masks: { base64: string }[] };
  const file = at(`page-mask-${index}.nii.gz`);
  fs.writeFileSync(file, Buffer.from(data.masks[index]!.base64, 'base64'));
  return Uint8Array.from((await readNifti(file)).data as Uint8Array);
}

function refused(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 2, `exit ${run.code}\n${run.stderr}`);
  assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack frames');
  assert.match(run.stderr, pattern);
}

test('view SERIES SEG: the page carries the written mask voxel-exact (also from a SEG with reversed frames) and loads in Chromium without console errors; a SEG of another acquisition or with a NIfTI CT exits 2', { timeout: 240_000 }, async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { ct, mask } = phantom();
  makeDicomSeries(at('chest'), { data: ct, shape: SHAPE, affine: AFFINE, description: 'phantom' });
  const series = readDicomSeries(at('chest'));
  await writeDicomSeg(at('chest.seg.dcm'), series, mask, [{ value: 1, name: 'infection' }, { value: 2, name: 'right lung' }], { softwareVersion: 'test' });
  // The same SEG as another tool might write it: pydicom, frames last to first, implicit VR.
  execFileSync(PYTHON, [path.join(DICOM_FIXTURES, 'reorder_seg_frames.py'), at('chest.seg.dcm'), at('reversed.seg.dcm'), '--implicit']);

  // Both SEGs on one page: each carries the written mask.
  const run = await lesionseg('view', at('chest'), at('chest.seg.dcm'), at('reversed.seg.dcm'), '--out', at('page.html'));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^view: .*page\.html \(\d+\.\d MiB\)$/m);
  assert.deepEqual(await pageMask(at('page.html'), 0), mask);
  assert.deepEqual(await pageMask(at('page.html'), 1), mask);
  const html = fs.readFileSync(at('page.html'), 'utf8');
  assert.match(html, /chest\.seg\.dcm: \d+ frames of 2 segments read back from the SEG's Per-frame Functional Groups and placed on the series' slices \(\d+ by their source image references\)/);
  // The legend names the SEG's segments (SegmentLabel) in segment order.
  assert.match(html, /><\/span>infection <span class="swatch" style="[^"]*"><\/span>right lung /);

  // Another acquisition (its own frame of reference) of the same phantom: refused before anything is converted or written.
  makeDicomSeries(at('other'), { data: ct, shape: SHAPE, affine: AFFINE, uidRoot: '1.2.826.0.1.3680043.8.498.7715' });
  refused(await lesionseg('view', at('other'), at('chest.seg.dcm'), '--out', at('other.html')), /chest\.seg\.dcm: has FrameOfReferenceUID [\d.]+, the series [\d.]+: it does not belong on series [\d.]+ of .*other/);
  assert.equal(fs.existsSync(at('other.html')), false);
  fs.writeFileSync(at('ct.nii.gz'), '');
  refused(await lesionseg('view', at('ct.nii.gz'), at('chest.seg.dcm'), '--out', at('nifti.html')), /chest\.seg\.dcm: is a DICOM file: a DICOM SEG is shown on its source series, so give the series' DICOM folder as the image/);

  if (!fs.existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') assert.fail(`${CHROMIUM} is missing (Debian package: chromium; scripts/setup.sh)`);
    t.skip(`${CHROMIUM} is missing`);
    return;
  }
  const browser = await PipeBrowser.launch({ width: 1000, height: 640 });
  try {
    await browser.open(at('page.html'));
    const state = await browser.waitFor<string>(`document.body && document.body.getAttribute('data-viewer') !== 'loading' && document.body.getAttribute('data-viewer')`, 120_000);
    assert.equal(state, 'ready', JSON.stringify(browser.messages));
    const errors = browser.messages.filter((m) => m.kind === 'console.error' || m.kind === 'exception' || m.kind === 'log:error');
    assert.deepEqual(errors, [], 'no console errors, exceptions or failed loads');
    // The crosshair starts at the lesion (the SEG's first segment): its world z is slice 5's, within a slice.
    const crosshair = JSON.parse(await browser.evaluate<string>(`document.body.getAttribute('data-crosshair-mm')`)) as number[];
    assert.ok(Math.abs(crosshair[2]! - (AFFINE[2][2] * 5 + AFFINE[2][3])) <= 3, `crosshair ${crosshair}`);
  } finally {
    await browser.close();
  }
});
