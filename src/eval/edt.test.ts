import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Shape3 } from '../core/index.js';
import { InputError } from '../core/index.js';
import { distanceTransform, distancesAtPoints } from './edt.js';

interface EdtCase {
  shape: Shape3;
  spacing: Shape3;
  sites: number[];
  distances: number[];
}
const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/eval/eval_fixtures.json', import.meta.url), 'utf8')) as {
  edt: EdtCase[];
};

function siteMask(c: EdtCase): Uint8Array {
  const sites = new Uint8Array(c.shape[0] * c.shape[1] * c.shape[2]);
  for (const i of c.sites) sites[i] = 1;
  return sites;
}

test('distanceTransform matches scipy distance_transform_edt(sampling) on random grids', () => {
  assert.equal(fixtures.edt.length, 6);
  for (const c of fixtures.edt) {
    const got = distanceTransform(siteMask(c), c.shape, c.spacing);
    assert.equal(got.length, c.distances.length);
    for (let i = 0; i < got.length; i++) {
      assert.ok(Math.abs(got[i]! - c.distances[i]!) <= 1e-9, `shape ${c.shape} point ${i}: ${got[i]} vs ${c.distances[i]}`);
    }
  }
});

test('distancesAtPoints returns the same values as the full map at the chosen points', () => {
  const c = fixtures.edt[1]!;
  const points = Int32Array.from([0, 5, 77, 78, 200, c.distances.length - 1]);
  const got = distancesAtPoints(siteMask(c), c.shape, c.spacing, points);
  points.forEach((p, i) => assert.ok(Math.abs(got[i]! - c.distances[p]!) <= 1e-9));
});

test('distances that are exact in real numbers are exact (bit-identical to scipy)', () => {
  // Two voxels of 1.5 mm must be exactly 3 mm, so that a `<= 3` tolerance includes them.
  const sites = new Uint8Array(1 * 1 * 5);
  sites[0] = 1;
  const got = distanceTransform(sites, [1, 1, 5], [0.7, 0.7, 1.5]);
  assert.deepEqual(Array.from(got), [0, 1.5, 3, 4.5, 6]);
});

test('no site gives Infinity everywhere; bad input is an InputError', () => {
  const got = distanceTransform(new Uint8Array(8), [2, 2, 2], [1, 1, 1]);
  assert.ok(got.every((d) => d === Infinity));
  assert.throws(() => distanceTransform(new Uint8Array(7), [2, 2, 2], [1, 1, 1]), InputError);
  assert.throws(() => distanceTransform(new Uint8Array(8), [2, 2, 2], [1, 0, 1]), InputError);
  assert.throws(() => distancesAtPoints(new Uint8Array(8), [2, 2, 2], [1, 1, 1], Int32Array.from([3, 1])), InputError);
});
