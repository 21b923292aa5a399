/**
 * The paired bootstrap of a mean difference, in two pure steps so that each can be checked alone:
 * 1. `stratifiedResampleIndices(strata, resamples, rng)`: the resamples as plain data, a row-major
 *    resamples x n matrix of indices into the values; each row draws, within every stratum, as
 *    many members of that stratum as it has, uniformly with replacement (cases are resampled
 *    within their fold, so every resample keeps the folds' sizes). Seeded with our Rng (STYLE
 *    rule 8), so a study's intervals replay exactly.
 * 2. `bootstrapCi(values, indices, resamples, level)`: the mean of each resample and the
 *    percentile interval of those means, with numpy's default (linear) percentile, as
 *    `np.percentile(values[indices].mean(axis=1), [2.5, 97.5])`; the fixture script
 *    test/fixtures/stats/make_stats_fixtures.py computes that in numpy from the same matrix.
 */
import type { Rng } from '../core/index.js';

export const BOOTSTRAP_DEFAULTS = { resamples: 10_000, level: 0.95 } as const;

/** Quantile `q` of ascending `sorted` values with linear interpolation (numpy's default method). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

/** Row-major resamples x strata.length indices; row r holds resample r (see the file comment). */
export function stratifiedResampleIndices(strata: readonly (string | number)[], resamples: number, rng: Rng): Int32Array {
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  const members = new Map<string | number, number[]>();
  strata.forEach((stratum, i) => {
    const list = members.get(stratum);
    if (list === undefined) members.set(stratum, [i]);
    else list.push(i);
  });
  // Strata in order of first appearance, so the draws depend only on the input order.
  const groups = [...members.values()];
  const n = strata.length;
  const indices = new Int32Array(resamples * n);
  for (let r = 0; r < resamples; r++) {
    let k = r * n;
    for (const group of groups) for (let j = 0; j < group.length; j++) indices[k++] = group[rng.int(0, group.length)]!;
  }
  return indices;
}

export interface BootstrapCi {
  /** Mean of the values themselves (the point estimate). */
  mean: number;
  low: number;
  high: number;
  level: number;
  resamples: number;
}

/** The percentile interval of the resample means (`indices` from stratifiedResampleIndices or any resamples x n matrix). */
export function bootstrapCi(values: readonly number[], indices: Int32Array, resamples: number, level: number = BOOTSTRAP_DEFAULTS.level): BootstrapCi {
  const n = values.length;
  if (n === 0) throw new RangeError('bootstrapCi: no values');
  if (indices.length !== resamples * n) throw new RangeError(`bootstrapCi: ${indices.length} indices are not ${resamples} resamples of ${n}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`bootstrapCi: level must be in (0, 1), got ${level}`);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let j = r * n; j < (r + 1) * n; j++) sum += values[indices[j]!]!;
    means[r] = sum / n;
  }
  means.sort();
  const tail = (1 - level) / 2;
  return { mean: values.reduce((s, v) => s + v, 0) / n, low: quantileSorted(means, tail), high: quantileSorted(means, 1 - tail), level, resamples };
}

/** Both steps: the stratified paired bootstrap interval of the mean of `values`. */
export function stratifiedBootstrapCi(values: readonly number[], strata: readonly (string | number)[], rng: Rng, options: { resamples?: number; level?: number } = {}): BootstrapCi {
  if (strata.length !== values.length) throw new RangeError(`stratifiedBootstrapCi: ${values.length} values but ${strata.length} strata`);
  const resamples = options.resamples ?? BOOTSTRAP_DEFAULTS.resamples;
  return bootstrapCi(values, stratifiedResampleIndices(strata, resamples, rng), resamples, options.level ?? BOOTSTRAP_DEFAULTS.level);
}
