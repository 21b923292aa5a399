/**
 * The viewer page on a small chest phantom (body 40 HU, lungs -850 HU, a -300 HU lesion in the left
 * lung only on slices 12-16): the page is self-contained (no URL to fetch, NiiVue inlined, size
 * bounded), and in headless Chromium (DevTools over a pipe, WebGL on SwiftShader) it loads without
 * console errors, exceptions or failed loads, puts the crosshair on the lesion's slice, and its
 * screenshot shows the overlay red at the lesion inside the lung, the lung dark grey beside it and
 * the soft tissue light grey, checked on the decoded PNG's pixels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Affine, Shape3 } from '../core/index.js';
import { writeNifti } from '../io/index.js';
import { severitySummary } from '../eval/index.js';
import { decodePng } from './png.js';
import { viewerHtml } from './viewer.js';
import { CHROMIUM, PipeBrowser } from './test-support.js';

const SHAPE: Shape3 = [24, 64, 64];
const SPACING: Shape3 = [2.5, 1.5, 1.5];
/** x and y flipped, as a CT converted from DICOM (LPS) usually is. */
const AFFINE: Affine = [
  [-1.5, 0, 0, 48],
  [0, -1.5, 0, 48],
  [0, 0, 2.5, -30],
  [0, 0, 0, 1],
];
const LESION_CENTRE: [number, number, number] = [44, 30, 14];

function worldMm([i, j, k]: readonly number[]): [number, number, number] {
  return [0, 1, 2].map((r) => AFFINE[r]![0] * i! + AFFINE[r]![1] * j! + AFFINE[r]![2] * k! + AFFINE[r]![3]) as [number, number, number];
}

async function phantom(dir: string): Promise<{ ct: string; lesion: string; lungs: string; lesionMask: Uint8Array; lungLabels: Uint8Array }> {
  const [nz, ny, nx] = SHAPE;
  const ct = new Int16Array(nz * ny * nx).fill(-1000);
  const lungs = new Uint8Array(ct.length);
  const lesion = new Uint8Array(ct.length);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = (z * ny + y) * nx + x;
        if (((x - 32) / 28) ** 2 + ((y - 32) / 22) ** 2 <= 1) ct[i] = 40;
        const inLung = (cx: number) => ((x - cx) / 9) ** 2 + ((y - 32) / 14) ** 2 + ((z - 12) / 11) ** 2 <= 1;
        // Voxel x 44 lies at world x -18 mm (patient left, RAS+): the left lung is label 1.
        if (inLung(44)) [ct[i], lungs[i]] = [-850, 1];
        if (inLung(20)) [ct[i], lungs[i]] = [-850, 2];
        const [cx, cy, cz] = LESION_CENTRE;
        if (((x - cx) / 4) ** 2 + ((y - cy) / 4) ** 2 + ((z - cz) / 2.5) ** 2 <= 1) [ct[i], lesion[i]] = [-300, 1];
      }
    }
  }
  const volume = (data: Int16Array | Uint8Array) => ({ data, shape: SHAPE, spacing: SPACING, affine: AFFINE });
  const files = { ct: path.join(dir, 'ct.nii.gz'), lesion: path.join(dir, 'lesion.nii.gz'), lungs: path.join(dir, 'lungs.nii.gz') };
  await writeNifti(files.ct, volume(ct));
  await writeNifti(files.lesion, volume(lesion), { datatype: 'uint8' });
  await writeNifti(files.lungs, volume(lungs), { datatype: 'uint8' });
  return { ...files, lesionMask: lesion, lungLabels: lungs };
}

async function writePage(dir: string): Promise<{ page: string; html: string }> {
  const files = await phantom(dir);
  const summary = severitySummary({ infection: files.lesionMask, voxelMl: (1.5 * 1.5 * 2.5) / 1000, lungs: { labels: files.lungLabels, source: 'lungs.nii.gz' } });
  const html = viewerHtml({
    title: 'phantom',
    image: { name: 'ct.nii.gz', bytes: fs.readFileSync(files.ct) },
    masks: [
      { name: 'lesion.nii.gz', bytes: fs.readFileSync(files.lesion), labels: [{ value: 1, name: 'infection' }], opacity: 0.8 },
      { name: 'lungs.nii.gz', bytes: fs.readFileSync(files.lungs), labels: [{ value: 1, name: 'left lung' }, { value: 2, name: 'right lung' }], opacity: 0.15 },
    ],
    summary,
    startMm: worldMm(LESION_CENTRE),
  });
  const page = path.join(dir, 'phantom.html');
  fs.writeFileSync(page, html);
  return { page, html };
}

