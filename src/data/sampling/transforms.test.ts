/**
 * Each augmentation's apply() for fixed parameters against the references of
 * test/fixtures/sampling/make_sampling_fixtures.py (torch grid_sample / interpolate, scipy
 * gaussian_filter1d, numpy), plus sampling/replay, the noise statistics and tensor leaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Rng } from '../../core/index.js';
import { conv3d, fromArray, liveTensors, pad, pow, scope } from '../../tensor/index.js';
import type { Triple } from '../planning_topology.js';
import { applyAugmentation, sampleAugmentation } from './augment_pipeline.js';
import type { AugmentMeta, PatchSample } from './augment_types.js';
import { flipInPlace, gaussianBlur, gaussianKernel1d, lowResolution, mirror } from './filter_transforms.js';
import { brightness, contrast, gamma, gaussianNoise, invertedGamma } from './intensity_transforms.js';
import { applySpatial, winningLabels, type SpatialParams } from './spatial_transform.js';

const fixtures = JSON.parse(fs.readFileSync(new URL('../../../test/fixtures/sampling/sampling_fixtures.json', import.meta.url), 'utf8'));
const context = { device: { type: 'cpu' } as const };

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!);
    if (!(error <= worst)) {
      worst = error;
      at = i;
    }
  }
  assert.ok(worst <= tolerance, `${what}: max error ${worst} at ${at} (${actual[at]} vs ${expected[at]})`);
}

function sampleOf(shape: number[], image: number[], seg?: number[]): PatchSample {
  const spatial = shape.slice(1) as Triple;
  const voxels = spatial[0] * spatial[1] * spatial[2];
  return {
    image: Float32Array.from(image),
    seg: seg === undefined ? new Int8Array(voxels) : Int8Array.from(seg),
    channels: shape[0]!,
    shape: spatial,
  };
}

/** What sampling knows about the spatial3d fixture (2 channels, [10, 12, 14], the second masked), cut to `finalPatchSize`. */
function fixtureMeta(finalPatchSize: Triple): AugmentMeta {
  return {
    channels: 2,
    sampledPatchSize: [10, 12, 14],
    finalPatchSize,
    dummy2d: false,
    rotationRangeRad: [-Math.PI / 6, Math.PI / 6],
    mirrorAxes: [0, 1, 2],
    useMaskForNorm: [false, true],
    previousLabels: 0,
  };
}

function countMismatches(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let mismatches = 0;
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) mismatches += 1;
  return mismatches;
}

test('spatial transform (3D rotation + scaling) matches torch grid_sample', () => {
  const f = fixtures.spatial3d;
  const before = liveTensors();
  const out = applySpatial(sampleOf(f.inputShape, f.image, f.seg), f.params as SpatialParams, context);
  assert.equal(liveTensors(), before, 'no tensor leaks');
  assert.deepEqual(out.shape, f.params.outputShape);
  assertClose(out.image, f.expectedImage, 2e-5, 'image');
  assert.equal(countMismatches(out.seg, f.expectedSeg), 0, 'labels');
  assert.ok(f.expectedSeg.includes(-1), 'the fixture has out-of-bounds voxels');
});

test('spatial transform (rotation about one axis, half-voxel centre) matches torch', () => {
  const f = fixtures.spatial3dRotation;
  const input = fixtures.spatial3d;
  const out = applySpatial(sampleOf(input.inputShape, input.image, input.seg), f.params as SpatialParams, context);
  assertClose(out.image, f.expectedImage, 2e-5, 'image');
  assert.equal(countMismatches(out.seg, f.expectedSeg), 0, 'labels');
});

test('spatial transform (dummy 2D, in-plane) matches torch grid_sample per slice', () => {
  const f = fixtures.spatial2d;
  const out = applySpatial(sampleOf(f.inputShape, f.image, f.seg), f.params as SpatialParams, context);
  assertClose(out.image, f.expectedImage, 2e-5, 'image');
  assert.equal(countMismatches(out.seg, f.expectedSeg), 0, 'labels');
});

test('spatial transform without rotation or scaling is a centre crop', () => {
  const input = fixtures.spatial3d;
  const out = applySpatial(sampleOf(input.inputShape, input.image, input.seg), { outputShape: [6, 8, 9], dummy2d: false, rotationRad: null, scale: null }, context);
  // Input [10, 12, 14] -> lower corner floor(S/2) - floor(s/2) = [2, 2, 3].
  const [, sz, sy, sx] = input.inputShape as number[];
  for (const [c, z, y, x] of [[0, 0, 0, 0], [1, 5, 7, 8], [0, 3, 2, 6]] as const) {
    assert.equal(out.image[((c * 6 + z) * 8 + y) * 9 + x], Math.fround(input.image[((c * sz! + z + 2) * sy! + y + 2) * sx! + x + 3]));
    assert.equal(out.seg[(z * 8 + y) * 9 + x], input.seg[((z + 2) * sy! + y + 2) * sx! + x + 3]);
  }
});

