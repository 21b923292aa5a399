/**
 * The 2d configuration's sampling and augmentation, as nnU-Net trains a 2D patch (nnUNetTrainer
 * configure_rotation_dummyDA_mirroring_and_inital_patch_size and get_training_transforms for a 2D
 * patch; nnUNetDataLoader with a pseudo-3D patch (1, y, x)): the enlarged patches are
 * get_patch_size's for 2D (computed with nnU-Net's own function: (56, 40) at 180 degrees -> (65, 65),
 * (64, 160) at 15 degrees -> (121, 188)); one slice per sample, the forced-foreground one being the
 * chosen voxel's; the parameters drawn are in-plane; the blur of a one-slice patch by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../core/index.js';
import { sampleAugmentation } from './augment_pipeline.js';
import type { AugmentMeta } from './augment_types.js';
import { gaussianBlur } from './filter_transforms.js';
import { choosePatch } from './patch_sampler.js';
import { augmentationGeometry } from './patch_size.js';

const DEGREE = Math.PI / 180;

test('a 2d patch: rotation 180 or 15 degrees by its aspect, get_patch_size in the slice, mirroring over y and x', () => {
  const square = augmentationGeometry([1, 56, 40], true, 2);
  assert.deepEqual(square.sampledPatchSize, [1, 65, 65]);
  assert.deepEqual(square.rotationRangeRad, [-180 * DEGREE, 180 * DEGREE]);
  assert.deepEqual([square.mirrorAxes, square.dummy2d, square.spatialDims], [[1, 2], true, 2]);
  const elongated = augmentationGeometry([1, 64, 160], true, 2);
  assert.deepEqual(elongated.sampledPatchSize, [1, 121, 188]);
  assert.deepEqual(elongated.rotationRangeRad, [-15 * DEGREE, 15 * DEGREE]);
  assert.deepEqual(augmentationGeometry([1, 64, 160], false, 2).sampledPatchSize, [1, 64, 160]);
  assert.throws(() => augmentationGeometry([2, 64, 160], true, 2), /one slice deep/);
});

test('a 2d sample is one slice: the forced-foreground voxel\'s, or uniform over the slices', () => {
  // Case [10, 70, 60], sampled [1, 65, 65], final [1, 56, 40]: padding [0, 9, 25], lower limits [0, -5, -13].
  const locations = { '1': [[7, 30, 20]] as [number, number, number][] };
  const forced = choosePatch(new Rng(1), [10, 70, 60], [1, 65, 65], [1, 56, 40], true, locations);
  assert.deepEqual(forced, { lowerBound: [7, -2, -12], foregroundLabel: 1 });
  const rng = new Rng(2);
  const slices = new Set<number>();
  for (let i = 0; i < 400; i++) {
    const { lowerBound } = choosePatch(rng, [10, 70, 60], [1, 65, 65], [1, 56, 40], false, locations);
    assert.ok(lowerBound[0] >= 0 && lowerBound[0] <= 9, `slice ${lowerBound[0]}`);
    slices.add(lowerBound[0]);
  }
  assert.equal(slices.size, 10, 'every slice is drawn');
});

test('2d augmentation parameters are in-plane: one angle, zoom and blur only over y and x, mirror axes 1 and 2', () => {
  const geometry = augmentationGeometry([1, 32, 32], true, 2);
  const meta: AugmentMeta = { channels: 2, useMaskForNorm: [false, false], previousLabels: 0, ...geometry };
  let rotations = 0;
  let blurs = 0;
  let zooms = 0;
  for (let i = 0; i < 300; i++) {
    const params = sampleAugmentation(new Rng(i), meta);
    if (params.spatial.rotationRad !== null) {
      rotations++;
      assert.equal(params.spatial.rotationRad.length, 1);
      assert.ok(Math.abs(params.spatial.rotationRad[0]!) <= Math.PI);
    }
    assert.deepEqual(params.spatial.outputShape, [1, 32, 32]);
    for (const { sigmas } of params.gaussianBlur?.channels ?? []) {
      blurs++;
      assert.equal(sigmas[0], 0);
      assert.ok(sigmas[1] >= 0.5 && sigmas[2] <= 1);
    }
    for (const { zoom } of params.lowResolution?.channels ?? []) {
      zooms++;
      assert.equal(zoom[0], 1);
      assert.equal(zoom[1], zoom[2]);
    }
    assert.ok(params.mirror.axes.every((axis) => axis === 1 || axis === 2));
  }
  assert.ok(rotations > 0 && blurs > 0 && zooms > 0, `${rotations} rotations, ${blurs} blurs, ${zooms} zooms drawn`);
});

test('the blur of a one-slice patch is the 2D blur (sigma 0.5: kernel [e^-2, 1, e^-2] / (1 + 2 e^-2) per axis)', () => {
  const image = new Float32Array(9 * 9);
  image[4 * 9 + 4] = 1;
  const out = gaussianBlur.apply({ image, seg: new Int8Array(81), channels: 1, shape: [1, 9, 9] }, { channels: [{ channel: 0, sigmas: [0, 0.5, 0.5] }] }, { device: { type: 'cpu' } });
  const w = Math.exp(-2) / (1 + 2 * Math.exp(-2));
  const c = 1 / (1 + 2 * Math.exp(-2));
  const expect = (y: number, x: number): number => (y === 4 ? c : Math.abs(y - 4) === 1 ? w : 0) * (x === 4 ? c : Math.abs(x - 4) === 1 ? w : 0);
  for (let y = 0; y < 9; y++) for (let x = 0; x < 9; x++) assert.ok(Math.abs(out.image[y * 9 + x]! - expect(y, x)) < 1e-6, `(${y}, ${x}): ${out.image[y * 9 + x]} vs ${expect(y, x)}`);
});
