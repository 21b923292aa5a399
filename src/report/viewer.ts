/**
 * The single-case viewer page (`lesionseg view`, `predict --view`, and the study report's overlay
 * cases): one self-contained HTML file that opens offline from file:// with no server. NiiVue's UMD
 * bundle (npm @niivue/niivue, dist/niivue.umd.js) is inlined as a classic script, the volumes are
 * inlined as base64 NIfTI files (NiiVue decodes them), and a small script of ours builds the scene:
 * the CT in a lung window (W 1500 / L -600 HU, as the report's figures), each mask as a label
 * overlay in its own colours with an opacity slider, NiiVue's multiplanar layout (axial, coronal,
 * sagittal) with the 3D render, the crosshair on the slice with the most mask, and the summary
 * numbers of `predict --summary` beside it.
 *
 * The page marks its state on <body> for tests and scripts: data-viewer="ready" once drawn (or
 * "error"), data-errors with every error caught, data-crosshair-mm (world mm), data-focus (the
 * crosshair's page position, CSS px, in the axial tile) and data-tiles (NiiVue's tiles, canvas px). Renders only: it never parses NIfTI
 * (the caller hands in the file bytes) and imports eval's summary type only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/index.js';
import type { SeveritySummary } from '../eval/index.js';
import { escapeXml } from './charts.js';
import { LUNG_WINDOW_HU } from './overlay.js';

/** A NIfTI file's bytes (.nii or .nii.gz as stored) and the name shown for it. */
export interface ViewerVolume {
  name: string;
  bytes: Uint8Array;
}

export interface ViewerMask extends ViewerVolume {
  /** Label value -> name (dataset.json's labels, or just 1 -> the file name), with a colour (default: by name, else by order). */
  labels: { value: number; name: string; rgb?: readonly [number, number, number] }[];
  /** Opacity at start, 0..1 (default 0.5). */
  opacity?: number;
}

export interface ViewerPage {
  title: string;
  image: ViewerVolume;
  masks: ViewerMask[];
  /** `predict --summary` numbers of this case, shown beside the viewer. */
  summary?: SeveritySummary | null;
  /** Lines shown under the viewer, e.g. that the CT was downsampled for the page. */
  notes?: string[];
  /** Crosshair start in world (RAS+) mm, e.g. the busiest slice of the first mask; default: NiiVue's (the middle). */
  startMm?: [number, number, number];
  /** Window in HU (default the lung window, W 1500 / L -600); a CT stored as 0-255 needs another. */
  windowHu?: { level: number; width: number };
}

/** Label colours (RGB), in order: red, yellow, cyan, magenta, green, orange, blue, ... */
export const VIEWER_LABEL_RGB: readonly (readonly [number, number, number])[] = [
  [255, 40, 40],
  [255, 220, 0],
  [0, 200, 255],
  [230, 60, 230],
  [40, 220, 40],
  [255, 140, 0],
  [60, 90, 255],
  [160, 255, 160],
];

/** Colours by label name where a name says what it is (lungs in cool colours, infection red). */
function labelColour(name: string, index: number): readonly [number, number, number] {
  if (/left/i.test(name) && /lung/i.test(name)) return [0, 200, 255];
  if (/right/i.test(name) && /lung/i.test(name)) return [60, 90, 255];
  if (/infection|lesion|covid|ggo/i.test(name)) return [255, 40, 40];
  return VIEWER_LABEL_RGB[index % VIEWER_LABEL_RGB.length]!;
}

let bundleCache: string | null = null;

/** NiiVue's UMD bundle as text (read once): found next to the package's entry point. */
export function niivueBundle(): string {
  if (bundleCache !== null) return bundleCache;
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve('@niivue/niivue'));
  } catch (cause) {
    throw new InputError('the viewer needs the npm package @niivue/niivue (run `npm run setup`)', { code: 'missing-dependency', cause });
  }
  // entry: <package>/build/niivue/index.js; the UMD bundle is <package>/dist/niivue.umd.js.
  const file = path.join(path.dirname(entry), '..', '..', 'dist', 'niivue.umd.js');
  if (!fs.existsSync(file)) throw new InputError(`NiiVue's UMD bundle is missing (expected ${file}); reinstall @niivue/niivue`, { code: 'missing-dependency' });
  bundleCache = fs.readFileSync(file, 'utf8');
  return bundleCache;
}

function fixed(value: number | null | undefined, digits: number, unit = ''): string {
  return value === null || value === undefined || Number.isNaN(value) ? 'n/a' : `${value.toFixed(digits)}${unit}`;
}

