/**
 * Dice + CE against hand-computed values and a PyTorch fixture: batch Dice against per-sample
 * Dice on a 2-sample batch, the ignore label left out of both terms at every deep-supervision
 * level (test/fixtures/nn/make_ignore_loss_fixtures.py, nnU-Net's formulas in float64).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../core/index.js';
import { add, eq, fromArray, liveTensors, scope, sum, type Tensor } from '../tensor/index.js';
import { deepSupervisionLoss, deepSupervisionTargets, deepSupervisionWeights, diceCeLoss, DICE_DEFAULTS } from './index.js';

const SMOOTH = DICE_DEFAULTS.smooth;

/** Logits [B, 2, 1, 1, V] whose softmax gives class 1 the probability p (class 0 logit 0). */
function twoClassLogits(p1: number[][]): Tensor {
  const [b, v] = [p1.length, p1[0]!.length];
  const data = new Float32Array(b * 2 * v);
  p1.forEach((row, s) => row.forEach((p, i) => (data[(s * 2 + 1) * v + i] = Math.log(p / (1 - p)))));
  return fromArray(data, [b, 2, 1, 1, v], { requiresGrad: true });
}

const labels = (rows: number[][]): Tensor => fromArray(new Int8Array(rows.flat()), [rows.length, 1, 1, 1, rows[0]!.length]);

// fp32 softmax/log/sums of a handful of O(1) values: a few ulps (~1e-7) each; 1e-6 holds on every CPU.
const close = (actual: number, expected: number, bound = 1e-6): void =>
  assert.ok(Math.abs(actual - expected) <= bound * Math.max(1, Math.abs(expected)), `${actual} vs ${expected}`);

test('batch Dice and per-sample Dice on a 2-sample batch equal the hand-computed losses', () => {
  // sample 0: target [1, 0], p1 [0.8, 0.2]; sample 1: target [1, 1], p1 [0.6, 0.6]
  const ce = (2 * -Math.log(0.8) + 2 * -Math.log(0.6)) / 4;
  const batchDice = (2 * (0.8 + 1.2) + SMOOTH) / (1 + 2 + (1.0 + 1.2) + SMOOTH); // 4 / 5.2
  const perSample = ((2 * 0.8 + SMOOTH) / (1 + 1.0 + SMOOTH) + (2 * 1.2 + SMOOTH) / (2 + 1.2 + SMOOTH)) / 2; // (0.8 + 0.75) / 2
  assert.ok(Math.abs(batchDice - perSample) > 5e-3, 'the case must tell the two apart');
  scope(() => {
    const logits = twoClassLogits([[0.8, 0.2], [0.6, 0.6]]);
    const target = labels([[1, 0], [1, 1]]);
    close(diceCeLoss(logits, target, { batchDice: true }).item(), ce - batchDice);
    close(diceCeLoss(logits, target, { batchDice: false }).item(), ce - perSample);
  });
});

test('ignore-label voxels count in neither CE nor Dice (hand-computed)', () => {
  // target [1, 0, ignore, ignore] with ignore = 2 (2 classes): only voxels 0 and 1 count.
  const ce = (-Math.log(0.8) - Math.log(0.7)) / 2;
  const dice = (2 * 0.8 + SMOOTH) / (1 + (0.8 + 0.3) + SMOOTH);
  scope(() => {
    const target = labels([[1, 0, 2, 2]]);
    const a = diceCeLoss(twoClassLogits([[0.8, 0.3, 0.9, 0.1]]), target, { ignoreLabel: 2 }).item();
    const b = diceCeLoss(twoClassLogits([[0.8, 0.3, 0.05, 0.99]]), target, { ignoreLabel: 2 }).item();
    close(a, ce - dice);
    close(b, ce - dice);
    // every voxel ignored: CE is 0 (nnU-Net skips it), Dice = smooth / smooth = 1
    close(diceCeLoss(twoClassLogits([[0.8, 0.3]]), labels([[2, 2]]), { ignoreLabel: 2 }).item(), -1);
  });
});

interface IgnoreFixture {
  numClasses: number;
  ignoreLabel: number;
  strides: number[][];
  targetShape: number[];
  target: number[];
  outputShapes: number[][];
  outputs: number[][];
  ignoredVoxelsPerLevel: number[];
  loss: { batchDice: number; perSampleDice: number; batchDiceIgnoreAsBackground: number };
}

const fixture = JSON.parse(
  fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nn/ignore_loss.json'), 'utf8'),
) as IgnoreFixture;

