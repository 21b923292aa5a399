/**
 * `lesionseg report RUN_DIR`: read the study's results.json and overlay slices, and write
 *   RUN_DIR/tables/table{1,2,3}.md and .csv      (also written by `experiment`)
 *   RUN_DIR/tables/findings.md                  the paper's findings with verdicts (also by `experiment`)
 *   RUN_DIR/report/report.html                  one self-contained page
 *   RUN_DIR/report/figures/*.png, *.svg           the same figures as files
 *   RUN_DIR/report/viewers/<case>.html            linked viewer pages of the overlay cases (written by the caller)
 * Aggregation and rendering only: no NIfTI, no tensors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFileSync, InputError } from '../core/index.js';
import type { OverlaySlice, StudyResults } from '../experiments/index.js';
import { reportHtml, studyCharts, type OverlayFigure } from './html.js';
import { findingsMarkdown } from './findings.js';
import { decodeOverlay, GROUND_TRUTH_RGB, PREDICTION_RGB, renderOverlay } from './overlay.js';
import { encodePng, pngDataUri } from './png.js';
import { armLabel, studyTables, tableCsv, tableMarkdown, type StudyTable } from './tables.js';

const RESULTS_FORMAT = 'lesionseg-study-results';
const RESULTS_VERSIONS = [1, 2];

export function readStudyResults(runDir: string): StudyResults {
  const file = path.join(runDir, 'results.json');
  if (!fs.existsSync(file)) throw new InputError('no results.json: run `lesionseg experiment ... --out DIR` first (or name the study folder)', { file: runDir, code: 'not-found' });
  let json: Partial<StudyResults>;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<StudyResults>;
  } catch (cause) {
    throw new InputError(`not valid JSON: ${(cause as Error).message}`, { file, code: 'bad-json', cause });
  }
  if (json.format !== RESULTS_FORMAT || !RESULTS_VERSIONS.includes(json.version as number)) {
    throw new InputError(`not a lesionseg study results file (format ${JSON.stringify(json.format)}, version ${JSON.stringify(json.version)}; expected ${RESULTS_FORMAT} version ${RESULTS_VERSIONS.join(' or ')})`, { file, code: 'bad-format' });
  }
  if (!Array.isArray(json.arms) || json.target === undefined) throw new InputError('results.json lacks arms or target', { file, code: 'bad-format' });
  return json as StudyResults;
}

/** Table 1-3 as Markdown and CSV, and findings.md, in `dir`; returns the tables. */
export function writeTables(results: StudyResults, dir: string): StudyTable[] {
  const tables = studyTables(results);
  fs.mkdirSync(dir, { recursive: true });
  for (const table of tables) {
    atomicWriteFileSync(path.join(dir, `${table.id}.md`), tableMarkdown(table));
    atomicWriteFileSync(path.join(dir, `${table.id}.csv`), tableCsv(table));
  }
  atomicWriteFileSync(path.join(dir, 'findings.md'), findingsMarkdown(results));
  return tables;
}

function safeName(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]+/g, '_');
}

/** The overlay cases whose whole volumes are known (overlay files with `files`), for their viewer pages. */
export function overlayViewerCases(runDir: string, results: StudyResults): { caseId: string; image: string; groundTruth: string; predictions: { label: string; file: string }[] }[] {
  const cases = [];
  for (const relative of results.overlays) {
    let slice: OverlaySlice;
    try {
      slice = JSON.parse(fs.readFileSync(path.join(runDir, relative), 'utf8')) as OverlaySlice;
    } catch (cause) {
      throw new InputError('cannot read the overlay slice (run `lesionseg experiment` again to rewrite it)', { file: path.join(runDir, relative), code: 'bad-overlay', cause });
    }
    if (slice.files === undefined || slice.files.predictions.length !== slice.predictions.length) continue;
    const files = slice.files;
    cases.push({ caseId: slice.caseId, image: files.image, groundTruth: files.groundTruth, predictions: slice.predictions.map((p, k) => ({ label: armLabel(p), file: files.predictions[k]! })) });
  }
  return cases;
}

/** Where the viewer page of an overlay case goes: RUN_DIR/report/viewers/<case>.html. */
export function viewerPageOf(runDir: string, caseId: string): string {
  return path.join(runDir, 'report', 'viewers', `${safeName(caseId)}.html`);
}

function overlayFigures(runDir: string, results: StudyResults, figuresDir: string, viewers: ReadonlySet<string>): OverlayFigure[] {
  const figures: OverlayFigure[] = [];
  for (const relative of results.overlays) {
    const file = path.join(runDir, relative);
    let slice: OverlaySlice;
    try {
      slice = JSON.parse(fs.readFileSync(file, 'utf8')) as OverlaySlice;
    } catch (cause) {
      throw new InputError('cannot read the overlay slice (run `lesionseg experiment` again to rewrite it)', { file, code: 'bad-overlay', cause });
    }
    const decoded = decodeOverlay(slice);
    const panel = (name: string, caption: string, masks: Parameters<typeof renderOverlay>[1]) => {
      const image = renderOverlay(decoded, masks);
      const png = encodePng(image.width, image.height, image.rgb);
      const pngFile = path.join(figuresDir, `overlay_${safeName(slice.caseId)}_${safeName(name)}.png`);
      atomicWriteFileSync(pngFile, png);
      return { caption, dataUri: pngDataUri(png), file: path.relative(runDir, pngFile) };
    };
    figures.push({
      caseId: slice.caseId,
      fold: slice.fold,
      slice: slice.slice,
      ...(viewers.has(slice.caseId) ? { viewer: path.relative(path.dirname(figuresDir), viewerPageOf(runDir, slice.caseId)).split(path.sep).join('/') } : {}),
      panels: [
        panel('ct', 'CT (lung window)', []),
        panel('ground_truth', 'Ground truth', [{ mask: decoded.groundTruth, rgb: GROUND_TRUTH_RGB }]),
        ...decoded.predictions.map((p) =>
          panel(`${p.pretrained}_${p.name ?? p.strategy}`, armLabel(p), [
            { mask: decoded.groundTruth, rgb: GROUND_TRUTH_RGB },
            { mask: p.mask, rgb: PREDICTION_RGB },
          ]),
        ),
      ],
    });
  }
  return figures;
}

export interface WrittenReport {
  html: string;
  figures: string[];
  tables: StudyTable[];
}

/** `viewers`: the overlay cases whose viewer page (viewerPageOf) was written, which the page links. */
export function writeReport(runDir: string, options: { viewers?: ReadonlySet<string> } = {}): WrittenReport {
  const results = readStudyResults(runDir);
  const tables = writeTables(results, path.join(runDir, 'tables'));
  const reportDir = path.join(runDir, 'report');
  const figuresDir = path.join(reportDir, 'figures');
  fs.mkdirSync(figuresDir, { recursive: true });
  const charts = studyCharts(results);
  const figures: string[] = [];
  for (const [name, svg] of Object.entries(charts)) {
    if (svg === null) continue;
    const file = path.join(figuresDir, `${name}.svg`);
    atomicWriteFileSync(file, svg);
    figures.push(file);
  }
  const overlays = overlayFigures(runDir, results, figuresDir, options.viewers ?? new Set());
  for (const figure of overlays) for (const p of figure.panels) figures.push(path.join(runDir, p.file));
  const html = path.join(reportDir, 'report.html');
  atomicWriteFileSync(html, reportHtml({ results, tables, charts, overlays }));
  return { html, figures, tables };
}