/** The summary as HTML tables (infection, lungs, lobes and the severity score). */
export function summaryHtml(summary: SeveritySummary): string {
  const rows: string[] = [`<tr><th>Infection volume</th><td>${fixed(summary.infection.volumeMl, 1, ' mL')}</td></tr>`];
  if (summary.lungs !== null) {
    const { left, right, both } = summary.lungs;
    rows.push(
      `<tr><th>Left lung</th><td>${fixed(left.volumeMl, 0, ' mL')}, ${fixed(left.percentInvolved, 1, '%')} involved</td></tr>`,
      `<tr><th>Right lung</th><td>${fixed(right.volumeMl, 0, ' mL')}, ${fixed(right.percentInvolved, 1, '%')} involved</td></tr>`,
      `<tr><th>Both lungs</th><td>${fixed(both.percentInvolved, 1, '%')} involved</td></tr>`,
      `<tr><th>Outside the lungs</th><td>${fixed(summary.lungs.infectionOutsideLungsMl, 1, ' mL')}</td></tr>`,
    );
  }
  let lobes = '';
  if (summary.lobes !== null) {
    const lobeRows = Object.entries(summary.lobes.perLobe)
      .map(([name, lobe]) => `<tr><th>${escapeXml(name.replace(/^lung_/, '').replace(/_/g, ' '))}</th><td>${fixed(lobe.percentInvolved, 1, '%')}</td><td>${lobe.score ?? 'n/a'}</td></tr>`)
      .join('');
    lobes = `<table class="summary"><thead><tr><th>Lobe</th><th>involved</th><th>score</th></tr></thead><tbody>${lobeRows}
<tr><th>CT severity score</th><td></td><td><b>${summary.lobes.severityScore ?? 'n/a'}</b> / 25</td></tr></tbody></table>
<p class="note">${escapeXml(summary.lobes.convention)}</p>`;
  }
  const lungSource = summary.lungs !== null ? `<p class="note">Lungs: ${escapeXml(summary.lungs.source)}</p>` : '';
  return `<table class="summary"><tbody>${rows.join('')}</tbody></table>${lungSource}${lobes}`;
}

