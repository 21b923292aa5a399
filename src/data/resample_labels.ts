/**
 * Label-map resizing by one-hot linear interpolation, computed the way scipy computes it so that the
 * 0.5 threshold decides ties exactly as nnU-Net (batchgenerators `resize_segmentation`) does.
 *
 * For every label L (ascending), nnU-Net resizes the mask (seg == L) linearly and gives L to the
 * voxels whose value reaches the threshold; later labels overwrite earlier ones and voxels no label
 * reaches stay 0. This is done here in one pass: for each output voxel the 2^k neighbours (k = number
 * of resized axes) are visited in C order, and each label's value is accumulated as scipy's
 * NI_ZoomShift does (t += ((1 * w_axis0) * w_axis1) * w_axis2, weights w0 = 1 - f, w1 = 1 - w0);
 * the output is the largest label that reaches the threshold. Summing in a different order (e.g.
 * separable passes) flips voxels whose value is 0.5 up to rounding.
 */
import type { Shape3 } from '../core/index.js';
import type { NumericArray } from './resample_axis.js';

interface LinearAxis {
  low: Int32Array;
  high: Int32Array;
  weightLow: Float64Array;
  weightHigh: Float64Array;
}

function linearAxis(inSize: number, outSize: number): LinearAxis {
  const low = new Int32Array(outSize);
  const high = new Int32Array(outSize);
  const weightLow = new Float64Array(outSize);
  const weightHigh = new Float64Array(outSize);
  for (let j = 0; j < outSize; j++) {
    if (inSize === outSize) {
      low[j] = j;
      high[j] = j;
      weightLow[j] = 1;
      weightHigh[j] = 0;
      continue;
    }
    let c = (j + 0.5) * (inSize / outSize) - 0.5;
    c = Math.min(Math.max(c, 0), inSize - 1);
    const base = Math.floor(c);
    const fraction = c - base;
    low[j] = base;
    high[j] = Math.min(base + 1, inSize - 1);
    weightLow[j] = 1 - fraction;
    weightHigh[j] = 1 - weightLow[j]!;
  }
  return { low, high, weightLow, weightHigh };
}

/**
 * Resize a label map with one-hot linear interpolation on every axis whose size changes.
 * `strict`: a label needs a value > threshold (nnU-Net's separate-z path: round(v) > 0.5) instead
 * of >= threshold (resize_segmentation).
 */
export function resizeLabelsLinear(
  labels: NumericArray,
  shape: Shape3,
  newShape: Shape3,
  threshold = 0.5,
  strict = false,
): Int8Array {
  const [, ny, nx] = shape;
  const [oz, oy, ox] = newShape;
  const az = linearAxis(shape[0], oz);
  const ay = linearAxis(ny, oy);
  const ax = linearAxis(nx, ox);
  const output = new Int8Array(oz * oy * ox);
  const neighbourLabel = new Float64Array(8);
  const neighbourWeight = new Float64Array(8);
  const sums = new Float64Array(8);
  const distinct = new Float64Array(8);
  let index = 0;
  for (let z = 0; z < oz; z++) {
    const zIdx = [az.low[z]!, az.high[z]!];
    const zW = [az.weightLow[z]!, az.weightHigh[z]!];
    for (let y = 0; y < oy; y++) {
      const yIdx = [ay.low[y]!, ay.high[y]!];
      const yW = [ay.weightLow[y]!, ay.weightHigh[y]!];
      for (let x = 0; x < ox; x++, index++) {
        const x0 = ax.low[x]!;
        const x1 = ax.high[x]!;
        const xW0 = ax.weightLow[x]!;
        const xW1 = ax.weightHigh[x]!;
        let n = 0;
        let uniform = true;
        for (let a = 0; a < 2; a++) {
          const zOffset = zIdx[a]! * ny;
          for (let b = 0; b < 2; b++) {
            const row = (zOffset + yIdx[b]!) * nx;
            const zy = zW[a]! * yW[b]!;
            neighbourLabel[n] = labels[row + x0]!;
            neighbourWeight[n++] = zy * xW0;
            neighbourLabel[n] = labels[row + x1]!;
            neighbourWeight[n++] = zy * xW1;
          }
        }
        const first = neighbourLabel[0]!;
        for (let k = 1; k < 8; k++) if (neighbourLabel[k] !== first) uniform = false;
        if (uniform) {
          // Every weight goes to one label; their sum is 1 up to rounding, far above any threshold < 1.
          output[index] = first;
          continue;
        }
        let count = 0;
        for (let k = 0; k < 8; k++) {
          const label = neighbourLabel[k]!;
          let slot = 0;
          while (slot < count && distinct[slot] !== label) slot++;
          if (slot === count) {
            distinct[count] = label;
            sums[count++] = 0;
          }
          sums[slot]! += neighbourWeight[k]!;
        }
        let result = 0;
        let found = false;
        for (let slot = 0; slot < count; slot++) {
          const reached = strict ? sums[slot]! > threshold : sums[slot]! >= threshold;
          if (reached && (!found || distinct[slot]! > result)) {
            result = distinct[slot]!;
            found = true;
          }
        }
        output[index] = found ? result : 0;
      }
    }
  }
  return output;
}
