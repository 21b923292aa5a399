import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { CaseMetrics } from './caseMetrics.js';
import { f1OfMeans, summarise, summariseCases, summariseFolds } from './summary.js';

type Num = number | 'NaN';
const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/eval/eval_fixtures.json', import.meta.url), 'utf8')) as {
  summary: { values: Num[]; mean: number; std: number; n: number }[];
  f1_of_means: { precision: Num[]; sensitivity: Num[]; f1_of_means: number };
};
const value = (v: Num): number => (v === 'NaN' ? NaN : v);

test('summarise: mean and population std (numpy nanmean / nanstd, ddof=0), NaN skipped', () => {
  assert.equal(fixtures.summary.length, 4);
  for (const c of fixtures.summary) {
    const s = summarise(c.values.map(value));
    assert.ok(Math.abs(s.mean - c.mean) <= 1e-12);
    assert.ok(Math.abs(s.std - c.std) <= 1e-12);
    assert.equal(s.n, c.n);
    assert.equal(s.nSkipped, c.values.length - c.n);
  }
  const none = summarise([NaN]);
  assert.ok(Number.isNaN(none.mean) && Number.isNaN(none.std));
  const withInfinity = summarise([1, Infinity]);
  assert.equal(withInfinity.mean, Infinity);
  assert.equal(withInfinity.nInfinite, 1);
});

function fakeCase(precision: number, sensitivity: number, emptyBoth = false): CaseMetrics {
  return {
    dsc: emptyBoth ? NaN : 0.5, nsd: emptyBoth ? NaN : 0.6, toleranceMm: 3, hd95: emptyBoth ? NaN : 4, sensitivity, precision,
    specificity: 0.99, f1: emptyBoth ? NaN : 0.5, accuracy: 0.98, tp: 1, fp: 1, fn: 1, tn: 1,
    predVolumeMl: 1, refVolumeMl: 2, predSurfaceMm2: 1, refSurfaceMm2: 1, emptyBoth,
  };
}

test('summariseCases: F1 of the means is 2PS/(P+S) of mean precision and mean sensitivity', () => {
  const { precision, sensitivity, f1_of_means } = fixtures.f1_of_means;
  const cases = precision.map((p, i) => fakeCase(value(p), value(sensitivity[i]!)));
  const summary = summariseCases(cases);
  assert.ok(Math.abs(summary.f1OfMeans - f1_of_means) <= 1e-12);
  assert.equal(summary.nCases, 4);
  assert.equal(summary.metrics.precision.n, 3);
  assert.ok(Number.isNaN(f1OfMeans(0, 0)));
});

test('summariseFolds: per fold, pooled overall, and mean of fold means; both-empty cases counted', () => {
  const folds = [[fakeCase(0.8, 0.4), fakeCase(0.6, 0.6)], [fakeCase(1, 1), fakeCase(NaN, NaN, true)]];
  const result = summariseFolds(folds);
  assert.equal(result.folds.length, 2);
  assert.ok(Math.abs(result.folds[0]!.metrics.precision.mean - 0.7) < 1e-15);
  assert.equal(result.folds[1]!.nEmptyBoth, 1);
  assert.equal(result.folds[1]!.metrics.dsc.n, 1);
  assert.equal(result.overall.nCases, 4);
  assert.equal(result.overall.nEmptyBoth, 1);
  assert.ok(Math.abs(result.overall.metrics.precision.mean - 0.8) < 1e-15);
  assert.ok(Math.abs(result.foldMeans.precision.mean - 0.85) < 1e-15);
  assert.ok(Math.abs(result.foldMeans.precision.std - 0.15) < 1e-15);
});
