/**
 * The report page: one self-contained HTML file (inline CSS and SVG, images as data URIs, no
 * network) with the study's tables, the paper's findings in words with forest plots of the
 * differences against scratch (where results.json has comparisons), box plots of per-case DSC
 * and NSD per arm, learning curves, seconds per epoch, and the overlay figures. A tiny inline script marks the body with
 * `data-images-ok="<decoded>/<total>"` once the images have loaded, which the browser test reads.
 */
import type { StudyResults } from '../experiments/index.js';
import { barChartSvg, boxPlotSvg, escapeXml, lineChartSvg, type BoxGroup, type LineSeries } from './charts.js';
import { forestPlotSvg } from './forest.js';
import { pText, signed, verdictSentence } from './findings.js';
import { armLabel, armStrategyLabel, cellText, MARK_NOTE, pretrainedLabel, type StudyTable } from './tables.js';

export { armLabel };

export interface OverlayPanel {
  caption: string;
  dataUri: string;
  file: string;
}

export interface OverlayFigure {
  caseId: string;
  fold: number;
  slice: number;
  panels: OverlayPanel[];
  /** The case's viewer page (NiiVue), relative to the report page, when one was written. */
  viewer?: string;
}

export interface ReportCharts {
  dscBox: string;
  nsdBox: string;
  trainLoss: string;
  pseudoDice: string;
  pretrainLoss: string | null;
  secondsPerEpoch: string;
  /** Forest plots of the case-level differences against scratch (null without comparisons). */
  forestDsc: string | null;
  forestNsd: string | null;
  forestSensitivity: string | null;
}

/** The study's step time over all the calls that ran it (results written before it was kept have none). */
function stepTimeText(results: StudyResults): string {
  const t = results.stepSeconds as StudyResults['stepSeconds'] | undefined;
  if (t === undefined || t.timedSteps === 0) return '';
  const minutes = (s: number): string => (s / 60).toFixed(1);
  const untimed = t.untimedSteps > 0 ? `; ${t.untimedSteps} step(s) ran before times were kept` : '';
  return `; its steps took ${minutes(t.total)} min in all (pre-training ${minutes(t.pretraining)}, training ${minutes(t.training)}, prediction ${minutes(t.prediction)}${untimed})`;
}


const SHORT_STRATEGY: Readonly<Record<string, string>> = { scratch: 'Scratch', continual: 'Continual', finetune: 'Fine-tune', 'frozen-encoder': 'Frozen enc.', hybrid: 'Hybrid' };

/** A short label for chart axes and legends, e.g. `Hybrid/multi`, a variant by its name: `hybrid-random-decoder/multi`. */
export function shortArmLabel(arm: { strategy: string; pretrained: string; name?: string }): string {
  const name = arm.name ?? arm.strategy;
  const strategy = name !== arm.strategy ? name : (SHORT_STRATEGY[arm.strategy] ?? arm.strategy);
  return arm.strategy === 'scratch' ? strategy : `${strategy}/${arm.pretrained}`;
}

function forest(results: StudyResults, metric: 'dsc' | 'nsd' | 'sensitivity', label: string): string | null {
  if (results.comparisons === undefined) return null;
  const rows = results.comparisons.results
    .filter((c) => c.family === 'vs-scratch' && c.level === 'cases' && c.metric === metric)
    .map((c) => ({ label: shortArmLabel(c.a), difference: c.difference, low: c.ci?.low ?? null, high: c.ci?.high ?? null, significance: c.significance, note: `${signed(c.difference, 3)}, Holm p ${pText(c.adjustedP)}` }));
  return forestPlotSvg(`${label}: difference against from scratch (paired test cases, 95% bootstrap CI)`, `${label} of the arm - ${label} from scratch`, rows);
}

/** The charts of a study (SVG strings). */
export function studyCharts(results: StudyResults): ReportCharts {
  const values = (metric: 'dsc' | 'nsd') =>
    results.arms.map((arm): BoxGroup => ({ label: shortArmLabel(arm), values: arm.folds.flatMap((f) => f.cases.map((c) => c[metric])).filter((v): v is number => v !== null) }));
  const firstFold = results.target.folds[0];
  const curves = (pick: (e: StudyResults['arms'][number]['folds'][number]['epochs'][number]) => number | null): LineSeries[] =>
    results.arms.map((arm) => ({
      label: shortArmLabel(arm),
      points: (arm.folds.find((f) => f.fold === firstFold)?.epochs ?? []).map((e): [number, number] => [e.epoch + 1, pick(e) ?? NaN]),
    }));
  const foldText = `fold ${firstFold ?? '-'}`;
  return {
    dscBox: boxPlotSvg('Per-case DSC (all test cases of all folds)', 'DSC', values('dsc')),
    nsdBox: boxPlotSvg(`Per-case NSD at ${results.target.toleranceMm} mm`, 'NSD', values('nsd')),
    trainLoss: lineChartSvg(`Training loss (Dice + CE), ${foldText}`, 'epoch', 'loss', curves((e) => e.trainLoss)),
    pseudoDice: lineChartSvg(`Validation pseudo Dice, ${foldText}`, 'epoch', 'pseudo Dice', curves((e) => e.pseudoDice)),
    pretrainLoss:
      results.pretraining.length > 0
        ? lineChartSvg('Pre-training loss', 'epoch', 'loss', results.pretraining.map((p) => ({ label: `${p.model === 'multi' ? 'multi-lesion' : p.model}${p.seed !== undefined ? ` seed ${p.seed}` : ''}`, points: p.epochs.map((e): [number, number] => [e.epoch + 1, e.trainLoss]) })))
        : null,
    secondsPerEpoch: barChartSvg('Seconds per training epoch (mean +/- std over folds)', 's/epoch', results.arms.map((arm) => ({ label: shortArmLabel(arm), value: arm.summary.secondsPerEpoch.mean, error: arm.summary.secondsPerEpoch.std }))),
    forestDsc: forest(results, 'dsc', 'DSC'),
    forestNsd: forest(results, 'nsd', 'NSD'),
    forestSensitivity: forest(results, 'sensitivity', 'Sensitivity'),
  };
}

