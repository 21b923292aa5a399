/**
 * The batch loader's host loops in the addon (native/src/host_kernels.cpp), over JS typed arrays
 * in place, no tensor involved: each computes what src/data/sampling's JavaScript computed, value
 * for value (the same float64 and float32 operations in the same order), at a fraction of the cost.
 * - hostCropInto: crop [C, z, y, x] at a corner into a given array, `padValue` outside the case;
 * - hostPlaneLabels: the dummy-2D spatial step's label vote from gridSample's corner weights;
 * - hostGammaPrepare / hostGammaFinish: gamma's host passes before and after its power;
 * - hostFlipInPlace: mirroring along any of the three axes;
 * - hostContrastInPlace: the contrast step (statistics, then the clamped scaling);
 * - hostZeroNegative: every negative label set to 0;
 * - hostBlurAxis: one axis of the Gaussian blur (fused multiply-adds in kernel order from +0,
 *   reflect padding: how libtorch's conv3d summed on the EPYC measured); false where the CPU lacks AVX2 or FMA.
 * The callers (src/data/sampling) document the arithmetic; their tests compare against it.
 */
import { binding } from './binding.js';

type Triple = readonly [number, number, number];

/** Crop `source` [channels, ...caseShape] at `lowerBound` to `patch` into `target` (channels x patch values), `padValue` outside the case. */
export function hostCropInto<T extends Float32Array | Int8Array>(source: T, channels: number, caseShape: Triple, lowerBound: Triple, patch: Triple, padValue: number, target: T): void {
  binding.cropInto(source, channels, caseShape, lowerBound, patch, padValue, target);
}

/**
 * The label vote of plane_resample.ts planeLabels into `out` [planes, points]: per point the
 * nw corner's offset, its 4 float32 weights and which corners lie inside a [height, width] plane.
 */
export function hostPlaneLabels(
  seg: Int8Array, planes: number, height: number, width: number, offset: Int32Array, weights: Float32Array, inside: Uint8Array, outside: Uint8Array, out: Int8Array,
): void {
  binding.planeLabels(seg, planes, height, width, offset, weights, inside, outside, out);
}

/** Gamma's statistics of y = sign x and x replaced by f32(y - low) / scaleDown; returns [mean, std, low, scaleUp]. */
export function hostGammaPrepare(x: Float32Array, sign: 1 | -1): [number, number, number, number] {
  return binding.gammaPrepare(x, sign);
}

/** Gamma after its power (in x): scaled back in float32, then the mean and std of y restored, times sign. */
export function hostGammaFinish(x: Float32Array, sign: 1 | -1, mean: number, std: number, low: number, scaleUp: number): void {
  binding.gammaFinish(x, sign, mean, std, low, scaleUp);
}

/** Reverse `volumes` consecutive [z, y, x] volumes of `data` in place along the flagged axes [z, y, x]. */
export function hostFlipInPlace(data: Float32Array | Int8Array, volumes: number, shape: Triple, flips: readonly [boolean, boolean, boolean]): void {
  binding.flipInPlace(data, volumes, shape, flips.map((flip) => (flip ? 1 : 0)));
}

/** x = min(max, max(min, (x - mean) factor + mean)), the statistics of x before the change (JavaScript's Math.min and Math.max). */
export function hostContrastInPlace(x: Float32Array, factor: number): void {
  binding.contrastInPlace(x, factor);
}

/** Every negative value of `labels` set to 0, in place. */
export function hostZeroNegative(labels: Int8Array): void {
  binding.zeroNegative(labels);
}

/**
 * One pass of a 1D kernel (odd size, radius below the axis length) along `axis` of a [z, y, x]
 * volume, reflect-padded, into `out` (not `input`). Returns false, computing nothing, where the
 * CPU lacks AVX2 or FMA.
 */
export function hostBlurAxis(input: Float32Array, shape: Triple, axis: 0 | 1 | 2, kernel: Float32Array, out: Float32Array): boolean {
  return binding.blurAxis(input, shape, axis, kernel, out);
}
