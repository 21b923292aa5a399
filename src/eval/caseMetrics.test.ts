import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Shape3 } from '../core/index.js';
import { InputError } from '../core/index.js';
import { caseMetrics } from './caseMetrics.js';

type Num = number | 'NaN' | 'Infinity';
interface Case {
  name: string; shape: Shape3; spacing: Shape3; pred: number[]; ref: number[];
  tp: number; fp: number; fn: number; tn: number; dsc: Num; nsd: Record<string, Num>; hd: Record<string, Num>;
}
const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/eval/eval_fixtures.json', import.meta.url), 'utf8')) as { surface: Case[] };
const value = (v: Num): number => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v);
const mask = (shape: Shape3, indices: number[]) => {
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (const i of indices) data[i] = 1;
  return { data, shape };
};
function close(actual: number, expected: number, what: string): void {
  if (Number.isNaN(expected)) assert.ok(Number.isNaN(actual), `${what}: ${actual}`);
  else if (!Number.isFinite(expected)) assert.equal(actual, expected, what);
  else assert.ok(Math.abs(actual - expected) <= 1e-6, `${what}: ${actual} vs ${expected}`);
}

test('caseMetrics agrees with the reference (DSC, NSD@1 and @3 mm, HD95) and the counts', () => {
  for (const c of fixtures.surface) {
    const emptyBoth = c.pred.length + c.ref.length === 0;
    for (const toleranceMm of [1, 3]) {
      const m = caseMetrics(mask(c.shape, c.pred), mask(c.shape, c.ref), c.spacing, { toleranceMm, caseName: c.name });
      close(m.dsc, value(c.dsc), `${c.name} dsc`);
      close(m.f1, value(c.dsc), `${c.name} f1`);
      close(m.nsd, value(c.nsd[`${toleranceMm}.0`]!), `${c.name} nsd@${toleranceMm}`);
      close(m.hd95, emptyBoth ? NaN : value(c.hd['95']!), `${c.name} hd95`);
      assert.equal(m.toleranceMm, toleranceMm);
      assert.equal(m.emptyBoth, emptyBoth);
      close(m.sensitivity, c.tp + c.fn === 0 ? NaN : c.tp / (c.tp + c.fn), `${c.name} sensitivity`);
      close(m.precision, c.tp + c.fp === 0 ? NaN : c.tp / (c.tp + c.fp), `${c.name} precision`);
      close(m.specificity, c.tn + c.fp === 0 ? NaN : c.tn / (c.tn + c.fp), `${c.name} specificity`);
      close(m.accuracy, (c.tp + c.tn) / (c.tp + c.fp + c.fn + c.tn), `${c.name} accuracy`);
      const voxelMl = (c.spacing[0] * c.spacing[1] * c.spacing[2]) / 1000;
      close(m.predVolumeMl, c.pred.length * voxelMl, `${c.name} pred volume`);
      close(m.refVolumeMl, c.ref.length * voxelMl, `${c.name} ref volume`);
    }
  }
});

test('defaults to a 3 mm tolerance; errors name the case', () => {
  const a = mask([4, 4, 4], [21]);
  assert.equal(caseMetrics(a, a, [1, 1, 1]).toleranceMm, 3);
  assert.throws(() => caseMetrics(a, mask([4, 4, 5], [1]), [1, 1, 1], { caseName: 'case_007' }), (e: unknown) => e instanceof InputError && /case_007/.test(e.message));
  assert.throws(() => caseMetrics(a, a, [1, 1], { caseName: 'case_007' }), InputError);
  assert.throws(() => caseMetrics(a, a, [1, 1, 1], { toleranceMm: -1 }), InputError);
});
