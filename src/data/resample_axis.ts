/**
 * One-axis resampling kernels with scipy.ndimage semantics, the building block of every resize in
 * preprocessing. A 3D resize of a C-contiguous [z, y, x] array is done one axis at a time: the
 * B-spline prefilter and the tensor-product evaluation scipy uses are both separable, so the passes
 * give scipy's result (up to float rounding; intermediates between passes are float32).
 *
 * Coordinates follow `scipy.ndimage.zoom(grid_mode=True)` (what skimage.transform.resize calls) and
 * nnU-Net's separate-z `map_coordinates`: output index j samples input coordinate
 * (j + 0.5) * inSize / outSize - 0.5; for orders 0 and 1 it is clamped to [0, inSize - 1] ('nearest').
 * - order 0: input index floor(c + 0.5) (scipy rounds halves up);
 * - order 1: linear between floor(c) and floor(c) + 1;
 * - order 3: cubic B-spline. As scipy does for mode 'nearest', the line is first padded by 12 edge
 *   values on each side, then prefiltered (pole sqrt(3) - 2, mirror boundary), then evaluated.
 */
import type { Shape3 } from '../core/index.js';

export type InterpolationOrder = 0 | 1 | 3;

/** Padding scipy adds before the spline prefilter in 'nearest' mode (`_prepad_for_spline_filter`). */
const SPLINE_PAD = 12;
const CUBIC_POLE = Math.sqrt(3) - 2;
/** Columns processed together when the resampled axis is not the fastest one (cache blocking). */
const BLOCK_COLUMNS = 256;

/** For each output index: the first input index touched and one weight per tap. */
interface AxisPlan {
  taps: number;
  start: Int32Array;
  weights: Float64Array;
}

/** The input coordinate sampled by output index j (grid_mode / skimage convention). */
export function sourceCoordinate(j: number, inSize: number, outSize: number): number {
  return (j + 0.5) * (inSize / outSize) - 0.5;
}

function planAxis(inSize: number, outSize: number, order: InterpolationOrder): AxisPlan {
  const taps = order === 0 ? 1 : order === 1 ? 2 : 4;
  const start = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  for (let j = 0; j < outSize; j++) {
    const unclamped = sourceCoordinate(j, inSize, outSize);
    // 'nearest' mode clamps the coordinate; the cubic case samples the edge-padded line instead.
    const c = order === 3 ? unclamped : Math.min(Math.max(unclamped, 0), inSize - 1);
    if (order === 0) {
      start[j] = Math.min(Math.floor(c + 0.5), inSize - 1);
      weights[j] = 1;
    } else if (order === 1) {
      const base = Math.floor(c);
      const t = c - base;
      start[j] = base;
      weights[2 * j] = 1 - t;
      weights[2 * j + 1] = t;
    } else {
      // Index into the padded line (SPLINE_PAD edge values on each side).
      const cp = c + SPLINE_PAD;
      const base = Math.floor(cp);
      const t = cp - base;
      const t2 = t * t;
      const t3 = t2 * t;
      const u = 1 - t;
      start[j] = base - 1;
      weights[4 * j] = (u * u * u) / 6;
      weights[4 * j + 1] = (4 - 6 * t2 + 3 * t3) / 6;
      weights[4 * j + 2] = (1 + 3 * t + 3 * t2 - 3 * t3) / 6;
      weights[4 * j + 3] = t3 / 6;
    }
  }
  return { taps, start, weights };
}

/**
 * Cubic B-spline prefilter of `columns` interleaved lines of length n (buffer [n][columns]),
 * in place, with scipy's mirror boundary initialisation.
 */
function prefilterCubic(buffer: Float64Array, n: number, columns: number): void {
  const z = CUBIC_POLE;
  const gain = (1 - z) * (1 - 1 / z);
  const total = n * columns;
  for (let i = 0; i < total; i++) buffer[i]! *= gain;
  if (n === 1) return;
  // Causal initialisation (mirror): c0 = sum_k z^|k| of the mirrored line; terms below 1e-18 dropped.
  const zLast = Math.pow(z, n - 1);
  const lastRow = (n - 1) * columns;
  for (let col = 0; col < columns; col++) {
    let c0 = buffer[col]! + zLast * buffer[lastRow + col]!;
    let zi = z;
    for (let i = 1; i < n - 1 && Math.abs(zi) > 1e-18; i++) {
      c0 += zi * (buffer[i * columns + col]! + zLast * buffer[(n - 1 - i) * columns + col]!);
      zi *= z;
    }
    buffer[col] = c0 / (1 - zLast * zLast);
  }
  for (let i = 1; i < n; i++) {
    const row = i * columns;
    const previous = row - columns;
    for (let col = 0; col < columns; col++) buffer[row + col]! += z * buffer[previous + col]!;
  }
  const beforeLast = (n - 2) * columns;
  for (let col = 0; col < columns; col++) {
    buffer[lastRow + col] = ((z * buffer[beforeLast + col]! + buffer[lastRow + col]!) * z) / (z * z - 1);
  }
  for (let i = n - 2; i >= 0; i--) {
    const row = i * columns;
    const next = row + columns;
    for (let col = 0; col < columns; col++) buffer[row + col] = z * (buffer[next + col]! - buffer[row + col]!);
  }
}

