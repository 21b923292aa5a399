/**
 * Normalised surface Dice (Nikolov et al.) and the area-weighted robust Hausdorff distance, from
 * the per-point distances of surface.ts, as google-deepmind/surface-distance computes them
 * (compute_surface_dice_at_tolerance, compute_robust_hausdorff).
 *
 * Empty masks (our choices, each noted where it differs from the library):
 * - both empty: NSD NaN (the library gives 0/0 = NaN too); HD NaN (the library gives +inf; we
 *   return NaN so the case is left out of means and counted as "both empty", like DSC);
 * - one empty: NSD 0 and HD +Infinity, as the library.
 */
import { surfaceDistances, totalArea, type SurfaceDistances } from './surface.js';
import { checkSpacing, type BinaryMask } from './mask.js';
import { InputError } from '../core/index.js';

/** NSD at `toleranceMm` (inclusive: a point at exactly the tolerance counts as overlapping). */
export function surfaceDiceFromDistances(distances: SurfaceDistances, toleranceMm: number): number {
  checkTolerance(toleranceMm);
  const within = (d: Float64Array, a: Float64Array): number => {
    let sum = 0;
    for (let i = 0; i < d.length; i++) if (d[i]! <= toleranceMm) sum += a[i]!;
    return sum;
  };
  const numerator = within(distances.distancesPredToRef, distances.areasPred) + within(distances.distancesRefToPred, distances.areasRef);
  const denominator = totalArea(distances.areasPred) + totalArea(distances.areasRef);
  return denominator === 0 ? NaN : numerator / denominator;
}

/**
 * Robust Hausdorff distance: the larger of the two directed `percent`-th percentiles, each taken
 * on the area-weighted distances as the library does: sort the points by (distance, area), and
 * take the distance of the first point whose cumulative area fraction reaches percent / 100.
 */
export function robustHausdorffFromDistances(distances: SurfaceDistances, percent = 95): number {
  if (!(percent >= 0 && percent <= 100)) throw new InputError(`percent must be in [0, 100], got ${percent}`);
  const { distancesPredToRef, distancesRefToPred } = distances;
  if (distancesPredToRef.length === 0 && distancesRefToPred.length === 0) return NaN;
  return Math.max(
    directedPercentile(distancesPredToRef, distances.areasPred, distances.codesPred, percent),
    directedPercentile(distancesRefToPred, distances.areasRef, distances.codesRef, percent),
  );
}

/**
 * The library sorts (distance, area) pairs and walks the cumulative area. Points with the same
 * code have the same area, so we sort each code's distances natively and merge the (at most 254)
 * sorted runs with a small heap keyed by (distance, area): the same order without a comparator
 * sort of millions of pairs. The running sum is divided by the total as the library does
 * (the library's total is numpy's pairwise sum; ours is sequential, which can only matter when
 * a cumulative fraction equals percent / 100 to the last bit).
 */
function directedPercentile(distances: Float64Array, areas: Float64Array, codes: Uint8Array, percent: number): number {
  const n = distances.length;
  if (n === 0) return Infinity;
  const counts = new Int32Array(257);
  for (let i = 0; i < n; i++) counts[codes[i]! + 1]!++;
  for (let c = 0; c < 256; c++) counts[c + 1]! += counts[c]!;
  const runStart = counts.slice(0, 256);
  const grouped = new Float64Array(n);
  const cursor = runStart.slice();
  for (let i = 0; i < n; i++) grouped[cursor[codes[i]!]!++] = distances[i]!;
  const areaOfCode = new Float64Array(256);
  for (let i = 0; i < n; i++) areaOfCode[codes[i]!] = areas[i]!;

  // Min-heap of codes with points left, keyed by (next distance, area).
  const heap: number[] = [];
  const position = runStart.slice();
  const runEnd = counts.slice(1, 257);
  const key = (code: number): number => grouped[position[code]!]!;
  const less = (a: number, b: number): boolean => {
    const da = key(a);
    const db = key(b);
    return da < db || (da === db && areaOfCode[a]! < areaOfCode[b]!);
  };
  const siftDown = (start: number): void => {
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && less(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && less(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  };
  for (let code = 0; code < 256; code++) {
    if (runEnd[code]! > runStart[code]!) {
      grouped.subarray(runStart[code]!, runEnd[code]!).sort();
      heap.push(code);
    }
  }
  for (let i = Math.floor(heap.length / 2) - 1; i >= 0; i--) siftDown(i);

  const total = totalArea(areas);
  const fraction = percent / 100;
  let cumulative = 0;
  let last = 0;
  while (heap.length > 0) {
    const code = heap[0]!;
    last = grouped[position[code]!]!;
    cumulative += areaOfCode[code]!;
    if (cumulative / total >= fraction) return last;
    position[code]!++;
    if (position[code]! === runEnd[code]!) {
      heap[0] = heap[heap.length - 1]!;
      heap.pop();
    }
    siftDown(0);
  }
  // The fraction never reached (rounding): the library clamps to the last point.
  return last;
}

function checkTolerance(toleranceMm: number): void {
  if (!(Number.isFinite(toleranceMm) && toleranceMm >= 0)) {
    throw new InputError(`NSD tolerance must be a finite number of mm >= 0, got ${toleranceMm}`);
  }
}

/** Normalised surface Dice of pred against ref at `toleranceMm` (default 3 mm). */
export function normalizedSurfaceDice(pred: BinaryMask, ref: BinaryMask, spacingMm: readonly number[], toleranceMm = 3): number {
  checkTolerance(toleranceMm);
  checkSpacing(spacingMm, 'normalizedSurfaceDice');
  return surfaceDiceFromDistances(surfaceDistances(pred, ref, spacingMm), toleranceMm);
}

/** Area-weighted 95th-percentile Hausdorff distance (mm) between the surfaces of pred and ref. */
export function hausdorff95(pred: BinaryMask, ref: BinaryMask, spacingMm: readonly number[]): number {
  return robustHausdorffFromDistances(surfaceDistances(pred, ref, spacingMm), 95);
}
