/**
 * The Wilcoxon signed-rank test of paired differences, two-sided, exactly as
 * `scipy.stats.wilcoxon(d)` computes it in SciPy 1.10 (Debian 12's python3-scipy 1.10.1) with its
 * defaults: zero_method 'wilcox', correction False, method 'auto'. Pinned to that version because
 * later SciPy releases changed the rules (1.15 runs a permutation test for small samples with ties
 * or zeros); the fixture script test/fixtures/stats/make_stats_fixtures.py checks us against it.
 *
 * SciPy 1.10's rules, followed here step by step:
 * - method 'auto' picks 'exact' when len(d) <= 50 (zeros included in that count), else 'approx';
 * - zeros force 'approx' (an explicit 'exact' too), and 'approx' drops the zeros (zero_method
 *   'wilcox'); all differences zero is an error in SciPy, `null` here (there is nothing to test);
 * - ranks of |d| are average ranks; r+ and r- are the rank sums of the positive and negative
 *   differences, and the statistic is T = min(r+, r-);
 * - 'exact': the null distribution of r+ over the n = len(d) differences, p = 2 min(P(R <= r+),
 *   P(R >= r+)) clipped to 1, and p = 1 when r+ is the distribution's centre. Ties do NOT switch
 *   SciPy 1.10 to 'approx': it truncates a half-integer r+ to an integer and uses the exact
 *   distribution anyway (scipy issues 13689, 15856). We do the same so the numbers match; with
 *   continuous metrics (DSC, NSD) ties other than zeros are rare;
 * - 'approx': z = (T - n(n+1)/4) / sqrt((n(n+1)(2n+1) - sum_t t(t^2 - 1) / 2) / 24) over the tie
 *   groups t of the ranks (no continuity correction), p = 2 (1 - Phi(|z|)).
 */

export type WilcoxonMethod = 'auto' | 'exact' | 'approx';

export interface WilcoxonResult {
  /** T = min(r+, r-). */
  statistic: number;
  pValue: number;
  /** The method used after SciPy 1.10's switches (zeros force 'approx'). */
  method: 'exact' | 'approx';
  /** Differences ranked (zeros dropped under 'approx'). */
  n: number;
  /** Zero differences in the input. */
  nZero: number;
  /** Whether |d| (zeros dropped) had ties. */
  ties: boolean;
  /** The normal approximation's z ('approx' only). */
  z: number | null;
}

/** Average ranks (1-based) of `values`, as scipy.stats.rankdata(method='average'), and the sizes of the tie groups (> 1). */
export function averageRanks(values: readonly number[]): { ranks: Float64Array; tieSizes: number[] } {
  const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Float64Array(values.length);
  const tieSizes: number[] = [];
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && values[order[end + 1]!] === values[order[start]!]) end++;
    const rank = (start + end + 2) / 2;
    for (let k = start; k <= end; k++) ranks[order[k]!] = rank;
    if (end > start) tieSizes.push(end - start + 1);
    start = end + 1;
  }
  return { ranks, tieSizes };
}

/** P(R+ = r) for r = 0 .. n(n+1)/2 under the null, by SciPy 1.10's recursion (_get_wilcoxon_distr). */
export function signedRankDistribution(n: number): Float64Array {
  let c = new Float64Array([1]);
  for (let k = 1; k <= n; k++) {
    const next = new Float64Array((k * (k + 1)) / 2 + 1);
    const m = c.length;
    for (let i = 0; i < m; i++) next[i] = c[i]! * 0.5;
    for (let i = 0; i < m; i++) next[next.length - m + i]! += c[i]! * 0.5;
    c = next;
  }
  return c;
}

/** erfc(x) for x >= 0: a positive-term series of erf below 2.5, Lentz's continued fraction above (both to ~1e-15 relative). */
function erfcNonNegative(x: number): number {
  if (x < 2.5) {
    // erf(x) = 2/sqrt(pi) exp(-x^2) sum_n (2x^2)^n x / (1*3*...*(2n+1)): every term positive, no cancellation.
    let term = x;
    let sum = x;
    for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
      term *= (2 * x * x) / (2 * n + 1);
      sum += term;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), modified Lentz.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** The standard normal's survival function 1 - Phi(z) (scipy.stats.norm.sf), accurate in the far tail. */
export function normalSf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const x = Math.abs(z) / Math.SQRT2;
  const upper = 0.5 * erfcNonNegative(x);
  return z >= 0 ? upper : 1 - upper;
}

/** The two-sided Wilcoxon signed-rank test of `differences` (finite numbers); null when there are none or all are zero. */
export function wilcoxon(differences: readonly number[], options: { method?: WilcoxonMethod } = {}): WilcoxonResult | null {
  for (const d of differences) if (!Number.isFinite(d)) throw new RangeError(`wilcoxon: differences must be finite, got ${d} (drop undefined cases first)`);
  if (differences.length === 0) return null;
  let mode: 'exact' | 'approx' = (options.method ?? 'auto') === 'auto' ? (differences.length <= 50 ? 'exact' : 'approx') : (options.method as 'exact' | 'approx');
  const nZero = differences.filter((d) => d === 0).length;
  if (nZero > 0 && mode === 'exact') mode = 'approx';
  let d = differences;
  if (mode === 'approx') {
    if (nZero === differences.length) return null;
    d = differences.filter((v) => v !== 0);
  }
  const count = d.length;
  const { ranks, tieSizes } = averageRanks(d.map(Math.abs));
  let rPlus = 0;
  let rMinus = 0;
  d.forEach((v, i) => {
    if (v > 0) rPlus += ranks[i]!;
    else if (v < 0) rMinus += ranks[i]!;
  });
  const statistic = Math.min(rPlus, rMinus);
  const base = { statistic, method: mode, n: count, nZero, ties: tieSizes.length > 0 };
  if (mode === 'approx') {
    const mean = (count * (count + 1)) / 4;
    let variance = count * (count + 1) * (2 * count + 1);
    for (const t of tieSizes) variance -= 0.5 * t * (t * t - 1);
    const z = (statistic - mean) / Math.sqrt(variance / 24);
    return { ...base, pValue: 2 * normalSf(Math.abs(z)), z };
  }
  const pmf = signedRankDistribution(count);
  const r = Math.trunc(rPlus); // SciPy 1.10: int(r_plus), also when ties make it half-integer
  let pValue: number;
  if (r === Math.floor((pmf.length - 1) / 2)) {
    pValue = 1;
  } else {
    let less = 0;
    for (let i = 0; i <= r; i++) less += pmf[i]!;
    let greater = 0;
    for (let i = r; i < pmf.length; i++) greater += pmf[i]!;
    pValue = Math.min(1, Math.max(0, 2 * Math.min(less, greater)));
  }
  return { ...base, pValue, z: null };
}