/** A readable, indexable array of numbers (any typed array or plain array). */
export type NumericArray = ArrayLike<number>;

/**
 * Resample a C-contiguous 3D array along one axis to `outSize` samples. Returns float32.
 * `source` may be any numeric typed array (read as numbers).
 */
export function resampleAxis(
  source: NumericArray,
  shape: Shape3,
  axis: 0 | 1 | 2,
  outSize: number,
  order: InterpolationOrder,
): Float32Array {
  const inSize = shape[axis];
  const outer = axis === 0 ? 1 : axis === 1 ? shape[0] : shape[0] * shape[1];
  const inner = axis === 0 ? shape[1] * shape[2] : axis === 1 ? shape[2] : 1;
  const output = new Float32Array(outer * outSize * inner);
  const plan = planAxis(inSize, outSize, order);
  const { taps, start, weights } = plan;
  const padded = order === 3 ? inSize + 2 * SPLINE_PAD : inSize;
  const pad = order === 3 ? SPLINE_PAD : 0;
  const blockWidth = Math.min(inner, BLOCK_COLUMNS);
  const buffer = new Float64Array(padded * blockWidth);

  for (let o = 0; o < outer; o++) {
    const inBase = o * inSize * inner;
    const outBase = o * outSize * inner;
    for (let block = 0; block < inner; block += blockWidth) {
      const columns = Math.min(blockWidth, inner - block);
      // Gather the lines into buffer[padded][columns], edge-padded for the spline.
      for (let i = 0; i < padded; i++) {
        const sourceIndex = Math.min(Math.max(i - pad, 0), inSize - 1);
        const from = inBase + sourceIndex * inner + block;
        const row = i * columns;
        for (let col = 0; col < columns; col++) buffer[row + col] = source[from + col]!;
      }
      if (order === 3) prefilterCubic(buffer, padded, columns);
      for (let j = 0; j < outSize; j++) {
        const to = outBase + j * inner + block;
        const first = start[j]!;
        const w = j * taps;
        if (taps === 1) {
          const row = first * columns;
          for (let col = 0; col < columns; col++) output[to + col] = buffer[row + col]!;
        } else if (taps === 2) {
          const row0 = first * columns;
          const row1 = Math.min(first + 1, padded - 1) * columns;
          const w0 = weights[w]!;
          const w1 = weights[w + 1]!;
          for (let col = 0; col < columns; col++) output[to + col] = w0 * buffer[row0 + col]! + w1 * buffer[row1 + col]!;
        } else {
          const row0 = first * columns;
          const row1 = row0 + columns;
          const row2 = row1 + columns;
          const row3 = row2 + columns;
          const w0 = weights[w]!;
          const w1 = weights[w + 1]!;
          const w2 = weights[w + 2]!;
          const w3 = weights[w + 3]!;
          for (let col = 0; col < columns; col++) {
            output[to + col] =
              w0 * buffer[row0 + col]! + w1 * buffer[row1 + col]! + w2 * buffer[row2 + col]! + w3 * buffer[row3 + col]!;
          }
        }
      }
    }
  }
  return output;
}

/**
 * Resize a 3D array to `newShape` with one interpolation order on every axis (skimage
 * `resize(order, mode='edge', anti_aliasing=False)` without its clipping; see resample.ts).
 * Axes whose size does not change are left untouched (scipy's result there equals the input).
 */
export function resizeArray(
  source: NumericArray,
  shape: Shape3,
  newShape: Shape3,
  order: InterpolationOrder,
  axes: readonly (0 | 1 | 2)[] = [2, 1, 0],
): Float32Array {
  let current: NumericArray = source;
  const currentShape: Shape3 = [shape[0], shape[1], shape[2]];
  for (const axis of axes) {
    if (currentShape[axis] === newShape[axis]) continue;
    current = resampleAxis(current, currentShape, axis, newShape[axis], order);
    currentShape[axis] = newShape[axis];
  }
  return current instanceof Float32Array && current !== source ? current : Float32Array.from(current);
}
