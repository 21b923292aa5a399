/**
 * Intensity normalisation schemes of nnU-Net (nnunetv2 preprocessing/normalization/
 * default_normalization_schemes.py, NNUNET.md section 2), in place on float32 channels, with
 * float32 arithmetic as nnU-Net's in-place numpy operations have:
 * - CT: clip to the dataset's foreground [0.5, 99.5] percentiles, subtract the foreground mean,
 *   divide by max(foreground std, 1e-8) (global per-channel statistics from the fingerprint);
 * - z-score: per image mean/std (only voxels with seg >= 0 when the plan says use the mask, the
 *   others stay untouched);
 * - rescale to [0, 1]; RGB / 255; none.
 * The scheme is chosen from the channel name as nnU-Net does (map_channel_name_to_normalization).
 */
import { InputError } from '../core/index.js';

export type NormalizationScheme = 'ct' | 'zscore' | 'rescale_to_0_1' | 'rgb_to_0_1' | 'none';

export const NORMALIZATION_SCHEMES: readonly NormalizationScheme[] = ['ct', 'zscore', 'rescale_to_0_1', 'rgb_to_0_1', 'none'];

/** Foreground intensity statistics of one channel (nnU-Net's names for the percentiles). */
export interface IntensityProperties {
  mean: number;
  median: number;
  std: number;
  min: number;
  max: number;
  percentile_00_5: number;
  percentile_99_5: number;
}

/** nnU-Net `get_normalization_scheme`: 'CT' -> ct, 'noNorm' -> none, ..., anything else z-score. */
export function normalizationForChannel(channelName: string): NormalizationScheme {
  switch (channelName.toLowerCase()) {
    case 'ct':
      return 'ct';
    case 'nonorm':
      return 'none';
    case 'zscore':
      return 'zscore';
    case 'rescale_to_0_1':
      return 'rescale_to_0_1';
    case 'rgb_to_0_1':
      return 'rgb_to_0_1';
    default:
      return 'zscore';
  }
}

const f32 = Math.fround;

/** CT normalisation in place; returns `data`. */
export function ctNormalize(
  data: Float32Array,
  properties: Pick<IntensityProperties, 'mean' | 'std' | 'percentile_00_5' | 'percentile_99_5'>,
): Float32Array {
  const lower = f32(properties.percentile_00_5);
  const upper = f32(properties.percentile_99_5);
  const mean = f32(properties.mean);
  const std = f32(Math.max(properties.std, 1e-8));
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    const clipped = v < lower ? lower : v > upper ? upper : v;
    data[i] = f32(clipped - mean) / std;
  }
  return data;
}

/**
 * Z-score normalisation in place. With `segmentation` (the cropped label map, -1 outside the
 * nonzero mask), only voxels with seg >= 0 are used and changed.
 */
export function zscoreNormalize(data: Float32Array, segmentation: Int8Array | null = null): Float32Array {
  if (segmentation !== null && segmentation.length !== data.length) {
    throw new RangeError(`zscoreNormalize: mask has ${segmentation.length} voxels, image ${data.length}`);
  }
  const inside = (i: number): boolean => segmentation === null || segmentation[i]! >= 0;
  let count = 0;
  let sum = 0;
  for (let i = 0; i < data.length; i++) {
    if (inside(i)) {
      sum += data[i]!;
      count++;
    }
  }
  if (count === 0) return data;
  const meanExact = sum / count;
  let squares = 0;
  for (let i = 0; i < data.length; i++) {
    if (inside(i)) {
      const d = data[i]! - meanExact;
      squares += d * d;
    }
  }
  const mean = f32(meanExact);
  const std = f32(Math.max(Math.sqrt(squares / count), 1e-8));
  for (let i = 0; i < data.length; i++) if (inside(i)) data[i] = f32(data[i]! - mean) / std;
  return data;
}

/** x -= min(x); x /= max(max(x), 1e-8), in place. */
export function rescaleTo01(data: Float32Array): Float32Array {
  let min = Infinity;
  for (let i = 0; i < data.length; i++) if (data[i]! < min) min = data[i]!;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    data[i] = f32(data[i]! - min);
    if (data[i]! > max) max = data[i]!;
  }
  const divisor = f32(Math.max(max, 1e-8));
  for (let i = 0; i < data.length; i++) data[i] = data[i]! / divisor;
  return data;
}

/** x / 255, in place. */
export function rgbTo01(data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) data[i] = data[i]! / 255;
  return data;
}

export interface ChannelNormalization {
  scheme: NormalizationScheme;
  useMaskForNorm: boolean;
  /** Required for 'ct'. */
  intensityProperties?: IntensityProperties | undefined;
}

/** Apply one channel's planned normalisation in place. */
export function normalizeChannel(data: Float32Array, segmentation: Int8Array, settings: ChannelNormalization): Float32Array {
  switch (settings.scheme) {
    case 'ct':
      if (settings.intensityProperties === undefined) {
        throw new InputError('CT normalisation needs the foreground intensity statistics in the plan', { code: 'bad-plan' });
      }
      return ctNormalize(data, settings.intensityProperties);
    case 'zscore':
      return zscoreNormalize(data, settings.useMaskForNorm ? segmentation : null);
    case 'rescale_to_0_1':
      return rescaleTo01(data);
    case 'rgb_to_0_1':
      return rgbTo01(data);
    case 'none':
      return data;
  }
}
