/**
 * The Wilcoxon signed-rank test against scipy.stats.wilcoxon of Debian 12's SciPy 1.10.1
 * (test/fixtures/stats/make_stats_fixtures.py): statistics and p-values under 'auto', 'exact' and
 * 'approx' for n < 10, ties, zeros, the n = 50 / 51 boundary and n = 80. Bound 1e-6 absolute on
 * p-values (the issue's): the exact p-values are sums of at most ~3,300 dyadic probabilities and
 * the normal tail is ~1e-15 relative, so the real agreement is ~1e-14.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { averageRanks, normalSf, signedRankDistribution, wilcoxon, type WilcoxonMethod } from './statsWilcoxon.js';

interface Expected { statistic: number; pvalue: number; method: 'exact' | 'approx' }
const fixtures = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/stats/expected_stats.json', import.meta.url), 'utf8')) as {
  scipy: string;
  wilcoxon: Record<string, { d: number[] } & Record<WilcoxonMethod, Expected>>;
  normal_sf: [number, number][];
};

test('the fixtures come from SciPy 1.10 (the version whose rules wilcoxon follows)', () => {
  assert.match(fixtures.scipy, /^1\.10\./);
});

test('wilcoxon matches scipy.stats.wilcoxon (statistic, p-value, method) for every input and method', () => {
  let checked = 0;
  for (const [name, entry] of Object.entries(fixtures.wilcoxon)) {
    for (const method of ['auto', 'exact', 'approx'] as const) {
      const expected = entry[method];
      const result = wilcoxon(entry.d, { method });
      assert.ok(result !== null, `${name} ${method}`);
      assert.equal(result.method, expected.method, `${name} ${method}: method`);
      assert.equal(result.statistic, expected.statistic, `${name} ${method}: statistic`);
      assert.ok(Math.abs(result.pValue - expected.pvalue) < 1e-6, `${name} ${method}: p ${result.pValue} vs ${expected.pvalue}`);
      checked++;
    }
  }
  assert.equal(checked, Object.keys(fixtures.wilcoxon).length * 3);
});

test('SciPy 1.10 rules: zeros force approx and are dropped, ties stay exact below 51, n = 0 or all zeros is no test', () => {
  const zeros = wilcoxon(fixtures.wilcoxon.n7_zeros!.d)!;
  assert.deepEqual([zeros.method, zeros.n, zeros.nZero], ['approx', 5, 2]);
  const ties = wilcoxon(fixtures.wilcoxon.n9_ties!.d)!;
  assert.deepEqual([ties.method, ties.ties, ties.statistic], ['exact', true, 5.5]);
  assert.equal(wilcoxon(fixtures.wilcoxon.n50!.d)!.method, 'exact');
  assert.equal(wilcoxon(fixtures.wilcoxon.n51!.d)!.method, 'approx');
  assert.equal(wilcoxon([]), null);
  assert.equal(wilcoxon([0, 0, 0]), null);
  assert.throws(() => wilcoxon([0.1, NaN]), RangeError);
});

test('normalSf matches scipy.stats.norm.sf to 1e-12 relative, far into the tail', () => {
  for (const [z, expected] of fixtures.normal_sf) {
    const got = normalSf(z);
    assert.ok(Math.abs(got - expected) <= 1e-12 * expected + 1e-300, `sf(${z}) = ${got} vs ${expected}`);
  }
});

test('average ranks and tie groups as scipy.stats.rankdata; the exact distribution sums to 1', () => {
  const { ranks, tieSizes } = averageRanks([0.3, 0.1, 0.3, 0.2, 0.3, 0.1]);
  assert.deepEqual([...ranks], [5, 1.5, 5, 3, 5, 1.5]);
  assert.deepEqual(tieSizes.sort(), [2, 3]);
  const pmf = signedRankDistribution(10);
  assert.equal(pmf.length, 56);
  assert.ok(Math.abs(pmf.reduce((s, p) => s + p, 0) - 1) < 1e-15);
  assert.equal(pmf[0], 2 ** -10);
});