const intensity = fixtures.intensityInput;

test('gaussian blur matches scipy gaussian_filter1d (mirror) per axis', () => {
  const f = fixtures.blur;
  const before = liveTensors();
  const out = gaussianBlur.apply(sampleOf(intensity.shape, intensity.image), { channels: [{ channel: f.channel, sigmas: f.sigmas }] }, context);
  assert.equal(liveTensors(), before);
  const voxels = 6 * 7 * 8;
  assertClose(out.image.subarray(voxels), f.expected, 2e-5, 'blurred channel');
  assert.deepEqual(out.image.subarray(0, voxels), Float32Array.from(intensity.image.slice(0, voxels)), 'other channel untouched');
});

// The host blur sums each output as fused multiply-adds in kernel order; libtorch's conv3d sums the
// same products in its BLAS kernel's order, which depends on the CPU (equal bits on the EPYC this was
// written on: bench/loader-hash.ts). Each axis pass of a float32 sum of n products is within
// n 2^-24 of the sum of their magnitudes; with positive weights summing to 1 the blur of |x| bounds
// those sums, so three passes differ by at most 3 n 2^-23 times the blur of |x| (n the longest kernel).
test('the blur on the host equals libtorch conv3d with reflect padding within float32 summation order (every axis, sigma 0 skips an axis, in place)', () => {
  const rng = new Rng(23);
  for (const [shape, sigmas] of [
    [[9, 14, 17], [0.6, 0.8, 1]],
    [[20, 7, 33], [1, 0, 0.5]],
    [[1, 30, 25], [0, 0.9, 0.7]],
  ] as [Triple, Triple][]) {
    const voxels = shape[0] * shape[1] * shape[2];
    const image = Float32Array.from({ length: 2 * voxels }, (_, i) => (i % 97 === 0 ? 0 : rng.normal() * 10 ** rng.int(-2, 3)));
    // The reference: libtorch's conv3d per axis, as the blur ran before the addon took it over.
    let longest = 1;
    const blurred = (values: Float32Array): Float32Array => scope(() => {
      let x = fromArray(values, [1, 1, ...shape]);
      for (let axis = 0; axis < 3; axis++) {
        if (sigmas[axis] === 0) continue;
        const kernel = gaussianKernel1d(sigmas[axis]!);
        longest = Math.max(longest, kernel.length);
        const kernelShape = [1, 1, 1, 1, 1];
        kernelShape[2 + axis] = kernel.length;
        const pads = [0, 0, 0, 0, 0, 0];
        pads[2 * (2 - axis)] = pads[2 * (2 - axis) + 1] = (kernel.length - 1) / 2;
        x = conv3d(pad(x, pads, 'reflect'), fromArray(kernel, kernelShape), null);
      }
      return x.toFloat32Array();
    });
    const expected = blurred(image.subarray(voxels));
    const magnitude = blurred(image.subarray(voxels).map(Math.abs));
    const sample: PatchSample = { image: image.slice(), seg: new Int8Array(voxels), channels: 2, shape };
    const params = { channels: [{ channel: 1, sigmas }] };
    const copy = gaussianBlur.apply(sample, params, context);
    const actual = copy.image.subarray(voxels);
    let worst = 0;
    let moved = 0;
    for (let i = 0; i < voxels; i++) {
      worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / (3 * longest * 2 ** -23 * magnitude[i]! + Number.MIN_VALUE));
      if (actual[i] !== image[voxels + i]) moved++;
    }
    assert.ok(worst <= 1, `[${shape}] sigmas [${sigmas}]: ${worst} of the bound`);
    assert.ok(moved > voxels / 2, 'the blur changed the channel');
    assert.deepEqual(copy.image.subarray(0, voxels), image.subarray(0, voxels), 'the other channel untouched');
    assert.deepEqual(sample.image, image, 'without reuseInput the input stays');
    const inPlace = gaussianBlur.apply(sample, params, { ...context, reuseInput: true });
    assert.equal(inPlace.image, sample.image);
    assert.deepEqual(inPlace.image, copy.image, 'in place');
  }
});