export function tableHtml(table: StudyTable): string {
  const head = ['Strategy', 'Pre-trained', ...table.columns.map((c) => c.header)].map((h) => `<th>${escapeXml(h)}</th>`).join('');
  const rows = table.rows
    .map((row) => {
      const cells = row.cells.map((cell, c) => `<td${cell.best ? ' class="best"' : ''}>${escapeXml(cellText(table.columns[c]!, cell) + cell.mark)}</td>`).join('');
      return `<tr><th scope="row">${escapeXml(armStrategyLabel(row))}</th><td>${escapeXml(pretrainedLabel(row.pretrained))}</td>${cells}</tr>`;
    })
    .join('\n');
  const notes = table.notes.map((n) => `<li>${escapeXml(n === MARK_NOTE ? n.replace('see findings.md', 'see Findings below') : n)}</li>`).join('');
  return `<section class="study-table" id="${table.id}"><h3>${escapeXml(table.title)}</h3>
<div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>
${rows}
</tbody></table></div><ul class="notes"><li>Best value of each column in bold.</li>${notes}</ul></section>`;
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
thead th { background: #f0f0f0; } tbody th { text-align: left; } td.best { font-weight: bold; background: #fff3c4; }
.scroll { overflow-x: auto; } .notes { font-size: 12px; color: #555; }
.charts svg { max-width: 100%; height: auto; border: 1px solid #eee; margin: 0.5em 0; }
.figure { display: flex; flex-wrap: wrap; gap: 10px; } .figure figure { margin: 0; } .figure img { display: block; image-rendering: pixelated; }
figcaption { font-size: 12px; max-width: 320px; } .findings li { margin: 0.4em 0; } .rule { font-size: 12px; color: #555; }
.verdict-supported { color: #1a6b1a; } .verdict-not-supported { color: #a01c1c; } .legend span { display: inline-block; width: 1em; height: 0.6em; margin: 0 0.3em; }
`;

const IMAGE_CHECK = `
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (im) { return im.complete && im.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-ok', ok + '/' + images.length);
});`;

export interface ReportPage {
  results: StudyResults;
  tables: StudyTable[];
  charts: ReportCharts;
  overlays: OverlayFigure[];
}

export function reportHtml(page: ReportPage): string {
  const { results } = page;
  const figures = page.overlays
    .map((figure) => {
      const panels = figure.panels.map((p) => `<figure><img src="${p.dataUri}" alt="${escapeXml(p.caption)}"><figcaption>${escapeXml(p.caption)}</figcaption></figure>`).join('\n');
      const viewer = figure.viewer !== undefined ? ` <a class="viewer" href="${escapeXml(figure.viewer)}">open in the 3D viewer</a>` : '';
      return `<h3>Case ${escapeXml(figure.caseId)} (fold ${figure.fold}, axial slice ${figure.slice})${viewer}</h3>\n<div class="figure">${panels}</div>`;
    })
    .join('\n');
  const findings = results.findings;
  const findingsHtml =
    findings === undefined
      ? '<p>No comparisons in this results.json (written before results version 2): run <code>lesionseg experiment</code> on the study folder again.</p>'
      : `<ul class="findings">${findings.findings.map((f) => `<li class="verdict-${f.verdict.replace(/ /g, '-')}">${escapeXml(verdictSentence(f))}<br><span class="rule">Decided by: ${escapeXml(f.rule)}.</span></li>`).join('\n')}</ul>
<p class="notes">Rule (alpha ${findings.alpha}): ${escapeXml(findings.rule)}</p>
<div class="charts">
${[page.charts.forestDsc, page.charts.forestNsd, page.charts.forestSensitivity].filter((c): c is string => c !== null).join('\n')}
</div>
<p class="notes">${escapeXml(results.comparisons?.method ?? '')}</p>`;
  const charts = [page.charts.dscBox, page.charts.nsdBox, page.charts.trainLoss, page.charts.pseudoDice, page.charts.pretrainLoss, page.charts.secondsPerEpoch].filter((c): c is string => c !== null);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lesionseg study: ${escapeXml(results.name)}</title>
<style>${STYLE}</style></head>
<body data-images-ok="pending">
<h1>lesionseg study: ${escapeXml(results.name)}</h1>
<p class="meta">Target <b>${escapeXml(results.target.dataset)}</b>, label ${results.target.label}, fold(s) ${results.target.folds.join(', ')}; ${results.arms.length} arm(s) (strategy x pre-trained model); written ${escapeXml(results.createdAt)}; the experiment call took ${results.wallSeconds.toFixed(0)} s${stepTimeText(results)}.</p>
<h2>Tables</h2>
${page.tables.map(tableHtml).join('\n')}
<h2>Findings</h2>
${findingsHtml}
<h2>Charts</h2>
<div class="charts">
${charts.join('\n')}
</div>
<h2>Overlays</h2>
<p class="legend">Axial CT in a lung window (W 1500, L -600 HU): <span style="background:rgb(0,220,0)"></span>ground truth, <span style="background:rgb(255,40,40)"></span>prediction.</p>
${figures || '<p>No overlay figures (no test case with a lesion).</p>'}
<script>${IMAGE_CHECK}</script>
</body></html>
`;
}
