/** Resampling against scipy (test/fixtures/data/make_data_fixtures.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Shape3 } from '../core/index.js';
import {
  computeNewShape,
  resampleSegmentation,
  resampleVolume,
  roundHalfEven,
  separateZAxis,
  DATA_RESAMPLING,
} from './resample.js';
import type { InterpolationOrder } from './resample_axis.js';

interface ResampleCase {
  name: string;
  spacing: Shape3;
  target: Shape3;
  order: InterpolationOrder;
  orderZ: InterpolationOrder;
  axis: number | null;
  shape: Shape3;
  data: number[];
}
const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/data/data_fixtures.json', import.meta.url), 'utf8'));

function assertClose(actual: ArrayLike<number>, expected: number[], tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= tolerance, `${label}: max abs difference ${worst} > ${tolerance}`);
}

test('image resampling matches scipy zoom / nnU-Net (cubic, linear, separate-z)', () => {
  const image = { data: Float32Array.from(fixtures.image.data as number[]), shape: fixtures.image.shape as Shape3 };
  assert.equal(fixtures.resample.length, 5);
  for (const c of fixtures.resample as ResampleCase[]) {
    assert.equal(separateZAxis(c.spacing, c.target, DATA_RESAMPLING), c.axis, `${c.name}: axis`);
    const result = resampleVolume(image, c.spacing, c.target, { order: c.order, orderZ: c.orderZ });
    assert.deepEqual(result.shape, c.shape, `${c.name}: shape`);
    assertClose(result.data, c.data, 1e-4, c.name);
  }
});

test('segmentation resampling: one-hot linear with 0.5 threshold, -1 kept', () => {
  const seg = { data: Int8Array.from(fixtures.seg.data as number[]), shape: fixtures.seg.shape as Shape3 };
  assert.equal(fixtures.resample_seg.length, 3);
  for (const c of fixtures.resample_seg as ResampleCase[]) {
    const result = resampleSegmentation(seg, c.spacing, c.target, { orderZ: c.orderZ });
    assert.deepEqual(result.shape, c.shape, `${c.name}: shape`);
    assert.deepEqual(Array.from(result.data), c.data, c.name);
  }
});

test('new shape rounds halves to even like Python', () => {
  assert.equal(roundHalfEven(2.5), 2);
  assert.equal(roundHalfEven(3.5), 4);
  assert.equal(roundHalfEven(-1.5), -2);
  assert.deepEqual(computeNewShape([10, 5, 7], [1, 1, 1], [4, 2, 2]), [2, 2, 4]);
});

test('separate-z is off when two axes tie for the lowest resolution', () => {
  assert.equal(separateZAxis([4, 4, 1], [1, 1, 1], DATA_RESAMPLING), null);
  assert.equal(separateZAxis([1, 4, 1], [1, 1, 1], DATA_RESAMPLING), 1);
  assert.equal(separateZAxis([1, 2, 1], [1, 1, 1], { forceSeparateZ: true, anisotropyThreshold: 3 }), 1);
});
