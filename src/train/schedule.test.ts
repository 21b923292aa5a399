/** Poly learning rate per epoch against nnU-Net's PolyLRScheduler rule (test/fixtures/train/make_train_fixtures.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { learningRate, polySchedule } from './schedule.js';

const reference = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/train/train_reference.json', import.meta.url), 'utf8'));
const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-15 + 1e-12 * Math.abs(b);

test('poly lr of a 4-epoch and a 1000-epoch run', () => {
  reference.poly.max_epochs_4.forEach((expected: number, epoch: number) => assert.ok(close(learningRate(polySchedule(4), epoch), expected), `epoch ${epoch}`));
  for (const [epoch, expected] of Object.entries(reference.poly.max_epochs_1000)) {
    assert.ok(close(learningRate(polySchedule(1000), Number(epoch)), expected as number), `epoch ${epoch}`);
  }
});

test('a schedule that continues another one (continual learning) starts in its tail', () => {
  const schedule = polySchedule(4, { totalEpochs: 10, startEpoch: 6 });
  reference.poly.offset_6_of_10.forEach((expected: number, epoch: number) => assert.ok(close(learningRate(schedule, epoch), expected)));
});
