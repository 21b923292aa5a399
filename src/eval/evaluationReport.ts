/**
 * The files `lesionseg evaluate` writes from a FolderEvaluation: a JSON report (per-case metrics,
 * mean/std/n per metric, the paper's F1 of the means, per fold with a split) and a CSV with one row
 * per evaluated case (per fold and case with a split). Both are written atomically.
 *
 * JSON has no NaN or Infinity: such values are written as null (NaN: the metric is undefined for
 * the case, e.g. DSC when both masks are empty; Infinity: HD95 when exactly one mask is empty, see
 * `pred_empty` / `ref_empty`). The CSV writes them as `nan` and `inf`, which numpy and pandas read.
 */
import { atomicWriteFileSync, atomicWriteJsonSync, csvText } from '../core/index.js';
import type { CaseMetrics } from './caseMetrics.js';
import type { EvaluatedCase, FolderEvaluation } from './evaluateFolder.js';
import type { LungInvolvement } from './lungs.js';
import { SUMMARY_METRICS, summariseCases, summarise, type Stat, type Summary, type SummaryMetric } from './summary.js';

/** snake_case names of the averaged metrics in the report. */
const METRIC_KEYS: Record<SummaryMetric, string> = {
  dsc: 'dsc',
  nsd: 'nsd',
  hd95: 'hd95',
  sensitivity: 'sensitivity',
  precision: 'precision',
  specificity: 'specificity',
  f1: 'f1',
  accuracy: 'accuracy',
  predVolumeMl: 'pred_volume_ml',
  refVolumeMl: 'ref_volume_ml',
};

const LUNG_KEYS: Record<keyof LungInvolvement, string> = {
  infectionVolumeMl: 'infection_ml',
  leftLungVolumeMl: 'left_lung_ml',
  rightLungVolumeMl: 'right_lung_ml',
  infectionInLeftMl: 'infection_left_ml',
  infectionInRightMl: 'infection_right_ml',
  infectionOutsideLungsMl: 'infection_outside_lungs_ml',
  percentLeftInvolved: 'percent_left',
  percentRightInvolved: 'percent_right',
  percentBothInvolved: 'percent_both',
};

export const F1_NOTE =
  'cases[].f1 and summary.f1 are per-case F1 (equal to DSC for binary masks); f1_of_means is 2PS/(P+S) of the mean precision P and mean sensitivity S, the F1 that the transfer paper reports';

/** A number for JSON: NaN and +-Infinity become null. */
function finite(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

function statJson(stat: Stat): Record<string, number | null> {
  return { mean: finite(stat.mean), std: finite(stat.std), n: stat.n, n_skipped: stat.nSkipped, n_infinite: stat.nInfinite };
}

function lungJson(lungs: LungInvolvement): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [key, name] of Object.entries(LUNG_KEYS) as [keyof LungInvolvement, string][]) out[name] = finite(lungs[key]);
  return out;
}

function caseJson(c: EvaluatedCase): Record<string, unknown> {
  const m: CaseMetrics = c.metrics;
  const out: Record<string, unknown> = { case: c.caseId };
  if (c.fold !== undefined) out.fold = c.fold;
  for (const [key, name] of Object.entries(METRIC_KEYS) as [SummaryMetric, string][]) out[name] = finite(m[key]);
  Object.assign(out, {
    tp: m.tp,
    fp: m.fp,
    fn: m.fn,
    tn: m.tn,
    pred_surface_mm2: m.predSurfaceMm2,
    ref_surface_mm2: m.refSurfaceMm2,
    pred_empty: m.tp + m.fp === 0,
    ref_empty: m.tp + m.fn === 0,
    empty_both: m.emptyBoth,
    spacing_mm: c.spacingMm,
    gt_file: c.gtFile,
    pred_file: c.predFile,
  });
  if (c.lungs) out.lungs = { file: c.lungs.lungFile, ref: lungJson(c.lungs.ref), pred: lungJson(c.lungs.pred) };
  return out;
}

