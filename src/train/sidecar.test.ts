/**
 * The trainer's record of a sidecar (readTrainingSidecar): a record as the trainer writes it is
 * resumed, one with wrong or missing fields is refused with every problem and its JSON path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointError } from '../core/index.js';
import type { CheckpointSidecar } from '../checkpoint/index.js';
import { readTrainingSidecar } from './sidecar.js';

const record = {
  training: {
    numEpochs: 2,
    iterationsPerEpoch: 3,
    validationIterations: 1,
    seed: 7,
    precision: 'fp32',
    device: 'cpu',
    threads: null,
    schedule: { kind: 'poly', initialLr: 0.01, exponent: 0.9, totalEpochs: 2, startEpoch: 0 },
    optimizer: { kind: 'sgd', momentum: 0.99, nesterov: true, weightDecay: 3e-5 },
    clipNorm: 12,
  },
  state: { epoch: 1, ema: 0.5, bestEma: 0.5, scaler: null, rng: [1, 2, 3, 4], epochSeconds: [1.5] },
  history: [{ epoch: 0, train_loss: 1.2, val_loss: null, pseudo_dice: 0.5, pseudo_dice_per_class: [0.5, null], ema_pseudo_dice: 0.5, is_best: true, lr: 0.01, epoch_seconds: 1.5, loader_wait_seconds: 0, skipped_steps: 0 }],
};

test('a record as the trainer writes it is read back', () => {
  const sidecar = { ...record, name: 'latest' } as unknown as CheckpointSidecar;
  assert.equal(readTrainingSidecar(sidecar, 'c.json'), sidecar);
});

test('a record with wrong fields is refused, every problem named with its path', () => {
  const bad = {
    ...record,
    training: { ...record.training, precision: 'fp64', threads: 0 },
    state: { ...record.state, rng: [1, 2, 3] },
    history: [{ ...record.history[0], is_best: 'yes' }],
  } as unknown as CheckpointSidecar;
  assert.throws(
    () => readTrainingSidecar(bad, 'c.json'),
    (error: unknown) =>
      error instanceof CheckpointError &&
      error.message ===
        'c.json: the trainer\'s record cannot be resumed: training.precision: unknown value "fp64" (valid: fp32, bf16, fp16); training.threads: must be >= 1, got 0; state.rng: must have >= 4 entries, got [1,2,3]; history.0.is_best: must be true or false, got "yes"',
  );
});
