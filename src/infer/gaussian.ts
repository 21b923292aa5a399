/**
 * The Gaussian importance map that weights each window's logits before they are blended (nnunetv2
 * inference/sliding_window_prediction.py `compute_gaussian`, NNUNET.md section 5): a unit impulse at
 * the window centre (index size // 2 per axis) smoothed by scipy's `gaussian_filter(sigma = patch *
 * sigmaScale, mode='constant', truncate=4)`, scaled so that its maximum is `valueScaling`, and with
 * any zeros replaced by the smallest nonzero value (the blend divides by summed weights).
 *
 * The filtered impulse is separable: per axis the normalised kernel value at the offset from the
 * centre (0 beyond the truncation radius int(4 sigma + 0.5)). The normalisation cancels when
 * scaling to the maximum, so the map is valueScaling * prod_axes exp(-offset^2 / (2 sigma^2)).
 * We keep it in float32 (nnU-Net casts it to fp16).
 */
import type { Triple } from './slidingWindow.js';

export const GAUSSIAN_DEFAULTS = { sigmaScale: 1 / 8, valueScaling: 10, truncate: 4 } as const;

/** Unnormalised 1D profile along one axis of length `size` (float64). */
function axisProfile(size: number, sigma: number, truncate: number): Float64Array {
  const centre = Math.floor(size / 2);
  const radius = Math.floor(truncate * sigma + 0.5);
  const profile = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const offset = i - centre;
    profile[i] = Math.abs(offset) <= radius ? Math.exp((-0.5 * offset * offset) / (sigma * sigma)) : 0;
  }
  return profile;
}

/** The importance map of a window of `patch` [z, y, x] voxels, x fastest (float32, length prod(patch)). */
export function gaussianImportanceMap(
  patch: readonly number[],
  sigmaScale: number = GAUSSIAN_DEFAULTS.sigmaScale,
  valueScaling: number = GAUSSIAN_DEFAULTS.valueScaling,
): Float32Array {
  if (patch.length !== 3 || patch.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new RangeError(`gaussianImportanceMap: patch must be 3 positive integers, got [${patch.join(', ')}]`);
  }
  if (!(sigmaScale > 0) || !(valueScaling > 0)) throw new RangeError('gaussianImportanceMap: sigmaScale and valueScaling must be > 0');
  const [pz, py, px] = patch as Triple;
  const [gz, gy, gx] = [pz, py, px].map((size) => axisProfile(size, size * sigmaScale, GAUSSIAN_DEFAULTS.truncate)) as [Float64Array, Float64Array, Float64Array];
  // The centre holds the product of the three maxima (each profile is 1 at its centre).
  const peak = gz[Math.floor(pz / 2)]! * gy[Math.floor(py / 2)]! * gx[Math.floor(px / 2)]!;
  const scale = valueScaling / peak;
  const map = new Float32Array(pz * py * px);
  let index = 0;
  let smallestNonzero = Infinity;
  for (let z = 0; z < pz; z++) {
    for (let y = 0; y < py; y++) {
      const zy = gz[z]! * gy[y]! * scale;
      for (let x = 0; x < px; x++, index++) {
        const value = Math.fround(zy * gx[x]!);
        map[index] = value;
        if (value > 0 && value < smallestNonzero) smallestNonzero = value;
      }
    }
  }
  for (let i = 0; i < map.length; i++) if (map[i] === 0) map[i] = smallestNonzero;
  return map;
}
