/**
 * Where the loader's time goes: each step of nnU-Net's default augmentation (src/data/sampling) timed
 * alone on one core (libtorch one thread) at a preset's patch, on a smooth random patch of the
 * sampled size (spatial step) or the final size (the others). Reports the median seconds per
 * application, the step's probability of running, and the expected seconds per sample
 * (probability x time), whose sum is what one sample's augmentation costs on average.
 *
 *   node --import tsx bench/augment-profile.ts [--patch 50,160,192] [--reps 5] [--out FILE]
 */
import { cpuInfo, Rng } from '../src/core/index.js';
import {
  applySpatial,
  augmentationGeometry,
  brightness,
  contrast,
  finalizeSample,
  gamma,
  gaussianBlur,
  gaussianNoise,
  invertedGamma,
  lowResolution,
  mirror,
  cropAndPad,
  type PatchSample,
  type SpatialParams,
} from '../src/data/index.js';
import type { Triple } from '../src/data/planning_topology.js';
import { setNumThreads } from '../src/tensor/index.js';
import { ints, median, option, report } from './support.js';

const patch = ints(option('patch', '50,160,192')) as Triple;
const reps = Number(option('reps', '5'));
setNumThreads(1);
const geometry = augmentationGeometry(patch);
const context = { device: { type: 'cpu' as const } };

function patchOf(shape: Triple): PatchSample {
  const rng = new Rng(7);
  const voxels = shape[0] * shape[1] * shape[2];
  const image = new Float32Array(voxels);
  const seg = new Int8Array(voxels);
  for (let i = 0; i < voxels; i++) {
    image[i] = Math.sin(i * 0.001) + 0.1 * rng.float();
    seg[i] = rng.float() < 0.01 ? -1 : rng.float() < 0.05 ? 1 : 0;
  }
  return { image, seg, channels: 1, shape: [...shape] };
}

function time(run: () => unknown): number {
  run(); // warm-up
  const seconds: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    run();
    seconds.push((performance.now() - t0) / 1000);
  }
  return median(seconds);
}

const sampled = patchOf(geometry.sampledPatchSize);
const final = patchOf(patch);
const spatial = (rotation: number[] | null, scale: number | null): SpatialParams => ({ outputShape: [...patch], dummy2d: geometry.dummy2d, rotationRad: rotation, scale });
const rotation = geometry.dummy2d ? [0.7] : [0.3, -0.2, 0.4];
// Probability that the spatial transform resamples (rotation p 0.2 or scaling p 0.2).
const pResample = 1 - 0.8 * 0.8;
const steps: { name: string; probability: number; seconds: number }[] = [
  { name: 'crop (sampler, image + labels)', probability: 1, seconds: time(() => [cropAndPad(sampled.image, 1, sampled.shape, [0, 0, 0], sampled.shape, 0), cropAndPad(sampled.seg, 1, sampled.shape, [0, 0, 0], sampled.shape, -1)]) },
  { name: 'spatial: centre crop (no rotation, no scaling)', probability: 1 - pResample, seconds: time(() => applySpatial(sampled, spatial(null, null), context)) },
  { name: 'spatial: resample (rotation and/or scaling)', probability: pResample, seconds: time(() => applySpatial(sampled, spatial(rotation, 1.1), context)) },
  { name: 'gaussianNoise', probability: 0.1, seconds: time(() => gaussianNoise.apply(final, { sigma: 0.05, seed: 3 }, context)) },
  // Blur and low resolution each pick the (one) channel with p 0.5.
  { name: 'gaussianBlur', probability: 0.2 * 0.5, seconds: time(() => gaussianBlur.apply(final, { channels: [{ channel: 0, sigmas: [0.75, 0.75, 0.75] }] }, context)) },
  { name: 'brightness', probability: 0.15, seconds: time(() => brightness.apply(final, [{ channel: 0, factor: 1.1 }], context)) },
  { name: 'contrast', probability: 0.15, seconds: time(() => contrast.apply(final, [{ channel: 0, factor: 1.1 }], context)) },
  { name: 'lowResolution', probability: 0.25 * 0.5, seconds: time(() => lowResolution.apply(final, { channels: [{ channel: 0, zoom: [geometry.dummy2d ? 1 : 0.75, 0.75, 0.75] }] }, context)) },
  { name: 'invertedGamma', probability: 0.1, seconds: time(() => invertedGamma.apply(final, { invert: true, channels: [{ channel: 0, gamma: 1.2 }] }, context)) },
  { name: 'gamma', probability: 0.3, seconds: time(() => gamma.apply(final, { invert: false, channels: [{ channel: 0, gamma: 1.2 }] }, context)) },
  // Each of 3 axes flipped with p 0.5: some flip happens with p 7/8.
  { name: 'mirror (2 axes)', probability: 7 / 8, seconds: time(() => mirror.apply(final, { axes: [1, 2] }, context)) },
  { name: 'finalize (labels -1 -> 0)', probability: 1, seconds: time(() => finalizeSample(final)) },
];
const expected = steps.map((s) => ({ ...s, seconds: Number(s.seconds.toFixed(4)), expectedSecondsPerSample: Number((s.probability * s.seconds).toFixed(4)) }));
const total = expected.reduce((sum, s) => sum + s.probability * s.seconds, 0);
report({
  benchmark: 'augment-profile',
  cpu: cpuInfo(),
  patchSize: patch,
  sampledPatchSize: geometry.sampledPatchSize,
  dummy2d: geometry.dummy2d,
  reps,
  steps: expected.sort((a, b) => b.expectedSecondsPerSample - a.expectedSecondsPerSample),
  expectedSecondsPerSample: Number(total.toFixed(4)),
});
