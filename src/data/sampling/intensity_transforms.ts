/**
 * nnU-Net's point-wise intensity augmentations (batchgeneratorsv2 transforms/intensity, as
 * configured by nnUNetTrainer.get_training_transforms; NNUNET.md section 4), as tight loops over the
 * host float32 patch (except gamma's power, see powerStep):
 * - Gaussian noise (p 0.1): sigma ~ U(0, 0.1), shared by all channels, x += N(0, sigma^2). The
 *   noise field comes from a seeded Rng whose seed is in the parameters;
 * - multiplicative brightness (p 0.15): per channel x *= BGContrast(0.75, 1.25);
 * - contrast (p 0.15): per channel x = (x - mean) * BGContrast(0.75, 1.25) + mean, clamped to the
 *   channel's [min, max] before the change;
 * - gamma (p 0.3) and inverted gamma (p 0.1): per channel gamma ~ BGContrast(0.7, 1.5); (negate);
 *   min-max to [0, 1]; x ** gamma; back to the range; restore mean and (unbiased) std; (negate).
 * Reductions accumulate in float64; results are stored as float32. The gamma power runs in libtorch
 * (float32), the rest in host loops (gamma's float32 scaling around the power as libtorch computed
 * it, value for value). With ApplyContext.reuseInput the result is written into the input's image.
 */
import { Rng } from '../../core/index.js';
import { fromArray, pow, scope } from '../../tensor/index.js';
import { sampleBgContrast, type ApplyContext, type AugmentMeta, type PatchSample, type Transform } from './augment_types.js';

export interface NoiseParams {
  sigma: number;
  /** Seed of the Rng that draws the noise field. */
  seed: number;
}

export interface ChannelFactor {
  channel: number;
  factor: number;
}

export interface GammaParams {
  invert: boolean;
  channels: { channel: number; gamma: number }[];
}

function channelView(sample: PatchSample, channel: number): Float32Array {
  const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
  return sample.image.subarray(channel * size, (channel + 1) * size);
}

function withImage(sample: PatchSample, image: Float32Array): PatchSample {
  return { ...sample, image };
}

/** The sample whose image a transform writes: the input itself when the caller gives it up, else a copy. */
function writable(sample: PatchSample, context: ApplyContext): PatchSample {
  return context.reuseInput === true ? sample : withImage(sample, sample.image.slice());
}

/** Fill `out` with standard normal samples (Box-Muller, both values of each pair used). */
export function fillStandardNormal(rng: Rng, out: Float32Array): void {
  for (let i = 0; i < out.length; i += 2) {
    let u = (rng.nextUint32() + 0.5) / 4294967296;
    const v = rng.nextUint32() / 4294967296;
    if (u <= 0) u = Number.MIN_VALUE;
    const radius = Math.sqrt(-2 * Math.log(u));
    out[i] = radius * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = radius * Math.sin(2 * Math.PI * v);
  }
}

/** Noise values made at a time: an even count, so the chunks continue one field's pairs. */
const NOISE_CHUNK = 8192;

export const gaussianNoise: Transform<NoiseParams> = {
  name: 'gaussianNoise',
  sample: (rng) => ({ sigma: rng.uniform(0, 0.1), seed: rng.nextUint32() }),
  apply(sample, params, context) {
    const out = writable(sample, context);
    const image = out.image;
    const source = sample.image;
    // The noise field from its seed, a chunk at a time (the same values as one fill of the whole field).
    const rng = new Rng(params.seed);
    const chunk = new Float32Array(Math.min(NOISE_CHUNK, image.length));
    for (let start = 0; start < image.length; start += NOISE_CHUNK) {
      const noise = chunk.subarray(0, Math.min(NOISE_CHUNK, image.length - start));
      fillStandardNormal(rng, noise);
      for (let j = 0; j < noise.length; j++) image[start + j] = source[start + j]! + params.sigma * noise[j]!;
    }
    return out;
  },
};

function perChannelFactors(rng: Rng, meta: AugmentMeta, low: number, high: number): ChannelFactor[] {
  return Array.from({ length: meta.channels }, (_, channel) => ({ channel, factor: sampleBgContrast(rng, low, high) }));
}

