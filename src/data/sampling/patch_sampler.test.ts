/**
 * Patch geometry and sampling rules against nnU-Net: enlarged patch sizes (NNUNET.md's computed
 * values and the fixture script's get_patch_size), the forced-foreground rule, the random and
 * foreground lower-bound rules, and the crop's padding values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Rng } from '../../core/index.js';
import type { Triple } from '../planning_topology.js';
import { finalizeSample } from './augment_pipeline.js';
import { choosePatch, cropAndPad, isForcedForeground, needToPad, pythonRound } from './patch_sampler.js';
import { augmentationGeometry, enlargedPatchSize, isDummy2d } from './patch_size.js';

const fixtures = JSON.parse(fs.readFileSync(new URL('../../../test/fixtures/sampling/sampling_fixtures.json', import.meta.url), 'utf8'));

test('enlarged patch sizes equal NNUNET.md computed values and get_patch_size', () => {
  assert.deepEqual(augmentationGeometry([128, 128, 128]).sampledPatchSize, [205, 205, 205]);
  assert.deepEqual(augmentationGeometry([128, 112, 160]).sampledPatchSize, [196, 208, 238]);
  assert.deepEqual(augmentationGeometry([40, 56, 40]).sampledPatchSize, [73, 80, 64]);
  for (const { patch, enlarged } of fixtures.enlargedPatchSizes as { patch: Triple; enlarged: Triple }[]) {
    assert.deepEqual(augmentationGeometry(patch).sampledPatchSize, enlarged, `patch ${patch}`);
  }
  // Dummy 2D: max / first > 3, rotation +-180 deg (capped at 90 for the size), axis 0 kept.
  assert.equal(isDummy2d([20, 128, 128]), true);
  assert.equal(isDummy2d([32, 96, 96]), false);
  assert.deepEqual(augmentationGeometry([20, 128, 128]).rotationRangeRad, [-Math.PI, Math.PI]);
  assert.deepEqual(augmentationGeometry([16, 32, 32], false).sampledPatchSize, [16, 32, 32]);
  assert.deepEqual(enlargedPatchSize([10, 10, 10], 0), [11, 11, 11]);
});

test('forced-foreground samples are the last round(B * 0.33) of a batch (python rounding)', () => {
  const forced = (batchSize: number) => Array.from({ length: batchSize }, (_, j) => isForcedForeground(j, batchSize, 0.33)).filter(Boolean).length;
  assert.equal(forced(2), 1);
  assert.equal(forced(9), 3);
  assert.equal(forced(1), 0);
  assert.deepEqual([0, 1].map((j) => isForcedForeground(j, 2, 0.33)), [false, true]);
  assert.equal(pythonRound(2.5), 2);
  assert.equal(pythonRound(3.5), 4);
  assert.equal(pythonRound(1.34), 1);
  assert.equal(pythonRound(-0.5), 0);
});

test('random patches follow need_to_pad: lower bound uniform in [-pad//2, shape + pad//2 + pad%2 - patch]', () => {
  const shape: Triple = [20, 40, 30];
  const sampled: Triple = [35, 51, 42];
  const final: Triple = [16, 32, 32];
  // Axis 0: 35 - 16 = 19 fits; axis 1: 51 - 32 = 19; axis 2: 10 + 30 < 42 so raised to 12.
  assert.deepEqual(needToPad(shape, sampled, final), [19, 19, 12]);
  const low = [-10, -10, -6];
  const high = [20 + 9 + 1 - 35, 40 + 9 + 1 - 51, 30 + 6 - 42];
  const seen = [new Set<number>(), new Set<number>(), new Set<number>()];
  const rng = new Rng(5);
  for (let i = 0; i < 400; i++) {
    const choice = choosePatch(rng, shape, sampled, final, false, { '1': [[3, 4, 5]] });
    assert.equal(choice.foregroundLabel, null);
    choice.lowerBound.forEach((v, axis) => {
      assert.ok(v >= low[axis]! && v <= high[axis]!, `axis ${axis}: ${v}`);
      seen[axis]!.add(v);
    });
  }
  seen.forEach((values, axis) => {
    assert.ok(values.has(low[axis]!) && values.has(high[axis]!), `axis ${axis} reaches both ends`);
    assert.equal(values.size, high[axis]! - low[axis]! + 1);
  });
});

test('forced foreground centres the patch on a stored voxel of a present label (lower side clamped)', () => {
  const rng = new Rng(9);
  const shape: Triple = [30, 40, 50];
  const patch: Triple = [10, 12, 14];
  const locations = { '1': [[15, 20, 25]] as [number, number, number][], '2': [] as [number, number, number][], '3': [[1, 2, 40]] as [number, number, number][] };
  const labelsSeen = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const choice = choosePatch(rng, shape, patch, patch, true, locations);
    labelsSeen.add(choice.foregroundLabel!);
    if (choice.foregroundLabel === 1) assert.deepEqual(choice.lowerBound, [10, 14, 18]);
    else if (choice.foregroundLabel === 3) assert.deepEqual(choice.lowerBound, [0, 0, 33], 'clamped at the random lower limit 0');
    else assert.fail(`label ${choice.foregroundLabel} has no locations`);
  }
  assert.deepEqual([...labelsSeen].sort(), [1, 3]);
  // No foreground stored: falls back to a random patch.
  assert.equal(choosePatch(rng, shape, patch, patch, true, { '1': [] }).foregroundLabel, null);
});

test('the crop pads the image with 0 and the labels with -1, mapped to 0 at the end', () => {
  const shape: Triple = [3, 4, 5];
  const image = Float32Array.from({ length: 2 * 60 }, (_, i) => i + 1);
  const seg = Int8Array.from({ length: 60 }, (_, i) => (i % 3) - 1);
  const lower: Triple = [-1, 2, 3];
  const patch: Triple = [3, 3, 3];
  const croppedImage = cropAndPad(image, 2, shape, lower, patch, 0);
  const croppedSeg = cropAndPad(seg, 1, shape, lower, patch, -1);
  for (let c = 0; c < 2; c++) {
    for (let z = 0; z < 3; z++) {
      for (let y = 0; y < 3; y++) {
        for (let x = 0; x < 3; x++) {
          const [sz, sy, sx] = [z - 1, y + 2, x + 3];
          const inside = sz >= 0 && sy < 4 && sx < 5;
          const value = croppedImage[((c * 3 + z) * 3 + y) * 3 + x];
          assert.equal(value, inside ? image[((c * 3 + sz) * 4 + sy) * 5 + sx] : 0);
          if (c === 0) assert.equal(croppedSeg[(z * 3 + y) * 3 + x], inside ? seg[(sz * 4 + sy) * 5 + sx] : -1);
        }
      }
    }
  }
  const final = finalizeSample({ image: croppedImage, seg: croppedSeg, channels: 2, shape: patch });
  assert.ok(final.seg.every((v) => v >= 0));
  assert.equal(final.seg[0], 0, 'padding -1 -> 0');
  // With a masked channel, image voxels whose label was -1 become 0.
  const masked = finalizeSample({ image: croppedImage, seg: croppedSeg, channels: 2, shape: patch }, [1]);
  for (let i = 0; i < 27; i++) if (croppedSeg[i]! < 0) assert.equal(masked.image[27 + i], 0);
  assert.deepEqual(masked.image.subarray(0, 27), croppedImage.subarray(0, 27));
});

test('a crop written into a given target (stale values in it) equals the crop into a new array, padded or inside', () => {
  const shape: Triple = [3, 4, 5];
  const image = Float32Array.from({ length: 2 * 60 }, (_, i) => i + 1);
  const seg = Int8Array.from({ length: 60 }, (_, i) => (i % 3) - 1);
  const patch: Triple = [2, 3, 3];
  for (const lower of [[-1, 2, 3], [1, 0, 1], [0, -2, -1]] as Triple[]) {
    const imageTarget = new Float32Array(2 * 18).fill(7);
    const segTarget = new Int8Array(18).fill(5);
    assert.equal(cropAndPad(image, 2, shape, lower, patch, 0, imageTarget), imageTarget);
    assert.equal(cropAndPad(seg, 1, shape, lower, patch, -1, segTarget), segTarget);
    assert.deepEqual(imageTarget, cropAndPad(image, 2, shape, lower, patch, 0), `image at [${lower}]`);
    assert.deepEqual(segTarget, cropAndPad(seg, 1, shape, lower, patch, -1), `labels at [${lower}]`);
  }
  assert.throws(() => cropAndPad(seg, 1, shape, [0, 0, 0], patch, -1, new Int8Array(17)), /target has 17 values, the crop 18/);
  // In place: finalizeSample maps -1 -> 0 in the given arrays.
  const sample = { image: image.slice(0, 60), seg: seg.slice(), channels: 1, shape };
  const done = finalizeSample(sample, [0], 0, true);
  assert.ok(done.seg === sample.seg && done.image === sample.image);
  assert.deepEqual(done, finalizeSample({ ...sample, image: image.slice(0, 60), seg: seg.slice() }, [0]));
});

test('finalizeSample maps every negative label to 0 and keeps the others, at any offset and length, in place or on a copy', () => {
  const all = Int8Array.from({ length: 256 + 7 }, (_, i) => ((i * 37) % 256) - 128);
  for (const [start, end] of [[0, 263], [1, 200], [3, 4], [5, 5]] as const) {
    const seg = all.slice().subarray(start, end);
    const before = seg.slice();
    const shape: Triple = [1, 1, seg.length];
    const copy = finalizeSample({ image: new Float32Array(seg.length), seg, channels: 1, shape });
    assert.deepEqual([...copy.seg], [...before].map((v) => (v < 0 ? 0 : v)), `[${start}, ${end})`);
    assert.deepEqual(seg, before, 'a copy leaves the input alone');
    const done = finalizeSample({ image: new Float32Array(seg.length), seg, channels: 1, shape }, [], 0, true);
    assert.equal(done.seg, seg);
    assert.deepEqual(seg, copy.seg, 'in place');
  }
});

test('forced foreground is never centred on the ignore label, even when the cache stored its locations', () => {
  const rng = new Rng(13);
  const shape: Triple = [20, 20, 20];
  const patch: Triple = [8, 8, 8];
  const locations = { '1': [[10, 10, 10]] as [number, number, number][], '2': [[3, 3, 3], [15, 15, 15]] as [number, number, number][] };
  for (let i = 0; i < 100; i++) {
    const choice = choosePatch(rng, shape, patch, patch, true, locations, 2);
    assert.equal(choice.foregroundLabel, 1);
    assert.deepEqual(choice.lowerBound, [6, 6, 6]);
  }
  // only ignore voxels stored: a random patch, as for a case without foreground
  assert.equal(choosePatch(rng, shape, patch, patch, true, { '2': [[3, 3, 3]] }, 2).foregroundLabel, null);
  // without the ignore label given, label 2 is an ordinary class
  const labels = new Set(Array.from({ length: 50 }, () => choosePatch(rng, shape, patch, patch, true, locations).foregroundLabel));
  assert.deepEqual([...labels].sort(), [1, 2]);
});