test('the page is self-contained: NiiVue and both masks inline, nothing to fetch, the summary beside the viewer', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-viewer-'));
  try {
    const { html } = await writePage(dir);
    assert.doesNotMatch(html, /(src|href)=["'](https?:)?\/\//, 'no external script, style or link');
    assert.doesNotMatch(html, /<script[^>]+src=/, 'every script inline');
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/, 'the page may not load anything from anywhere');
    assert.match(html, /NIIVUE VERSION|niivue/);
    assert.match(html, /Infection volume<\/th><td>[0-9.]+ mL/);
    assert.match(html, /Left lung<\/th><td>\d+ mL, [0-9.]+% involved/);
    // NiiVue's UMD bundle is ~2.2 MB; the phantom adds a few kB. The page must stay well under 4 MB.
    assert.ok(html.length < 4 * 2 ** 20, `page is ${html.length} bytes`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

interface Rgb {
  r: number;
  g: number;
  b: number;
}

test('in headless Chromium: no console errors, crosshair on the lesion slice, overlay red inside the lung in the screenshot', { skip: fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (Debian package: chromium); skipping the browser check`, timeout: 180_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-viewer-'));
  const browser = await PipeBrowser.launch({ width: 1200, height: 800 });
  try {
    const { page } = await writePage(dir);
    await browser.open(page);
    const state = await browser.waitFor<string>(`document.body && document.body.getAttribute('data-viewer') !== 'loading' && document.body.getAttribute('data-viewer')`, 120_000);
    assert.equal(state, 'ready', JSON.stringify(browser.messages));
    const errors = browser.messages.filter((m) => m.kind === 'console.error' || m.kind === 'exception' || m.kind === 'log:error');
    assert.deepEqual(errors, [], 'no console errors, exceptions or failed loads');
    assert.equal(await browser.evaluate<string | null>(`document.body.getAttribute('data-errors')`), null);

    // The crosshair is at the lesion centre: its world z is slice 14's.
    const crosshair = JSON.parse(await browser.evaluate<string>(`document.body.getAttribute('data-crosshair-mm')`)) as number[];
    const centre = worldMm(LESION_CENTRE);
    for (let axis = 0; axis < 3; axis++) assert.ok(Math.abs(crosshair[axis]! - centre[axis]!) <= 1.5, `crosshair ${crosshair} vs lesion centre ${centre}`);

    // Page positions (CSS px) of world points in the axial tile.
    const at = async (voxel: readonly number[]): Promise<[number, number]> => {
      const mm = worldMm(voxel);
      const position = await browser.evaluate<number[] | null>(`(function () {
        var nv = window.lesionsegViewer; var hit = nv.frac2canvasPosWithTile(nv.mm2frac([${mm.join(',')}]), 0);
        if (!hit || nv.screenSlices[hit.tileIndex].axCorSag !== 0) return null;
        var box = nv.gl.canvas.getBoundingClientRect(); var scale = nv.gl.canvas.width / box.width;
        return [box.left + hit.pos[0] / scale, box.top + hit.pos[1] / scale];
      })()`);
      assert.ok(position !== null, `voxel ${voxel} is not in the axial tile`);
      return [Math.round(position[0]!), Math.round(position[1]!)];
    };
    // Off the crosshair lines, which run through the lesion centre.
    const lesionPx = await at([45, 31, 14]);
    const lungPx = await at([47, 41, 14]); // left lung, 11 voxels from the lesion centre, outside it
    const tissuePx = await at([32, 50, 14]); // between the lungs: soft tissue
    const png = await browser.screenshot();
    const shot = path.join(os.tmpdir(), 'lesionseg-viewer-screenshot.png');
    fs.writeFileSync(shot, png);
    t.diagnostic(`screenshot: ${shot}`);
    const image = decodePng(png);
    assert.deepEqual([image.width, image.height], [1200, 800]);
    const pixel = ([x, y]: [number, number]): Rgb => {
      const i = 4 * (y * image.width + x);
      return { r: image.rgba[i]!, g: image.rgba[i + 1]!, b: image.rgba[i + 2]! };
    };
    const lesion = pixel(lesionPx);
    const lung = pixel(lungPx);
    const tissue = pixel(tissuePx);
    t.diagnostic(`lesion ${JSON.stringify(lesion)} at ${lesionPx}, lung ${JSON.stringify(lung)} at ${lungPx}, tissue ${JSON.stringify(tissue)} at ${tissuePx}`);
    // Red at opacity 0.8 over -300 HU (grey 179 in the window): about (240, 68, 68).
    assert.ok(lesion.r > 180 && lesion.r - lesion.g > 80 && lesion.r - lesion.b > 80, `lesion pixel ${JSON.stringify(lesion)} is not the overlay red`);
    // Lung at -850 HU is grey 85, tinted cyan by the lung overlay at 0.15: dark, not red.
    assert.ok(Math.max(lung.r, lung.g, lung.b) < 150 && lung.r < lung.b, `lung pixel ${JSON.stringify(lung)} is not dark lung`);
    // Soft tissue at 40 HU is grey 236 with no overlay.
    assert.ok(Math.min(tissue.r, tissue.g, tissue.b) > 200 && Math.abs(tissue.r - tissue.b) < 12, `tissue pixel ${JSON.stringify(tissue)} is not light grey`);
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