export const brightness: Transform<ChannelFactor[]> = {
  name: 'brightness',
  sample: (rng, meta) => perChannelFactors(rng, meta, 0.75, 1.25),
  apply(sample, params, context) {
    const out = writable(sample, context);
    for (const { channel, factor } of params) {
      const x = channelView(out, channel);
      for (let i = 0; i < x.length; i++) x[i] = x[i]! * factor;
    }
    return out;
  },
};

/** Sum (float64, in index order), mean, min and max of x: one pass. */
function moments(x: Float32Array): { sum: number; mean: number; min: number; max: number } {
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { sum, mean: sum / x.length, min, max };
}

/** The unbiased standard deviation from the sum of squared deviations of `count` values. */
function stdOf(squares: number, count: number): number {
  return count > 1 ? Math.sqrt(squares / (count - 1)) : 0;
}

export const contrast: Transform<ChannelFactor[]> = {
  name: 'contrast',
  sample: (rng, meta) => perChannelFactors(rng, meta, 0.75, 1.25),
  apply(sample, params, context) {
    const out = writable(sample, context);
    for (const { channel, factor } of params) {
      const x = channelView(out, channel);
      const { mean, min, max } = moments(x);
      for (let i = 0; i < x.length; i++) x[i] = Math.min(max, Math.max(min, (x[i]! - mean) * factor + mean));
    }
    return out;
  },
};

const GAMMA_EPSILON = 1e-7;

/**
 * One channel's gamma in place: with s = -1 (inverted) or 1, y = s x; the statistics of y (mean,
 * min, max, unbiased std); t = ((y - min) / max(range, eps)) ** gamma * range + min; then
 * s ((t - mean_t) std_y / max(std_t, eps) + mean_y). Sums and the rescaling in float64, stored as
 * float32; the scaling around the power in float32 as libtorch's sub, div, mul and add compute it
 * (each a float32 operation with the scalar cast to float32: the same values); the power in libtorch
 * (vectorised; a per-voxel Math.pow in JavaScript costs more than the rest of the loader's intensity
 * steps together). The statistics of -x are those of x negated (min and max swapped), sums included:
 * rounding is symmetric, so y is never stored. Five passes over the channel and one power.
 */
function gammaChannel(x: Float32Array, sign: number, gamma: number, context: ApplyContext): void {
  const f32 = Math.fround;
  const n = x.length;
  const m = moments(x);
  const mean = sign * m.mean;
  const min = sign === 1 ? m.min : -m.max;
  const range = (sign === 1 ? m.max : -m.min) - min;
  const low = f32(min);
  const scaleDown = f32(Math.max(range, GAMMA_EPSILON));
  const scaleUp = f32(range);
  // The squared deviations of y, and x replaced by (y - min) / denominator.
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const y = sign * x[i]!;
    squares += (y - mean) ** 2;
    x[i] = f32(y - low) / scaleDown;
  }
  const std = stdOf(squares, n);
  // The power written back over its input (no new array).
  scope(() => pow(fromArray(x, [n], { device: context.device }), gamma).copyInto(x));
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const t = f32(f32(x[i]! * scaleUp) + low);
    x[i] = t;
    sum += t;
  }
  const meanAfter = sum / n;
  let squaresAfter = 0;
  for (let i = 0; i < n; i++) squaresAfter += (x[i]! - meanAfter) ** 2;
  const factor = std / Math.max(stdOf(squaresAfter, n), GAMMA_EPSILON);
  for (let i = 0; i < n; i++) x[i] = sign * ((x[i]! - meanAfter) * factor + mean);
}

function gammaTransform(name: string, invert: boolean): Transform<GammaParams> {
  return {
    name,
    sample: (rng, meta) => ({
      invert,
      channels: Array.from({ length: meta.channels }, (_, channel) => ({ channel, gamma: sampleBgContrast(rng, 0.7, 1.5) })),
    }),
    apply(sample, params, context) {
      const out = writable(sample, context);
      for (const { channel, gamma } of params.channels) gammaChannel(channelView(out, channel), params.invert ? -1 : 1, gamma, context);
      return out;
    },
  };
}

export const invertedGamma = gammaTransform('invertedGamma', true);
export const gamma = gammaTransform('gamma', false);