test('deep-supervised Dice+CE with an ignore label equals nnU-Net (PyTorch fixture), for batch and per-sample Dice', () => {
  const before = liveTensors();
  scope(() => {
    const target = fromArray(new Int8Array(fixture.target), fixture.targetShape);
    const levels = fixture.outputShapes.length;
    const targets = deepSupervisionTargets(target, fixture.strides, levels);
    // our nearest-exact down-sampling keeps the ignore voxels where PyTorch's does
    targets.forEach((t, i) => assert.equal(sum(eq(t, fixture.ignoreLabel)).item(), fixture.ignoredVoxelsPerLevel[i]));
    const outputs = fixture.outputs.map((values, i) => fromArray(new Float32Array(values), fixture.outputShapes[i]!, { requiresGrad: true }));
    const weights = deepSupervisionWeights(levels);
    const loss = (batchDice: boolean) =>
      deepSupervisionLoss(outputs, targets, (o, t) => diceCeLoss(o, t, { batchDice, ignoreLabel: fixture.ignoreLabel }), weights);
    // fp32 inputs rounded from the float64 fixture, fp32 sums over <= 288 voxels: measured 2.5e-7, bound 1e-5.
    close(loss(true).item(), fixture.loss.batchDice, 1e-5);
    close(loss(false).item(), fixture.loss.perSampleDice, 1e-5);
    // the mask matters: the same voxels relabelled as background give another loss
    assert.ok(Math.abs(fixture.loss.batchDice - fixture.loss.batchDiceIgnoreAsBackground) > 1e-3);
    const relabelled = targets.map((t) => fromArray(new Int8Array(Array.from(t.toTypedArray() as Int8Array, (v) => (v === fixture.ignoreLabel ? 0 : v))), t.shape));
    close(deepSupervisionLoss(outputs, relabelled, (o, t) => diceCeLoss(o, t, { batchDice: true }), weights).item(), fixture.loss.batchDiceIgnoreAsBackground, 1e-5);

    // no gradient reaches the logits of an ignored voxel, at any level with a weight
    loss(true).backward();
    outputs.forEach((output, level) => {
      if (weights[level] === 0) return;
      const grad = output.grad!.toFloat32Array();
      const t = targets[level]!.toTypedArray() as Int8Array;
      const [b, c] = output.shape as [number, number];
      const voxels = t.length / b;
      let ignored = 0;
      for (let s = 0; s < b; s++) {
        for (let v = 0; v < voxels; v++) {
          if (t[s * voxels + v] !== fixture.ignoreLabel) continue;
          ignored++;
          for (let k = 0; k < c; k++) assert.equal(grad[(s * c + k) * voxels + v], 0, `level ${level} sample ${s} voxel ${v} class ${k}`);
        }
      }
      assert.equal(ignored, fixture.ignoredVoxelsPerLevel[level]);
    });
  });
  assert.equal(liveTensors(), before);
});

test('crossRank: two shares of a batch (2 + 1 samples) give the whole batch\'s loss, and their gradients add up to its gradient', () => {
  // What data-parallel ranks do (train's crossRankSum), simulated in one process: each share's
  // partial sums are completed by the other share's (detached), so every share's loss is the
  // whole batch's and each share's gradient is its part of the whole batch's gradient.
  const rng = new Rng(7);
  const [b, c, v] = [3, 3, 40];
  const logitsData = Float32Array.from({ length: b * c * v }, () => rng.uniform(-1.5, 1.5));
  const labelData = Int8Array.from({ length: b * v }, () => Math.floor(rng.uniform(0, 3.6))); // 3 = the ignore label, sometimes
  for (const options of [{ batchDice: true }, { batchDice: false }, { batchDice: true, ignoreLabel: 3 }, { batchDice: false, ignoreLabel: 3 }]) {
    scope(() => {
      const whole = fromArray(logitsData, [b, c, 1, 1, v], { requiresGrad: true });
      const wholeTarget = fromArray(options.ignoreLabel === undefined ? labelData.map((l) => l % 3) : labelData, [b, 1, 1, 1, v]);
      const reference = diceCeLoss(whole, wholeTarget, options);
      reference.backward();
      const wholeGrad = whole.grad!.toTypedArray() as Float32Array;
      const shares = [[0, 2], [2, 3]].map(([first, end]) => ({
        logits: fromArray(logitsData.slice(first! * c * v, end! * c * v), [end! - first!, c, 1, 1, v], { requiresGrad: true }),
        target: fromArray((options.ignoreLabel === undefined ? labelData.map((l) => l % 3) : labelData).slice(first! * v, end! * v), [end! - first!, 1, 1, 1, v]),
      }));
      // Pass 1: each share's partial sums; pass 2: the loss with the other share's added.
      const partial = shares.map((share) => {
        let captured: Tensor | null = null;
        diceCeLoss(share.logits, share.target, { ...options, crossRank: (local) => (captured = local.detach()) });
        return captured!;
      });
      const grads: number[] = [];
      shares.forEach((share, i) => {
        const loss = diceCeLoss(share.logits, share.target, { ...options, crossRank: (local) => add(local, partial[1 - i]!) });
        close(loss.item(), reference.item());
        loss.backward();
        grads.push(...(share.logits.grad!.toTypedArray() as Float32Array));
      });
      // Gradients of O(1/N) from sums in another order: 1e-6 of the largest holds on every CPU.
      const largest = Math.max(...wholeGrad.map(Math.abs));
      wholeGrad.forEach((g, i) => assert.ok(Math.abs(grads[i]! - g) <= 1e-6 * largest, `${JSON.stringify(options)}: gradient ${i}: ${grads[i]} vs ${g}`));
    });
  }
});
