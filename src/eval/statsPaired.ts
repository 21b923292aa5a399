/**
 * Paired comparisons of two arms on the same units (test cases, or (case, seed) pairs, or folds):
 * the mean difference a - b, its stratified bootstrap interval (statsBootstrap.ts) and the
 * Wilcoxon signed-rank p-value (statsWilcoxon.ts); and Holm's step-down adjustment of the p-values
 * of one family of comparisons. Units where either side is undefined (null or NaN, e.g. DSC of a
 * case whose reference and prediction are both empty) are dropped pairwise and counted in
 * `nSkipped`, as summary.ts counts skipped values.
 */
import type { Rng } from '../core/index.js';
import { BOOTSTRAP_DEFAULTS, stratifiedBootstrapCi } from './statsBootstrap.js';
import { wilcoxon, type WilcoxonMethod } from './statsWilcoxon.js';

export interface PairedUnit {
  /** The stratum the bootstrap resamples within (e.g. the fold, or the run `seed/fold`). */
  stratum: string | number;
  a: number | null;
  b: number | null;
}

export interface PairedComparison {
  /** Units with both values defined. */
  n: number;
  /** Units dropped because a or b was undefined. */
  nSkipped: number;
  meanA: number | null;
  meanB: number | null;
  /** mean(a - b) over the kept units (= meanA - meanB up to rounding). */
  difference: number | null;
  ci: { low: number; high: number; level: number; resamples: number } | null;
  wilcoxon: { statistic: number; pValue: number; method: 'exact' | 'approx'; n: number; nZero: number; ties: boolean } | null;
}

export interface PairedOptions {
  rng: Rng;
  resamples?: number;
  level?: number;
  method?: WilcoxonMethod;
}

const defined = (v: number | null): v is number => v !== null && Number.isFinite(v);

/** Compare a against b over the units both define. */
export function comparePaired(units: readonly PairedUnit[], options: PairedOptions): PairedComparison {
  const kept = units.filter((u) => defined(u.a) && defined(u.b)) as { stratum: string | number; a: number; b: number }[];
  const nSkipped = units.length - kept.length;
  if (kept.length === 0) return { n: 0, nSkipped, meanA: null, meanB: null, difference: null, ci: null, wilcoxon: null };
  const differences = kept.map((u) => u.a - u.b);
  const ci = stratifiedBootstrapCi(differences, kept.map((u) => u.stratum), options.rng, { resamples: options.resamples ?? BOOTSTRAP_DEFAULTS.resamples, level: options.level ?? BOOTSTRAP_DEFAULTS.level });
  const test = wilcoxon(differences, options.method !== undefined ? { method: options.method } : {});
  const mean = (values: number[]): number => values.reduce((s, v) => s + v, 0) / values.length;
  return {
    n: kept.length,
    nSkipped,
    meanA: mean(kept.map((u) => u.a)),
    meanB: mean(kept.map((u) => u.b)),
    difference: ci.mean,
    ci: { low: ci.low, high: ci.high, level: ci.level, resamples: ci.resamples },
    wilcoxon: test === null ? null : { statistic: test.statistic, pValue: test.pValue, method: test.method, n: test.n, nZero: test.nZero, ties: test.ties },
  };
}

/**
 * Holm's step-down adjustment: with the m defined p-values sorted ascending, p_(i) becomes
 * max_{j <= i} min(1, (m - j + 1) p_(j)) (as statsmodels' multipletests(method='holm')). Null
 * entries (no test possible) stay null and do not count in m. Returned in the input order.
 */
export function holmAdjust(pValues: readonly (number | null)[]): (number | null)[] {
  const order = pValues.map((p, i) => ({ p, i })).filter((e): e is { p: number; i: number } => e.p !== null && !Number.isNaN(e.p));
  // A stable sort: equal p-values keep their order (the adjusted values are equal anyway).
  order.sort((x, y) => x.p - y.p);
  const m = order.length;
  const out: (number | null)[] = pValues.map(() => null);
  let running = 0;
  order.forEach((e, j) => {
    running = Math.max(running, Math.min(1, (m - j) * e.p));
    out[e.i] = running;
  });
  return out;
}
