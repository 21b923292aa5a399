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

/**
 * Standard normal samples, in pairs (Box-Muller, both values of each pair used), handed to `use`
 * with their index; `count` values in all.
 */
function forEachStandardNormal(rng: Rng, count: number, use: (index: number, value: number) => void): void {
  for (let i = 0; i < count; i += 2) {
    let u = (rng.nextUint32() + 0.5) / 4294967296;
    const v = rng.nextUint32() / 4294967296;
    if (u <= 0) u = Number.MIN_VALUE;
    const radius = Math.sqrt(-2 * Math.log(u));
    use(i, radius * Math.cos(2 * Math.PI * v));
    if (i + 1 < count) use(i + 1, radius * Math.sin(2 * Math.PI * v));
  }
}

/** Fill `out` with standard normal samples (Box-Muller, both values of each pair used). */
export function fillStandardNormal(rng: Rng, out: Float32Array): void {
  forEachStandardNormal(rng, out.length, (i, value) => {
    out[i] = value;
  });
}

export const gaussianNoise: Transform<NoiseParams> = {
  name: 'gaussianNoise',
  sample: (rng) => ({ sigma: rng.uniform(0, 0.1), seed: rng.nextUint32() }),
  apply(sample, params, context) {
    const out = writable(sample, context);
    const image = out.image;
    const source = sample.image;
    const sigma = params.sigma;
    // x + sigma * (the float32 noise value), as if the noise field were stored first.
    forEachStandardNormal(new Rng(params.seed), image.length, (i, value) => {
      image[i] = source[i]! + sigma * Math.fround(value);
    });
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

function stats(x: Float32Array): { mean: number; min: number; max: number; std: number } {
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / x.length;
  let squares = 0;
  for (let i = 0; i < x.length; i++) squares += (x[i]! - mean) ** 2;
  const std = x.length > 1 ? Math.sqrt(squares / (x.length - 1)) : 0;
  return { mean, min, max, std };
}

export const contrast: Transform<ChannelFactor[]> = {
  name: 'contrast',
  sample: (rng, meta) => perChannelFactors(rng, meta, 0.75, 1.25),
  apply(sample, params, context) {
    const out = writable(sample, context);
    for (const { channel, factor } of params) {
      const x = channelView(out, channel);
      const { mean, min, max } = stats(x);
      for (let i = 0; i < x.length; i++) x[i] = Math.min(max, Math.max(min, (x[i]! - mean) * factor + mean));
    }
    return out;
  },
};

const GAMMA_EPSILON = 1e-7;

/**
 * x = ((x - min) / denominator) ** gamma * range + min, in float32 as libtorch's sub, div, pow, mul
 * and add compute it (each a float32 operation with the scalar cast to float32): the scaling in host
 * loops (the same values), the power in libtorch (vectorised; a per-voxel Math.pow in JavaScript
 * costs more than the rest of the loader's intensity steps together).
 */
function powerStep(x: Float32Array, min: number, denominator: number, gamma: number, range: number, context: ApplyContext): void {
  const f32 = Math.fround;
  const low = f32(min);
  const scaleDown = f32(denominator);
  const scaleUp = f32(range);
  for (let i = 0; i < x.length; i++) x[i] = f32(x[i]! - low) / scaleDown;
  const powered = scope(() => pow(fromArray(x, [x.length], { device: context.device }), gamma).toFloat32Array());
  for (let i = 0; i < x.length; i++) x[i] = f32(powered[i]! * scaleUp) + low;
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
      const sign = params.invert ? -1 : 1;
      for (const { channel, gamma } of params.channels) {
        const x = channelView(out, channel);
        if (params.invert) for (let i = 0; i < x.length; i++) x[i] = -x[i]!;
        const before = stats(x);
        const range = before.max - before.min;
        const denominator = Math.max(range, GAMMA_EPSILON);
        powerStep(x, before.min, denominator, gamma, range, context);
        const after = stats(x);
        const factor = before.std / Math.max(after.std, GAMMA_EPSILON);
        for (let i = 0; i < x.length; i++) x[i] = sign * ((x[i]! - after.mean) * factor + before.mean);
      }
      return out;
    },
  };
}

export const invertedGamma = gammaTransform('invertedGamma', true);
export const gamma = gammaTransform('gamma', false);
