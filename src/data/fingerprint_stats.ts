/**
 * Order statistics with numpy's default ("linear") percentile definition, for small lists (planning)
 * and for the large pooled intensity samples of the fingerprint (selection, no full sort).
 */
import type { IntensityProperties } from './normalize.js';

/** np.percentile(values, q) with linear interpolation; sorts a copy. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('percentile of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const position = (q / 100) * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Rearrange `a` so that a[k] is the k-th smallest (Floyd-Rivest-free Hoare quickselect). */
function select(a: Float32Array | Float64Array, k: number, left = 0, right = a.length - 1): void {
  while (right > left) {
    // Median of three as the pivot keeps sorted or constant runs from degrading.
    const mid = (left + right) >>> 1;
    const x = a[left]!;
    const y = a[mid]!;
    const z = a[right]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return;
  }
}

/**
 * Linear-interpolated percentiles of a large sample, reordering it in place. `qs` ascending
 * is fastest (each selection narrows the next one's range).
 */
export function percentilesInPlace(a: Float32Array | Float64Array, qs: readonly number[]): number[] {
  const n = a.length;
  if (n === 0) return qs.map(() => Number.NaN);
  return qs.map((q) => {
    const position = (q / 100) * (n - 1);
    const low = Math.floor(position);
    select(a, low);
    const lowValue = a[low]!;
    if (low + 1 >= n || position === low) return lowValue;
    // The next order statistic is the smallest value right of `low` after selection.
    let next = Infinity;
    for (let i = low + 1; i < n; i++) if (a[i]! < next) next = a[i]!;
    return lowValue + (next - lowValue) * (position - low);
  });
}

/**
 * nnU-Net's per-channel foreground statistics of a pooled sample (mean, median, std, min, max,
 * 0.5 and 99.5 percentiles); accumulates in float64. Reorders `samples`.
 */
export function intensityProperties(samples: Float32Array | Float64Array): IntensityProperties {
  const n = samples.length;
  if (n === 0) {
    return { mean: Number.NaN, median: Number.NaN, std: Number.NaN, min: Number.NaN, max: Number.NaN, percentile_00_5: Number.NaN, percentile_99_5: Number.NaN };
  }
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = samples[i]!;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const d = samples[i]! - mean;
    squares += d * d;
  }
  const [p005, p50, p995] = percentilesInPlace(samples, [0.5, 50, 99.5]);
  return { mean, median: p50!, std: Math.sqrt(squares / n), min, max, percentile_00_5: p005!, percentile_99_5: p995! };
}