/** Inline text safe inside <script>: no "</script", no "<!--". */
function scriptSafe(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

const STYLE = `
body { margin: 0; font-family: system-ui, sans-serif; background: #111; color: #ddd; display: flex; height: 100vh; }
#view { flex: 1; position: relative; min-width: 0; } #gl { width: 100%; height: 100%; display: block; }
#side { width: 300px; padding: 10px 14px; overflow-y: auto; font-size: 13px; background: #1b1b1b; }
h1 { font-size: 15px; margin: 0 0 8px; } h2 { font-size: 13px; margin: 14px 0 6px; color: #aaa; }
.mask { margin: 6px 0 10px; } .swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 4px; vertical-align: -1px; }
input[type=range] { width: 100%; } table.summary { border-collapse: collapse; width: 100%; margin: 4px 0; }
table.summary th, table.summary td { text-align: left; padding: 2px 4px; border-bottom: 1px solid #333; font-weight: normal; } table.summary th { color: #aaa; }
.note { font-size: 11px; color: #999; }
`;

/**
 * Our script: the errors it catches go to data-errors (and the console), then the scene is built
 * from the JSON data block. Plain ES5-style syntax is not needed (Chromium and Firefox run ES2020).
 */
const PAGE_SCRIPT = `
(function () {
  var errors = [];
  function record(message) { errors.push(String(message)); document.body.setAttribute('data-errors', JSON.stringify(errors)); }
  window.addEventListener('error', function (event) { record(event.message || 'error'); });
  window.addEventListener('unhandledrejection', function (event) { record((event.reason && event.reason.message) || event.reason); });
  var data = JSON.parse(document.getElementById('lesionseg-data').textContent);
  async function start() {
    var NV = window.niivue;
    var nv = new NV.Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: true, isColorbar: false, dragAndDropEnabled: false, loadingText: '', multiplanarShowRender: NV.SHOW_RENDER.ALWAYS, isRadiologicalConvention: true, crosshairWidth: 1, crosshairColor: [0.3, 1, 0.3, 0.6] });
    await nv.attachTo('gl');
    var ct = await NV.NVImage.loadFromBase64({ base64: data.image.base64, name: data.image.name, colormap: 'gray', cal_min: data.window.min, cal_max: data.window.max, trustCalMinMax: true });
    ct.cal_min = data.window.min; ct.cal_max = data.window.max;
    nv.addVolume(ct);
    for (var m = 0; m < data.masks.length; m++) {
      var mask = data.masks[m];
      var image = await NV.NVImage.loadFromBase64({ base64: mask.base64, name: mask.name, colormap: 'gray', opacity: mask.opacity });
      image.setColormapLabel(mask.colormap);
      nv.addVolume(image);
      nv.setOpacity(m + 1, mask.opacity);
    }
    nv.setSliceType(NV.SLICE_TYPE.MULTIPLANAR);
    if (data.startMm) nv.scene.crosshairPos = nv.mm2frac(data.startMm);
    nv.updateGLVolume();
    nv.drawScene();
    document.querySelectorAll('input[data-volume]').forEach(function (input) {
      input.addEventListener('input', function () { nv.setOpacity(Number(input.getAttribute('data-volume')), Number(input.value) / 100); });
    });
    window.lesionsegViewer = nv;
    requestAnimationFrame(function () {
      nv.drawScene();
      var tiles = (nv.screenSlices || []).map(function (s) { return { type: s.axCorSag, ltwh: Array.prototype.slice.call(s.leftTopWidthHeight).map(Math.round) }; });
      document.body.setAttribute('data-tiles', JSON.stringify(tiles));
      document.body.setAttribute('data-canvas', JSON.stringify([nv.gl.canvas.width, nv.gl.canvas.height]));
      var focus = nv.frac2canvasPosWithTile ? nv.frac2canvasPosWithTile(nv.scene.crosshairPos, NV.SLICE_TYPE.AXIAL) : null;
      var scale = nv.gl.canvas.width / nv.gl.canvas.getBoundingClientRect().width;
      var box = nv.gl.canvas.getBoundingClientRect();
      if (focus) document.body.setAttribute('data-focus', JSON.stringify([box.left + focus.pos[0] / scale, box.top + focus.pos[1] / scale]));
      document.body.setAttribute('data-crosshair-mm', JSON.stringify(Array.prototype.slice.call(nv.frac2mm(nv.scene.crosshairPos)).slice(0, 3)));
      document.body.setAttribute('data-viewer', 'ready');
    });
  }
  start().catch(function (error) { record((error && error.message) || error); console.error(error); document.body.setAttribute('data-viewer', 'error'); });
})();
`;

/** NiiVue's label colormap of a mask: index 0 transparent, each declared value in its colour. */
function labelColormap(mask: ViewerMask): Record<string, unknown> {
  const values = [0, ...mask.labels.map((l) => l.value).filter((v) => v !== 0)];
  const colours = values.map((value, k) => {
    if (value === 0) return [0, 0, 0] as const;
    const label = mask.labels.find((l) => l.value === value)!;
    return label.rgb ?? labelColour(label.name, k - 1);
  });
  return {
    R: colours.map((c) => c[0]),
    G: colours.map((c) => c[1]),
    B: colours.map((c) => c[2]),
    A: values.map((v) => (v === 0 ? 0 : 255)),
    I: values,
    labels: values.map((v) => (v === 0 ? '' : mask.labels.find((l) => l.value === v)!.name)),
  };
}

/**
 * The name NiiVue loads a volume under: it picks the reader by the name's extension, so a shown name
 * that is not a NIfTI file's (a DICOM folder, a SEG) is replaced by `fallback` with the extension
 * the bytes need (.nii.gz when gzip's magic starts them).
 */
function loaderName(volume: ViewerVolume, fallback: string): string {
  if (/\.nii(\.gz)?$/i.test(volume.name)) return volume.name;
  return `${fallback}.nii${volume.bytes[0] === 0x1f && volume.bytes[1] === 0x8b ? '.gz' : ''}`;
}

/** The page's HTML. */
export function viewerHtml(page: ViewerPage, bundle: string = niivueBundle()): string {
  const window = page.windowHu ?? LUNG_WINDOW_HU;
  const data = {
    image: { name: loaderName(page.image, 'image'), base64: Buffer.from(page.image.bytes).toString('base64') },
    window: { min: window.level - window.width / 2, max: window.level + window.width / 2 },
    masks: page.masks.map((mask, m) => ({ name: loaderName(mask, `mask-${m + 1}`), base64: Buffer.from(mask.bytes).toString('base64'), opacity: mask.opacity ?? 0.5, colormap: labelColormap(mask) })),
    startMm: page.startMm ?? null,
  };
  const maskControls = page.masks
    .map((mask, m) => {
      const map = labelColormap(mask);
      const legend = (map.labels as string[])
        .map((name, k) => (k === 0 ? '' : `<span class="swatch" style="background:rgb(${(map.R as number[])[k]},${(map.G as number[])[k]},${(map.B as number[])[k]})"></span>${escapeXml(name)} `))
        .join('');
      return `<div class="mask"><div>${escapeXml(mask.name)}</div><div>${legend}</div><label>opacity <input type="range" min="0" max="100" value="${Math.round((mask.opacity ?? 0.5) * 100)}" data-volume="${m + 1}" aria-label="opacity of ${escapeXml(mask.name)}"></label></div>`;
    })
    .join('\n');
  const notes = (page.notes ?? []).map((n) => `<p class="note">${escapeXml(n)}</p>`).join('');
  const summary = page.summary ? `<h2>Summary</h2>${summaryHtml(page.summary)}` : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(page.title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; connect-src data: blob:; worker-src blob:">
<style>${STYLE}</style></head>
<body data-viewer="loading">
<div id="view"><canvas id="gl"></canvas></div>
<div id="side">
<h1>${escapeXml(page.title)}</h1>
<p class="note">CT ${escapeXml(page.image.name)}, window W ${window.width} / L ${window.level} HU. Axial, coronal, sagittal and 3D render (drag to rotate; click to move the crosshair).</p>
<h2>Masks</h2>
${maskControls || '<p class="note">No masks.</p>'}
${summary}
${notes}
</div>
<script type="application/json" id="lesionseg-data">${scriptSafe(JSON.stringify(data))}</script>
<script>${scriptSafe(bundle)}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
