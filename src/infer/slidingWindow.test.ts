/** Window starts, boxes, padding and the Gaussian map against the numpy/scipy fixtures (make_infer_fixtures.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gaussianImportanceMap } from './gaussian.js';
import { mirrorCombinations } from './mirroring.js';
import { paddedShape, paddingToPatch, roundHalfEven, slidingWindowBoxes, slidingWindowSteps } from './slidingWindow.js';
import { FIXTURES } from './test-support.js';

interface Fixtures {
  steps: { size: number; patch: number; step: number; starts: number[] }[];
  gaussian_full: { patch: number[]; values: number[] }[];
  gaussian_sampled: { patch: number[]; points: number[][]; values: number[] };
}
const fixtures = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'infer_fixtures.json'), 'utf8')) as Fixtures;

test('window starts match nnU-Net (numpy) for every fixture case, 256/128 -> 0, 64, 128', () => {
  assert.deepEqual(slidingWindowSteps(256, 128, 0.5), [0, 64, 128]);
  assert.equal(fixtures.steps.length, 12);
  for (const c of fixtures.steps) assert.deepEqual(slidingWindowSteps(c.size, c.patch, c.step), c.starts, `${c.size}/${c.patch}/${c.step}`);
});

test('window starts: the last window ends at the volume edge, neighbours overlap by at least half', () => {
  for (const [size, patch] of [[37, 16], [300, 128], [129, 128], [64, 32]] as const) {
    const starts = slidingWindowSteps(size, patch);
    assert.equal(starts[0], 0);
    assert.equal(starts.at(-1)! + patch, size);
    for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! - starts[i - 1]! <= patch / 2);
  }
  assert.throws(() => slidingWindowSteps(10, 16), /pad the volume first/);
  assert.throws(() => slidingWindowSteps(20, 16, 0), /step fraction/);
});

test('boxes: product of the per-axis starts, z slowest (256^3 with patch 128 gives 27)', () => {
  const boxes = slidingWindowBoxes([256, 256, 256], [128, 128, 128]);
  assert.equal(boxes.length, 27);
  assert.deepEqual(boxes[0]!.start, [0, 0, 0]);
  assert.deepEqual(boxes[1]!.start, [0, 0, 64]);
  assert.deepEqual(boxes.at(-1)!.start, [128, 128, 128]);
  assert.equal(slidingWindowBoxes([12, 22, 19], [8, 16, 16]).length, 2 * 2 * 2);
});

test('padding to the patch: d // 2 before, the rest after, none on large axes', () => {
  const padding = paddingToPatch([6, 20, 11], [8, 16, 16]);
  assert.deepEqual(padding, [{ before: 1, after: 1 }, { before: 0, after: 0 }, { before: 2, after: 3 }]);
  assert.deepEqual(paddedShape([6, 20, 11], padding), [8, 20, 16]);
  assert.equal(roundHalfEven(14.5), 14);
  assert.equal(roundHalfEven(15.5), 16);
});

test('Gaussian importance map equals scipy gaussian_filter of an impulse (max 10), full maps', () => {
  assert.equal(fixtures.gaussian_full.length, 3);
  for (const { patch, values } of fixtures.gaussian_full) {
    const map = gaussianImportanceMap(patch);
    assert.equal(map.length, values.length);
    for (let i = 0; i < values.length; i++) {
      assert.ok(Math.abs(map[i]! - values[i]!) <= 1e-6 * Math.abs(values[i]!) + 1e-30, `patch ${patch} index ${i}: ${map[i]} vs ${values[i]}`);
    }
  }
});

test('Gaussian importance map for a 32x96x96 patch: centre 10, faces and corners as scipy', () => {
  const { patch, points, values } = fixtures.gaussian_sampled;
  const map = gaussianImportanceMap(patch);
  assert.equal(points.length, 46);
  points.forEach(([z, y, x], k) => {
    const got = map[(z! * patch[1]! + y!) * patch[2]! + x!]!;
    assert.ok(Math.abs(got - values[k]!) <= 1e-6 * values[k]!, `point ${points[k]}: ${got} vs ${values[k]}`);
  });
  assert.equal(map[(16 * 96 + 48) * 96 + 48], 10);
  assert.ok(map.every((v) => v > 0));
});

test('mirror combinations: identity first, then 1, 2 and 3 axes (itertools order)', () => {
  assert.deepEqual(mirrorCombinations([0, 1, 2]), [[], [0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]]);
  assert.deepEqual(mirrorCombinations([2, 1]), [[], [1], [2], [1, 2]]);
  assert.deepEqual(mirrorCombinations([]), [[]]);
});
