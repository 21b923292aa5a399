/**
 * nnU-Net's point-wise intensity augmentations (batchgeneratorsv2 transforms/intensity, as
 * configured by nnUNetTrainer.get_training_transforms; NNUNET.md section 4), as tight loops over the
 * host float32 patch (gamma's passes in the addon, its power in libtorch, see gammaChannel):
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
import { fromArray, hostContrastInPlace, hostGammaFinish, hostGammaPrepare, pow, scope } from '../../tensor/index.js';
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

export const contrast: Transform<ChannelFactor[]> = {
  name: 'contrast',
  sample: (rng, meta) => perChannelFactors(rng, meta, 0.75, 1.25),
  apply(sample, params, context) {
    const out = writable(sample, context);
    for (const { channel, factor } of params) {
      // In the addon (host_kernels.cpp): the mean (float64 sum in index order), min and max, then
      // x = Math.min(max, Math.max(min, (x - mean) * factor + mean)) in float64, stored as float32.
      hostContrastInPlace(channelView(out, channel), factor);
    }
    return out;
  },
};

/**
 * One channel's gamma in place: with s = -1 (inverted) or 1, y = s x; the statistics of y (mean,
 * min, max, unbiased std); t = ((y - min) / max(range, eps)) ** gamma * range + min; then
 * s ((t - mean_t) std_y / max(std_t, eps) + mean_y). Sums and the rescaling in float64, stored as
 * float32; the scaling around the power in float32 as libtorch's sub, div, mul and add compute it
 * (each a float32 operation with the scalar cast to float32: the same values); the power in libtorch
 * (vectorised; a per-voxel Math.pow in JavaScript costs more than the rest of the loader's intensity
 * steps together). The statistics of -x are those of x negated (min and max swapped), sums included:
 * rounding is symmetric, so y is never stored. Five passes over the channel and one power; the
 * passes run in the addon (host_kernels.cpp: float64 sums in index order, eps 1e-7, the same
 * operations as JavaScript's numbers, no fused multiply-add; transforms.test.ts compares them with
 * a JavaScript transcription value for value).
 */
function gammaChannel(x: Float32Array, sign: 1 | -1, gamma: number, context: ApplyContext): void {
  // Passes 1 and 2 in the addon: the statistics, then x = f32(y - low) / scaleDown.
  const [mean, std, low, scaleUp] = hostGammaPrepare(x, sign);
  // The power written back over its input (no new array).
  scope(() => pow(fromArray(x, [x.length], { device: context.device }), gamma).copyInto(x));
  // Passes 3 to 5 in the addon: back to the range in float32, then the mean and std of y restored.
  hostGammaFinish(x, sign, mean, std, low, scaleUp);
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