function summaryJson(summary: Summary): Record<string, unknown> {
  const metrics: Record<string, unknown> = {};
  for (const name of SUMMARY_METRICS) metrics[METRIC_KEYS[name]] = statJson(summary.metrics[name]);
  return { n_cases: summary.nCases, summary: metrics, f1_of_means: finite(summary.f1OfMeans), n_empty_both: summary.nEmptyBoth };
}

/** The JSON report of an evaluation (plain data, ready for JSON.stringify). */
export function evaluationReport(result: FolderEvaluation): Record<string, unknown> {
  const overall = summaryJson(summariseCases(result.cases.map((c) => c.metrics)));
  const report: Record<string, unknown> = {
    gt: result.gtDir,
    pred: result.predDir,
    label: result.label,
    ...(result.ignoreLabel !== null ? { ignore_label: result.ignoreLabel } : {}),
    tolerance_mm: result.toleranceMm,
    cases: result.cases.map(caseJson),
    ...overall,
    f1_note: F1_NOTE,
    missing_predictions: result.missing.map((m) => (m.fold === undefined ? { case: m.caseId } : { case: m.caseId, fold: m.fold })),
    unmatched_predictions: result.unmatchedPredictions,
  };
  if (result.folds !== undefined) {
    const perFold = result.folds.map((fold) => {
      const cases = result.cases.filter((c) => c.fold === fold.fold);
      return { fold: fold.fold, pred_dir: fold.predDir, cases: cases.map((c) => c.caseId), ...summaryJson(summariseCases(cases.map((c) => c.metrics))) };
    });
    report.folds = perFold;
    // Mean and std over the folds' means: each fold counts once (how 5-fold results are usually quoted).
    const foldMeans: Record<string, unknown> = {};
    for (const name of SUMMARY_METRICS) {
      const means = result.folds.map((fold) => summariseCases(result.cases.filter((c) => c.fold === fold.fold).map((c) => c.metrics)).metrics[name].mean);
      foldMeans[METRIC_KEYS[name]] = statJson(summarise(means));
    }
    report.fold_means = foldMeans;
  }
  return report;
}

function csvNumber(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  return String(value);
}

/** One CSV row per evaluated case: id, fold (with a split), metrics, counts, lung involvement (with lungs). */
export function evaluationCsv(result: FolderEvaluation): string {
  const withFolds = result.folds !== undefined;
  const withLungs = result.cases.some((c) => c.lungs !== undefined);
  const metricNames = Object.values(METRIC_KEYS);
  const lungNames = Object.values(LUNG_KEYS);
  const header = ['case', ...(withFolds ? ['fold'] : []), ...metricNames, 'tp', 'fp', 'fn', 'tn', 'pred_surface_mm2', 'ref_surface_mm2', 'empty_both'];
  if (withLungs) header.push(...lungNames.map((n) => `ref_${n}`), ...lungNames.map((n) => `pred_${n}`));
  const rows = [header.join(',')];
  for (const c of result.cases) {
    const m = c.metrics;
    const cells = [csvText(c.caseId), ...(withFolds ? [String(c.fold)] : [])];
    for (const key of Object.keys(METRIC_KEYS) as SummaryMetric[]) cells.push(csvNumber(m[key]));
    cells.push(String(m.tp), String(m.fp), String(m.fn), String(m.tn), csvNumber(m.predSurfaceMm2), csvNumber(m.refSurfaceMm2), String(m.emptyBoth));
    if (withLungs) {
      for (const side of ['ref', 'pred'] as const) {
        for (const key of Object.keys(LUNG_KEYS) as (keyof LungInvolvement)[]) cells.push(c.lungs ? csvNumber(c.lungs[side][key]) : '');
      }
    }
    rows.push(cells.join(','));
  }
  return `${rows.join('\n')}\n`;
}

/** Writes the JSON report (and the CSV when a path is given), each atomically. */
export function writeEvaluation(result: FolderEvaluation, outputs: { jsonPath: string; csvPath?: string }): Record<string, unknown> {
  const report = evaluationReport(result);
  atomicWriteJsonSync(outputs.jsonPath, report);
  if (outputs.csvPath !== undefined) atomicWriteFileSync(outputs.csvPath, evaluationCsv(result));
  return report;
}
