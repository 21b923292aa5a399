/**
 * Where the loader's time goes: each step of nnU-Net's default augmentation (src/data/sampling) timed
 * alone on one core (libtorch one thread) at a preset's patch, on a smooth random patch of the
 * sampled size (spatial step) or the final size (the others), run as the loader runs it: the crop
 * of the sampled patch for a sample the spatial step resamples, of the final patch (into the batch)
 * for the others, and every later step in place (ApplyContext.reuseInput) on a fresh copy made
 * outside the timing. Reports the median wall and CPU seconds per application, the step's
 * probability of running, and the expected seconds per sample (probability x time), whose sum is
 * what one sample's crop and augmentation cost on average.
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

/** Median wall and CPU seconds of `run` on a fresh `setup()` each time (the setup not timed). */
function time<T>(setup: () => T, run: (input: T) => unknown): { seconds: number; cpuSeconds: number } {
  run(setup()); // warm-up
  const seconds: number[] = [];
  const cpuSeconds: number[] = [];
  for (let r = 0; r < reps; r++) {
    const input = setup();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    run(input);
    const cpu = process.cpuUsage(cpu0);
    seconds.push((performance.now() - t0) / 1000);
    cpuSeconds.push((cpu.user + cpu.system) / 1e6);
  }
  return { seconds: median(seconds), cpuSeconds: median(cpuSeconds) };
}

/** A copy of a patch the step may overwrite. */
const copyOf = (sample: PatchSample) => (): PatchSample => ({ ...sample, image: sample.image.slice(), seg: sample.seg.slice() });

const sampled = patchOf(geometry.sampledPatchSize);
const final = patchOf(patch);
const spatial = (rotation: number[] | null, scale: number | null): SpatialParams => ({ outputShape: [...patch], dummy2d: geometry.dummy2d, rotationRad: rotation, scale });
const rotation = geometry.dummy2d ? [0.7] : [0.3, -0.2, 0.4];
// Probability that the spatial transform resamples (rotation p 0.2 or scaling p 0.2).
const pResample = 1 - 0.8 * 0.8;
const onFinal = copyOf(final);
const reuse = { ...context, reuseInput: true };
const voxels = patch[0] * patch[1] * patch[2];
const slot = () => ({ image: new Float32Array(voxels), seg: new Int8Array(voxels) });
const steps: { name: string; probability: number; seconds: number; cpuSeconds: number }[] = [
  { name: 'crop of the sampled patch (image + labels, for a resampled sample)', probability: pResample, ...time(() => null, () => [cropAndPad(sampled.image, 1, sampled.shape, [0, 0, 0], sampled.shape, 0), cropAndPad(sampled.seg, 1, sampled.shape, [0, 0, 0], sampled.shape, -1)]) },
  { name: 'crop of the final patch into the batch (image + labels, the others)', probability: 1 - pResample, ...time(slot, (into) => [cropAndPad(sampled.image, 1, sampled.shape, [0, 0, 0], patch, 0, into.image), cropAndPad(sampled.seg, 1, sampled.shape, [0, 0, 0], patch, -1, into.seg)]) },
  { name: 'spatial: resample (rotation and/or scaling)', probability: pResample, ...time(() => sampled, (x) => applySpatial(x, spatial(rotation, 1.1), context)) },
  { name: 'gaussianNoise', probability: 0.1, ...time(onFinal, (x) => gaussianNoise.apply(x, { sigma: 0.05, seed: 3 }, reuse)) },
  // Blur and low resolution each pick the (one) channel with p 0.5.
  { name: 'gaussianBlur', probability: 0.2 * 0.5, ...time(onFinal, (x) => gaussianBlur.apply(x, { channels: [{ channel: 0, sigmas: [0.75, 0.75, 0.75] }] }, reuse)) },
  { name: 'brightness', probability: 0.15, ...time(onFinal, (x) => brightness.apply(x, [{ channel: 0, factor: 1.1 }], reuse)) },
  { name: 'contrast', probability: 0.15, ...time(onFinal, (x) => contrast.apply(x, [{ channel: 0, factor: 1.1 }], reuse)) },
  { name: 'lowResolution', probability: 0.25 * 0.5, ...time(onFinal, (x) => lowResolution.apply(x, { channels: [{ channel: 0, zoom: [geometry.dummy2d ? 1 : 0.75, 0.75, 0.75] }] }, reuse)) },
  { name: 'invertedGamma', probability: 0.1, ...time(onFinal, (x) => invertedGamma.apply(x, { invert: true, channels: [{ channel: 0, gamma: 1.2 }] }, reuse)) },
  { name: 'gamma', probability: 0.3, ...time(onFinal, (x) => gamma.apply(x, { invert: false, channels: [{ channel: 0, gamma: 1.2 }] }, reuse)) },
  // Each of 3 axes flipped with p 0.5: some flip happens with p 7/8.
  { name: 'mirror (2 axes)', probability: 7 / 8, ...time(onFinal, (x) => mirror.apply(x, { axes: [1, 2] }, reuse)) },
  { name: 'finalize (labels -1 -> 0)', probability: 1, ...time(onFinal, (x) => finalizeSample(x, [], 0, true)) },
];
const round4 = (value: number): number => Number(value.toFixed(4));
const expected = steps.map((s) => ({
  ...s,
  seconds: round4(s.seconds),
  cpuSeconds: round4(s.cpuSeconds),
  expectedSecondsPerSample: round4(s.probability * s.seconds),
  expectedCpuSecondsPerSample: round4(s.probability * s.cpuSeconds),
}));
const total = (key: 'seconds' | 'cpuSeconds') => round4(steps.reduce((sum, s) => sum + s.probability * s[key], 0));
report({
  benchmark: 'augment-profile',
  cpu: cpuInfo(),
  patchSize: patch,
  sampledPatchSize: geometry.sampledPatchSize,
  dummy2d: geometry.dummy2d,
  reps,
  steps: expected.sort((a, b) => b.expectedCpuSecondsPerSample - a.expectedCpuSecondsPerSample),
  expectedSecondsPerSample: total('seconds'),
  expectedCpuSecondsPerSample: total('cpuSeconds'),
});