test('brightness, contrast, gamma and inverted gamma match numpy', () => {
  const input = sampleOf(intensity.shape, intensity.image);
  const factors = (values: number[]) => values.map((factor, channel) => ({ channel, factor }));
  assertClose(brightness.apply(input, factors(fixtures.brightness.factors), context).image, fixtures.brightness.expected, 1e-6, 'brightness');
  assertClose(contrast.apply(input, factors(fixtures.contrast.factors), context).image, fixtures.contrast.expected, 1e-5, 'contrast');
  const gammas = (values: number[]) => values.map((g, channel) => ({ channel, gamma: g }));
  assertClose(gamma.apply(input, { invert: false, channels: gammas(fixtures.gamma.gammas) }, context).image, fixtures.gamma.expected, 2e-5, 'gamma');
  assertClose(
    invertedGamma.apply(input, { invert: true, channels: gammas(fixtures.invertedGamma.gammas) }, context).image,
    fixtures.invertedGamma.expected,
    2e-5,
    'inverted gamma',
  );
  assert.deepEqual(input.image, Float32Array.from(intensity.image), 'apply does not modify its input');
});

/**
 * Gamma as the loader computed it in JavaScript numbers before its passes moved to the addon: the
 * statistics of y = sign x (float64, index order), x = f32(y - low) / f32(max(range, 1e-7)), the
 * power in libtorch, t = f32(f32(x f32(range)) + low), then the mean and unbiased std of y restored.
 */
function gammaInJavaScript(x: Float32Array, sign: 1 | -1, exponent: number): void {
  const f32 = Math.fround;
  const n = x.length;
  let [sum, min, max] = [0, Infinity, -Infinity];
  for (const v of x) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sign * (sum / n);
  const lowest = sign === 1 ? min : -max;
  const range = (sign === 1 ? max : -min) - lowest;
  const [low, scaleDown, scaleUp] = [f32(lowest), f32(Math.max(range, 1e-7)), f32(range)];
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const y = sign * x[i]!;
    squares += (y - mean) ** 2;
    x[i] = f32(y - low) / scaleDown;
  }
  const std = n > 1 ? Math.sqrt(squares / (n - 1)) : 0;
  x.set(scope(() => pow(fromArray(x, [n]), exponent).toFloat32Array()));
  let total = 0;
  for (let i = 0; i < n; i++) {
    x[i] = f32(f32(x[i]! * scaleUp) + low);
    total += x[i]!;
  }
  const meanAfter = total / n;
  let squaresAfter = 0;
  for (let i = 0; i < n; i++) squaresAfter += (x[i]! - meanAfter) ** 2;
  const factor = std / Math.max(n > 1 ? Math.sqrt(squaresAfter / (n - 1)) : 0, 1e-7);
  for (let i = 0; i < n; i++) x[i] = sign * ((x[i]! - meanAfter) * factor + mean);
}

test('gamma and inverted gamma (passes in the addon) equal the JavaScript arithmetic value for value', () => {
  const rng = new Rng(21);
  let compared = 0;
  for (const [voxels, kind] of [[4096, 'normal'], [3000, 'wide'], [777, 'constant'], [2, 'normal'], [1, 'normal']] as const) {
    const values = Float32Array.from({ length: voxels }, () =>
      kind === 'constant' ? 0.25 : kind === 'wide' ? rng.normal() * 10 ** rng.int(-3, 4) : rng.normal(0.3, 1.7));
    for (const invert of [false, true]) {
      const exponent = rng.uniform(0.7, 1.5);
      const sample: PatchSample = { image: values.slice(), seg: new Int8Array(voxels), channels: 1, shape: [1, 1, voxels] };
      const actual = (invert ? invertedGamma : gamma).apply(sample, { invert, channels: [{ channel: 0, gamma: exponent }] }, context).image;
      const expected = values.slice();
      gammaInJavaScript(expected, invert ? -1 : 1, exponent);
      assert.deepEqual(actual, expected, `${kind} ${voxels} voxels, ${invert ? 'inverted' : 'plain'} gamma ${exponent}`);
      compared += voxels;
    }
  }
  assert.equal(compared, 2 * (4096 + 3000 + 777 + 2 + 1));
});

