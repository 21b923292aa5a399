/**
 * The bootstrap interval against numpy from the same resample index matrix (the fixture script
 * draws it), the seeded stratified resampling (deterministic, fold sizes kept, draws inside their
 * stratum), Holm's adjustment against a hand-computed case, and the paired comparison's pairwise
 * dropping of undefined cases. Bound 1e-6 absolute (the issue's); means of <= 80 values agree with
 * numpy's pairwise sums to ~1e-16.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Rng } from '../core/index.js';
import { bootstrapCi, quantileSorted, stratifiedResampleIndices } from './statsBootstrap.js';
import { comparePaired, holmAdjust } from './statsPaired.js';

const fixtures = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/stats/expected_stats.json', import.meta.url), 'utf8')) as {
  bootstrap: Record<string, { values: number[]; strata: number[]; resamples: number; indices: number[]; mean: number; low: number; high: number }>;
};

test('bootstrapCi: mean and 2.5/97.5 percentiles of the resample means equal numpy on the same index matrix', () => {
  for (const [name, c] of Object.entries(fixtures.bootstrap)) {
    assert.equal(c.indices.length, c.resamples * c.values.length, `${name}: the matrix is resamples x n`);
    const ci = bootstrapCi(c.values, Int32Array.from(c.indices), c.resamples);
    assert.ok(Math.abs(ci.mean - c.mean) < 1e-6, `${name} mean ${ci.mean} vs ${c.mean}`);
    assert.ok(Math.abs(ci.low - c.low) < 1e-6, `${name} low ${ci.low} vs ${c.low}`);
    assert.ok(Math.abs(ci.high - c.high) < 1e-6, `${name} high ${ci.high} vs ${c.high}`);
  }
});

test('quantileSorted interpolates linearly (numpy default)', () => {
  assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantileSorted([1, 2, 3, 4, 5], 0.025), 1.1);
  assert.ok(Number.isNaN(quantileSorted([], 0.5)));
});

test('stratifiedResampleIndices: seeded and replayable, every row keeps each stratum\'s size and draws inside it', () => {
  const strata = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1];
  const a = stratifiedResampleIndices(strata, 500, new Rng(3));
  assert.deepEqual(a, stratifiedResampleIndices(strata, 500, new Rng(3)));
  assert.notDeepEqual(a, stratifiedResampleIndices(strata, 500, new Rng(4)));
  assert.equal(a.length, 500 * strata.length);
  const hits = new Array<number>(strata.length).fill(0);
  for (let r = 0; r < 500; r++) {
    const row = [...a.subarray(r * strata.length, (r + 1) * strata.length)];
    for (const stratum of [0, 1, 2]) {
      const drawn = row.filter((i) => strata[i] === stratum).length;
      assert.equal(drawn, strata.filter((s) => s === stratum).length, `row ${r} stratum ${stratum}`);
    }
    for (const i of row) hits[i]!++;
  }
  // Uniform within a stratum: each member of stratum 0 (3 members, 3 draws a row) is drawn ~500 times.
  for (const i of [0, 1, 2]) assert.ok(Math.abs(hits[i]! - 500) < 100, `member ${i} drawn ${hits[i]} times`);
  assert.throws(() => stratifiedResampleIndices(strata, 0, new Rng(0)), RangeError);
});

test('holmAdjust: the hand-computed step-down case, ties, the cap at 1 and undefined p-values', () => {
  // Sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 4 x 0.005 = 0.02; 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 = 0.04 -> max(0.06, 0.04) = 0.06.
  const adjusted = holmAdjust([0.01, 0.04, 0.03, 0.005]);
  const expected = [0.03, 0.06, 0.06, 0.02];
  adjusted.forEach((p, i) => assert.ok(p !== null && Math.abs(p - expected[i]!) < 1e-15, `${i}: ${p}`));
  assert.deepEqual(holmAdjust([0.5, null, 0.5]), [1, null, 1]);
  assert.deepEqual(holmAdjust([0.02, 0.02]), [0.04, 0.04]);
  assert.deepEqual(holmAdjust([]), []);
});

test('comparePaired drops a unit where either side is undefined, counts it, and tests the rest', () => {
  const units = [
    { stratum: 0, a: 0.8, b: 0.7 },
    { stratum: 0, a: 0.6, b: null },
    { stratum: 0, a: 0.9, b: 0.85 },
    { stratum: 1, a: NaN, b: 0.5 },
    { stratum: 1, a: 0.7, b: 0.6 },
    { stratum: 1, a: 0.75, b: 0.5 },
  ];
  const c = comparePaired(units, { rng: new Rng(0), resamples: 2000 });
  assert.equal(c.n, 4);
  assert.equal(c.nSkipped, 2);
  assert.ok(Math.abs(c.difference! - (0.1 + 0.05 + 0.1 + 0.25) / 4) < 1e-12);
  assert.ok(c.ci !== null && c.ci.low <= c.difference! && c.difference! <= c.ci.high && c.ci.resamples === 2000);
  // Four positive differences, exact: p = 2 / 2^4.
  assert.deepEqual([c.wilcoxon!.method, c.wilcoxon!.pValue], ['exact', 0.125]);
  const none = comparePaired([{ stratum: 0, a: null, b: 1 }], { rng: new Rng(0) });
  assert.deepEqual([none.n, none.nSkipped, none.difference, none.ci, none.wilcoxon], [0, 1, null, null, null]);
});
