import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Shape3 } from '../core/index.js';
import { InputError } from '../core/index.js';
import {
  accuracyFromCounts,
  confusion,
  dice,
  diceFromCounts,
  f1FromCounts,
  precisionFromCounts,
  sensitivityFromCounts,
  specificityFromCounts,
} from './confusion.js';

interface Case { name: string; shape: Shape3; pred: number[]; ref: number[]; tp: number; fp: number; fn: number; tn: number; dsc: number | 'NaN' }
const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/eval/eval_fixtures.json', import.meta.url), 'utf8')) as { surface: Case[] };
const mask = (shape: Shape3, indices: number[]) => {
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (const i of indices) data[i] = 1;
  return { data, shape };
};

test('confusion counts and DSC match numpy on every fixture pair', () => {
  for (const c of fixtures.surface) {
    const counts = confusion(mask(c.shape, c.pred), mask(c.shape, c.ref));
    assert.deepEqual(counts, { tp: c.tp, fp: c.fp, fn: c.fn, tn: c.tn }, c.name);
    const d = dice(mask(c.shape, c.pred), mask(c.shape, c.ref));
    if (c.dsc === 'NaN') assert.ok(Number.isNaN(d), c.name);
    else assert.ok(Math.abs(d - c.dsc) <= 1e-12, c.name);
  }
});

test('hand-computed ratios; F1 per case equals DSC', () => {
  const c = { tp: 6, fp: 2, fn: 4, tn: 88 };
  assert.equal(diceFromCounts(c), 12 / 18);
  assert.equal(sensitivityFromCounts(c), 0.6);
  assert.equal(precisionFromCounts(c), 0.75);
  assert.equal(specificityFromCounts(c), 88 / 90);
  assert.equal(accuracyFromCounts(c), 0.94);
  // 2PS/(P+S) = 2*0.75*0.6/1.35 = 2/3 = DSC
  assert.ok(Math.abs(f1FromCounts(c) - (2 * 0.75 * 0.6) / 1.35) < 1e-15);
});

test('empty masks: 0/0 ratios are NaN, one empty mask gives DSC 0', () => {
  const none = { tp: 0, fp: 0, fn: 0, tn: 10 };
  assert.ok(Number.isNaN(diceFromCounts(none)));
  assert.ok(Number.isNaN(sensitivityFromCounts(none)));
  assert.ok(Number.isNaN(precisionFromCounts(none)));
  assert.equal(specificityFromCounts(none), 1);
  assert.equal(accuracyFromCounts(none), 1);
  const missed = { tp: 0, fp: 0, fn: 5, tn: 5 };
  assert.equal(diceFromCounts(missed), 0);
  assert.equal(sensitivityFromCounts(missed), 0);
  assert.ok(Number.isNaN(precisionFromCounts(missed)));
  assert.ok(Number.isNaN(specificityFromCounts({ tp: 4, fp: 0, fn: 0, tn: 0 })));
});

test('non-zero values count as foreground; mismatched shapes are an InputError', () => {
  const counts = confusion({ data: Uint8Array.from([0, 2, 255, 1]), shape: [1, 1, 4] }, { data: Uint8Array.from([0, 1, 0, 7]), shape: [1, 1, 4] });
  assert.deepEqual(counts, { tp: 2, fp: 1, fn: 0, tn: 1 });
  assert.throws(() => confusion({ data: new Uint8Array(4), shape: [1, 1, 4] }, { data: new Uint8Array(4), shape: [1, 4, 1] }), InputError);
});
