/** Pseudo Dice counts, per-class Dice, mean and EMA against nnU-Net's rule computed in PyTorch (test/fixtures/train/make_train_fixtures.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { accumulateCounts, diceFromCounts, emptyCounts, nanMean, updateEma } from './pseudoDice.js';

const reference = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/train/train_reference.json', import.meta.url), 'utf8'));

test('TP/FP/FN summed over batches, Dice per class and its mean match the PyTorch reference', () => {
  const ref = reference.pseudo_dice;
  const counts = emptyCounts(ref.num_classes);
  for (const batch of ref.batches) accumulateCounts(counts, batch.prediction, batch.target);
  assert.deepEqual(counts.tp, ref.tp);
  assert.deepEqual(counts.fp, ref.fp);
  assert.deepEqual(counts.fn, ref.fn);
  const dice = diceFromCounts(counts);
  dice.forEach((value, i) => assert.ok(Math.abs(value - ref.per_class[i]) < 1e-12));
  assert.ok(Math.abs(nanMean(dice) - ref.mean) < 1e-12);
});

test('a class absent from prediction and reference has no Dice and is left out of the mean', () => {
  const counts = accumulateCounts(emptyCounts(3), [0, 1, 1, 0], [0, 1, 0, 0]);
  const dice = diceFromCounts(counts);
  assert.ok(Math.abs(dice[0]! - 2 / 3) < 1e-12);
  assert.ok(Number.isNaN(dice[1]!));
  assert.ok(Math.abs(nanMean(dice) - 2 / 3) < 1e-12);
});

test('EMA 0.9 old + 0.1 new, first value as is, NaN leaves it unchanged', () => {
  let ema: number | null = null;
  reference.ema.values.forEach((value: number, i: number) => {
    ema = updateEma(ema, value);
    assert.ok(Math.abs(ema! - reference.ema.ema[i]) < 1e-12);
  });
  assert.equal(updateEma(0.5, NaN), 0.5);
  assert.equal(updateEma(null, NaN), null);
});

test('voxels whose reference is the ignore label count nowhere (hand-computed)', () => {
  // 2 classes, ignore 2. Voxels: (pred, ref) = (1,1) (1,0) (0,1) (1,2) (0,2) (1,1)
  const counts = accumulateCounts(emptyCounts(2), [1, 1, 0, 1, 0, 1], [1, 0, 1, 2, 2, 1], 2);
  assert.deepEqual(counts, { tp: [2], fp: [1], fn: [1] });
  // without the ignore label the predicted 1 on an ignore voxel would be a false positive
  assert.deepEqual(accumulateCounts(emptyCounts(2), [1, 1, 0, 1, 0, 1], [1, 0, 1, 2, 2, 1]).fp, [2]);
});
