/**
 * Aggregation of per-case metrics: mean and standard deviation per metric, per fold and overall.
 *
 * - `std` is the POPULATION standard deviation (divide by n, numpy's np.std default ddof=0).
 * - NaN values (a metric undefined for a case, e.g. DSC when both masks are empty) are skipped
 *   and counted in `nSkipped`; +Infinity (HD95 with one empty mask) is kept, so such a mean is
 *   Infinity, and `nInfinite` says how many there were.
 * - `f1OfMeans` is the paper's F1: 2 * mean(precision) * mean(sensitivity) /
 *   (mean(precision) + mean(sensitivity)). It differs from the mean of the per-case F1 (`f1.mean`,
 *   which equals the mean DSC); reports must say which one they show.
 */
import type { CaseMetrics } from './caseMetrics.js';

export interface Stat {
  mean: number;
  /** Population standard deviation (ddof = 0). */
  std: number;
  /** Number of values used (NaN skipped). */
  n: number;
  nSkipped: number;
  nInfinite: number;
}

/** Mean and population std of the non-NaN values; mean and std are NaN when none is left. */
export function summarise(values: readonly number[]): Stat {
  let n = 0;
  let sum = 0;
  let nInfinite = 0;
  for (const v of values) {
    if (Number.isNaN(v)) continue;
    n++;
    sum += v;
    if (!Number.isFinite(v)) nInfinite++;
  }
  const nSkipped = values.length - n;
  if (n === 0) return { mean: NaN, std: NaN, n, nSkipped, nInfinite };
  const mean = sum / n;
  let squares = 0;
  for (const v of values) if (!Number.isNaN(v)) squares += (v - mean) * (v - mean);
  const std = Number.isFinite(mean) ? Math.sqrt(squares / n) : NaN;
  return { mean, std, n, nSkipped, nInfinite };
}

/** The metrics that are averaged over cases. */
export const SUMMARY_METRICS = [
  'dsc',
  'nsd',
  'hd95',
  'sensitivity',
  'precision',
  'specificity',
  'f1',
  'accuracy',
  'predVolumeMl',
  'refVolumeMl',
] as const satisfies readonly (keyof CaseMetrics)[];
export type SummaryMetric = (typeof SUMMARY_METRICS)[number];

export interface Summary {
  nCases: number;
  /** Cases where pred and ref are both empty (left out of DSC/NSD/HD95 means). */
  nEmptyBoth: number;
  metrics: Record<SummaryMetric, Stat>;
  /** The paper's F1: harmonic mean of mean precision and mean sensitivity (not mean per-case F1). */
  f1OfMeans: number;
}

/** 2PS / (P + S) of the mean precision P and mean sensitivity S (NaN if either is NaN or both 0). */
export function f1OfMeans(meanPrecision: number, meanSensitivity: number): number {
  const sum = meanPrecision + meanSensitivity;
  return sum === 0 ? NaN : (2 * meanPrecision * meanSensitivity) / sum;
}

export function summariseCases(cases: readonly CaseMetrics[]): Summary {
  const metrics = {} as Record<SummaryMetric, Stat>;
  for (const name of SUMMARY_METRICS) metrics[name] = summarise(cases.map((c) => c[name]));
  return {
    nCases: cases.length,
    nEmptyBoth: cases.filter((c) => c.emptyBoth).length,
    metrics,
    f1OfMeans: f1OfMeans(metrics.precision.mean, metrics.sensitivity.mean),
  };
}

export interface FoldSummary {
  /** One summary per fold, in the order given. */
  folds: Summary[];
  /** All cases of all folds pooled. */
  overall: Summary;
  /** Mean and std over the folds' means (each fold's mean counts once). */
  foldMeans: Record<SummaryMetric, Stat>;
}

export function summariseFolds(folds: readonly (readonly CaseMetrics[])[]): FoldSummary {
  const perFold = folds.map((cases) => summariseCases(cases));
  const foldMeans = {} as Record<SummaryMetric, Stat>;
  for (const name of SUMMARY_METRICS) foldMeans[name] = summarise(perFold.map((s) => s.metrics[name].mean));
  return { folds: perFold, overall: summariseCases(folds.flat()), foldMeans };
}
