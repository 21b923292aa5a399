/**
 * docs/seg-viewer.png: a DICOM SEG opened in the viewer that runs here, reading the SEG back.
 *
 *   node --import tsx scripts/screenshot-seg.ts [OUT.png]      (default docs/seg-viewer.png; about a minute)
 *
 * 1. the synthetic chest phantom (synth, covid lesions, size small: 64 x 128 x 128, seed 11) as a
 *    DICOM CT series, one file per slice, written by Debian's pydicom (test/fixtures/dicom/make_dicom_series.py);
 * 2. its ground truth as two DICOM SEGs through lesionseg's SEG writer: the infection (one segment),
 *    and the lungs outside it (segments left lung, right lung);
 * 3. `lesionseg view SERIES_FOLDER INFECTION.seg.dcm LUNGS.seg.dcm --out page.html`, which reads each
 *    SEG back frame by frame from its Per-frame Functional Groups onto the series (src/cli/view-dicom.ts);
 * 4. the page in headless Chromium (the test harness of src/report/test-support.ts), which must be
 *    drawn without a console error, and its screenshot, checked to be under 200 KB.
 * Needs python3-pydicom, dcm2niix and chromium (scripts/setup.sh). A development script: it borrows
 * the test helpers that write DICOM series and drive Chromium, as the tests do.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePhantom } from '../src/synth/index.js';
import { readDicomSeries, writeDicomSeg } from '../src/io/index.js';
import { makeDicomSeries } from '../src/io/test-support.js';
import { PipeBrowser } from '../src/report/test-support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? path.join(ROOT, 'docs', 'seg-viewer.png'));
const MAX_BYTES = 200 * 1024;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-screenshot-'));
try {
  const phantom = generatePhantom('covid', { seed: 11, size: 'small' });
  const { shape, affine } = phantom.image;
  makeDicomSeries(path.join(work, 'chest-ct'), { data: phantom.image.data, shape, affine, description: 'phantom chest CT', seriesNumber: 3 });
  const series = readDicomSeries(path.join(work, 'chest-ct'));
  const infection = Uint8Array.from(phantom.label.data, (lesion) => (lesion !== 0 ? 1 : 0));
  const lungs = Uint8Array.from(phantom.lungs.data, (lung, i) => (phantom.label.data[i] !== 0 ? 0 : lung));
  const segs = [path.join(work, 'chest-ct-infection.seg.dcm'), path.join(work, 'chest-ct-lungs.seg.dcm')];
  const written = [
    await writeDicomSeg(segs[0]!, series, infection, [{ value: 1, name: 'infection' }], { softwareVersion: 'screenshot-seg' }),
    await writeDicomSeg(segs[1]!, series, lungs, [{ value: 1, name: 'left lung' }, { value: 2, name: 'right lung' }], { softwareVersion: 'screenshot-seg' }),
  ];
  const page = path.join(work, 'page.html');
  execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'main.ts'), 'view', path.join(work, 'chest-ct'), ...segs, '--out', page], { cwd: ROOT, stdio: 'inherit' });

  const browser = await PipeBrowser.launch({ width: 860, height: 540 });
  try {
    await browser.open(page);
    const state = await browser.waitFor<string>(`document.body && document.body.getAttribute('data-viewer') !== 'loading' && document.body.getAttribute('data-viewer')`, 120_000);
    const errors = browser.messages.filter((m) => m.kind === 'console.error' || m.kind === 'exception' || m.kind === 'log:error');
    if (state !== 'ready' || errors.length > 0) throw new Error(`the page did not load cleanly (${state}): ${JSON.stringify(browser.messages)}`);
    const png = await browser.screenshot();
    if (png.length > MAX_BYTES) throw new Error(`the screenshot is ${png.length} bytes, over ${MAX_BYTES}`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, png);
    process.stdout.write(`screenshot-seg: ${out} (${(png.length / 1024).toFixed(0)} KB); SEGs of ${written.map((w) => `${w.frames} frames (${w.segments} segment${w.segments > 1 ? 's' : ''})`).join(' and ')} on ${series.shape.join('x')} (slices x rows x columns)\n`);
  } finally {
    await browser.close();
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
