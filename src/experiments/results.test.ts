/** Fold metrics and arm summaries against numpy (test/fixtures/report/make_report_fixtures.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { CaseMetrics } from '../eval/index.js';
import { armSummary, foldMetrics, TABLE_METRICS, type StudyResults } from './results.js';

const results = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/report/study/results.json', import.meta.url), 'utf8')) as StudyResults;

function close(actual: number | null, expected: number | null, what: string): void {
  assert.ok(actual !== null && expected !== null && Math.abs(actual - expected) < 1e-12, `${what}: ${actual} vs ${expected}`);
}

test('foldMetrics: means over cases, the paper F1 of the means, mean seconds per epoch (numpy)', () => {
  for (const arm of results.arms) {
    for (const fold of arm.folds) {
      const cases = fold.cases.map((c) => ({ ...c, f1: c.dsc, predVolumeMl: 1, refVolumeMl: 1, emptyBoth: false }) as unknown as CaseMetrics);
      const metrics = foldMetrics(cases, fold.epochs);
      for (const metric of TABLE_METRICS) close(metrics[metric], fold.metrics[metric], `${arm.strategy} fold ${fold.fold} ${metric}`);
    }
  }
});

test('armSummary: mean and population std over the fold values (numpy)', () => {
  for (const arm of results.arms) {
    const summary = armSummary(arm.folds);
    for (const metric of TABLE_METRICS) {
      close(summary[metric].mean, arm.summary[metric].mean, `${arm.strategy} ${metric} mean`);
      close(summary[metric].std, arm.summary[metric].std, `${arm.strategy} ${metric} std`);
      assert.equal(summary[metric].n, 2);
    }
  }
});