test('contrast (in the addon) equals the JavaScript arithmetic value for value, signed zeros included', () => {
  const rng = new Rng(22);
  const inputs = [
    Float32Array.from({ length: 5000 }, () => rng.normal(0.2, 2)),
    Float32Array.from({ length: 999 }, () => rng.normal() * 10 ** rng.int(-3, 4)),
    // Zeros of both signs at the extremes, and values that scale to exactly 0 around a zero mean.
    Float32Array.from([0, -0, 1, -1, 0.5, -0.5, 0, -0]),
    Float32Array.from([-0, -0, -1, -0]),
  ];
  for (const values of inputs) {
    for (const factor of [0.8, 1.2, rng.uniform(0.75, 1.25)]) {
      const actual = contrast.apply({ image: values.slice(), seg: new Int8Array(values.length), channels: 1, shape: [1, 1, values.length] }, [{ channel: 0, factor }], context).image;
      let [sum, min, max] = [0, Infinity, -Infinity];
      for (const v of values) {
        sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const mean = sum / values.length;
      const expected = values.map((v) => Math.min(max, Math.max(min, (v - mean) * factor + mean)));
      assert.deepEqual(actual, expected, `${values.length} values, factor ${factor}`);
      assert.deepEqual([...actual].map((v) => Object.is(v, -0)), [...expected].map((v) => Object.is(v, -0)), 'the same signed zeros');
    }
  }
});

test('low-resolution simulation matches torch interpolate (nearest-exact down, trilinear up)', () => {
  const f = fixtures.lowResolution;
  const out = lowResolution.apply(sampleOf(intensity.shape, intensity.image), { channels: [{ channel: f.channel, zoom: [f.zoom, f.zoom, f.zoom] }] }, context);
  assertClose(out.image.subarray(0, 6 * 7 * 8), f.expected, 1e-5, 'low resolution');
});

test('mirror matches numpy flip (image and labels)', () => {
  const input = sampleOf(intensity.shape, intensity.image, Array.from({ length: 6 * 7 * 8 }, (_, i) => i % 5));
  const out = mirror.apply(input, { axes: fixtures.mirror.axes }, context);
  assertClose(out.image, fixtures.mirror.expected, 0, 'mirror');
  assert.equal(out.seg[0], input.seg[(0 * 7 + 0) * 8 + 7 + 5 * 7 * 8]);
});

test('flipInPlace: every set of axes, odd and even sizes, image and labels, equals the index mapping', () => {
  for (const shape of [[3, 4, 5], [4, 5, 2]] as Triple[]) {
    const [z, y, x] = shape;
    const volumes = 2;
    const image = Float32Array.from({ length: volumes * z * y * x }, (_, i) => i * 0.5);
    const labels = Int8Array.from({ length: volumes * z * y * x }, (_, i) => (i % 200) - 100);
    for (const axes of [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]]) {
      const flippedImage = image.slice();
      const flippedLabels = labels.slice();
      flipInPlace(flippedImage, volumes, shape, axes);
      flipInPlace(flippedLabels, volumes, shape, axes);
      for (let v = 0; v < volumes; v++) {
        for (let k = 0; k < z; k++) {
          for (let j = 0; j < y; j++) {
            for (let i = 0; i < x; i++) {
              const [sk, sj, si] = [axes.includes(0) ? z - 1 - k : k, axes.includes(1) ? y - 1 - j : j, axes.includes(2) ? x - 1 - i : i];
              const [to, from] = [((v * z + k) * y + j) * x + i, ((v * z + sk) * y + sj) * x + si];
              assert.equal(flippedImage[to], image[from], `shape ${shape} axes ${axes} image at ${to}`);
              assert.equal(flippedLabels[to], labels[from], `shape ${shape} axes ${axes} labels at ${to}`);
            }
          }
        }
      }
    }
  }
});

