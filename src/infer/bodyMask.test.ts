/**
 * The body-mask geometry against hand-computed cases: the threshold on the CT-normalised scale,
 * the largest 6-connected component, and which windows come near it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { largestComponentAbove, normalizedCtThreshold, windowsTouchingMask } from './bodyMask.js';
import { paddingToPatch, paddedShape, slidingWindowBoxes, type Triple } from './slidingWindow.js';

test('the body threshold maps -500 HU through the CT normalisation, or is null outside the clip range', () => {
  assert.equal(normalizedCtThreshold({ mean: -100, std: 200, percentile_00_5: -1000, percentile_99_5: 400 }), -2);
  assert.equal(normalizedCtThreshold({ mean: 40, std: 20, percentile_00_5: -10, percentile_99_5: 90 }), null);
  assert.equal(normalizedCtThreshold({ mean: 0, std: 1, percentile_00_5: -500, percentile_99_5: 90 }), null);
});

test('the largest component is 6-connected: a diagonal neighbour is a component of its own', () => {
  // shape [1, 3, 4]:    row 0: 1 1 0 0
  //                     row 1: 0 0 1 0   (diagonal to (0, 1): not face-connected)
  //                     row 2: 0 0 1 1
  const data = Float32Array.from([1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1]);
  const mask = largestComponentAbove(data, [1, 3, 4], 0.5);
  assert.deepEqual([...mask], [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1]);
  assert.deepEqual([...largestComponentAbove(data, [1, 3, 4], 5)], new Array(12).fill(0));
});

test('windows run where they come within the margin of the body, on the padded grid', () => {
  // Unpadded shape [1, 4, 10]; patch [3, 4, 4] pads z by 1 before and 1 after; x starts 0, 2, 4, 6.
  const shape: Triple = [1, 4, 10];
  const patch: Triple = [3, 4, 4];
  const padding = paddingToPatch(shape, patch);
  assert.deepEqual(padding[0], { before: 1, after: 1 });
  const boxes = slidingWindowBoxes(paddedShape(shape, padding), patch, 0.5);
  assert.deepEqual(boxes.map((b) => b.start[2]), [0, 2, 4, 6]);
  // Body: x = 6, 7 in row y = 1 (2 voxels); a lone voxel at x = 0, y = 3 is a smaller component.
  const data = new Float32Array(40);
  data[1 * 10 + 6] = 1;
  data[1 * 10 + 7] = 1;
  data[3 * 10 + 0] = 1;
  const mask = largestComponentAbove(data, shape, 0.5);
  assert.equal(mask.reduce((s, v) => s + v, 0), 2);
  // Margin 0: x ranges [0,4) [2,6) [4,8) [6,10): only the last two hold x = 6 or 7.
  assert.deepEqual(windowsTouchingMask(boxes, patch, mask, shape, padding, 0), [false, false, true, true]);
  // Margin 1: [2,6) grows to [1,7) and reaches x = 6; [0,4) grows to [0,5) and does not.
  assert.deepEqual(windowsTouchingMask(boxes, patch, mask, shape, padding, 1), [false, true, true, true]);
  // Margin 2: [0,4) grows to [0,6): still short of x = 6.
  assert.deepEqual(windowsTouchingMask(boxes, patch, mask, shape, padding, 2), [false, true, true, true]);
  // No body: every window runs.
  assert.deepEqual(windowsTouchingMask(boxes, patch, new Uint8Array(40), shape, padding, 0), [true, true, true, true]);
});