test('with reuseInput every transform and the pipeline give the same values, written into their input', () => {
  const input = fixtures.spatial3d;
  const meta = fixtureMeta([10, 12, 14]);
  const rng = new Rng(8);
  const reuse = { ...context, reuseInput: true };
  let inPlace = 0;
  for (let i = 0; i < 40; i++) {
    const params = sampleAugmentation(rng, meta);
    const pure = applyAugmentation(sampleOf(input.inputShape, input.image, input.seg), params, context);
    const given = sampleOf(input.inputShape, input.image, input.seg);
    const reused = applyAugmentation(given, params, reuse);
    assert.deepEqual(reused.image, pure.image, `draw ${i} image`);
    assert.deepEqual(reused.seg, pure.seg, `draw ${i} labels`);
    if (params.spatial.rotationRad === null && params.spatial.scale === null) {
      assert.ok(reused.image === given.image && reused.seg === given.seg, `draw ${i}: written into the input`);
      inPlace += 1;
    }
  }
  assert.ok(inPlace >= 10, `${inPlace} draws kept the input's arrays`);
  const sample = sampleOf(intensity.shape, intensity.image, Array.from({ length: 6 * 7 * 8 }, (_, i) => (i % 3) - 1));
  const steps: [string, (x: PatchSample, c: typeof reuse) => PatchSample][] = [
    ['noise', (x, c) => gaussianNoise.apply(x, { sigma: 0.07, seed: 5 }, c)],
    ['brightness', (x, c) => brightness.apply(x, [{ channel: 1, factor: 1.2 }], c)],
    ['contrast', (x, c) => contrast.apply(x, [{ channel: 0, factor: 0.8 }], c)],
    ['gamma', (x, c) => gamma.apply(x, { invert: false, channels: [{ channel: 0, gamma: 1.3 }, { channel: 1, gamma: 0.8 }] }, c)],
    ['inverted gamma', (x, c) => invertedGamma.apply(x, { invert: true, channels: [{ channel: 1, gamma: 1.2 }] }, c)],
    ['blur', (x, c) => gaussianBlur.apply(x, { channels: [{ channel: 1, sigmas: [0.6, 0.7, 0.9] }] }, c)],
    ['low resolution', (x, c) => lowResolution.apply(x, { channels: [{ channel: 0, zoom: [0.6, 0.6, 0.6] }] }, c)],
    ['mirror', (x, c) => mirror.apply(x, { axes: [0, 2] }, c)],
  ];
  for (const [name, step] of steps) {
    const pure = step(sample, { ...context, reuseInput: false });
    assert.deepEqual(sample.image, Float32Array.from(intensity.image), `${name}: without reuseInput the input is untouched`);
    const copy = { ...sample, image: sample.image.slice(), seg: sample.seg.slice() };
    const reused = step(copy, reuse);
    assert.ok(reused.image === copy.image, `${name}: written into the input`);
    assert.deepEqual(reused.image, pure.image, `${name}: the same values`);
    assert.deepEqual(reused.seg, pure.seg, `${name}: the same labels`);
  }
});

test('gaussian noise adds N(0, sigma^2) from its recorded seed', () => {
  const input = sampleOf([1, 16, 16, 16], Array.from({ length: 4096 }, () => 0));
  const out = gaussianNoise.apply(input, { sigma: 0.05, seed: 7 }, context);
  let sum = 0;
  let squares = 0;
  for (const v of out.image) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / out.image.length;
  const std = Math.sqrt(squares / out.image.length - mean * mean);
  assert.ok(Math.abs(mean) < 0.005, `mean ${mean}`);
  assert.ok(Math.abs(std - 0.05) < 0.003, `std ${std}`);
  assert.deepEqual(gaussianNoise.apply(input, { sigma: 0.05, seed: 7 }, context).image, out.image, 'same seed, same noise');
});

test('sampled parameters are plain JSON and replaying them gives the same patch; no tensor leaks', () => {
  const input = fixtures.spatial3d;
  const meta = fixtureMeta([6, 8, 9]);
  const before = liveTensors();
  const rng = new Rng(3);
  let applied = 0;
  for (let i = 0; i < 30; i++) {
    const params = sampleAugmentation(rng, meta);
    const roundTrip = JSON.parse(JSON.stringify(params));
    assert.deepEqual(roundTrip, params);
    const sample = sampleOf(input.inputShape, input.image, input.seg);
    const first = applyAugmentation(sample, params, context);
    const second = applyAugmentation(sample, roundTrip, context);
    assert.deepEqual(second.image, first.image);
    assert.deepEqual(second.seg, first.seg);
    assert.deepEqual(first.shape, [6, 8, 9]);
    assert.ok(first.seg.every((v) => v >= 0), 'labels -1 mapped to 0');
    if (params.spatial.rotationRad !== null || params.gaussianBlur !== null || params.lowResolution !== null) applied += 1;
  }
  assert.ok(applied > 0, 'some libtorch transforms were drawn');
  assert.equal(liveTensors(), before, 'no tensor leaks');
});

test('winningLabels: largest resampled channel wins, the lowest label on ties, -1 outside (every plane)', () => {
  // Labels [-1, 0, 2], 2 planes of 3 voxels; channel-major [label][plane][voxel].
  const resampled = Float32Array.from([
    0.5, 0.2, 0.1, /**/ 0.0, 0.3, 0.9, // label -1
    0.5, 0.7, 0.1, /**/ 0.4, 0.3, 0.05, // label 0
    0.0, 0.1, 0.8, /**/ 0.6, 0.4, 0.05, // label 2
  ]);
  const outside = Uint8Array.from([0, 0, 1]);
  // Plane 0: tie -1/0 -> -1 (first), 0.7 -> 0, outside -> -1; plane 1: 0.6 -> 2, 0.4 -> 2, outside -> -1.
  assert.deepEqual([...winningLabels(resampled, [-1, 0, 2], outside, 2)], [-1, 0, -1, 2, 2, -1]);
  assert.throws(() => winningLabels(resampled, [-1, 0], outside, 2), /expected 2 x 6/);
});
