/**
 * The training loss follows the plan: `configuration.batchDice` picks batch or per-sample Dice, and
 * a dataset's ignore label has no output channel and counts in no loss term. Checked end to end:
 * a run with learning rate 0 (the weights stay those of epoch 0) logs the validation loss that
 * the loss with the plan's settings gives on the same batches, and not the other setting's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CPU } from '../core/index.js';
import { noGrad, scope } from '../tensor/index.js';
import { deepSupervisionLoss, deepSupervisionWeights, diceCeLoss, type DiceCeOptions } from '../nn/index.js';
import type { Plan } from '../data/index.js';
import { batchTensors, type BatchLoader, type HostBatch } from './batches.js';
import { readEpochLog } from './hooks.js';
import { lossOptionsFromPlan, runTraining } from './run.js';
import { polySchedule } from './schedule.js';
import { SCRATCH, type TrainingStrategy } from './strategy.js';
import { MemoryBatchLoader, tinyPlan } from './test-support.js';
import type { Trainer } from './trainer.js';

const IGNORE = 2;

/** The sphere batches with every 7th voxel set to the ignore label. */
class IgnoringLoader extends MemoryBatchLoader {
  override async next(): Promise<HostBatch> {
    const batch = await super.next();
    for (let i = 0; i < batch.seg.length; i += 7) batch.seg[i] = IGNORE;
    return batch;
  }
}

/** Scratch initialisation with learning rate 0: the weights never change. */
const FROZEN_IN_TIME: TrainingStrategy = {
  ...SCRATCH,
  name: 'scratch-lr0',
  prepare: (context) => ({ ...SCRATCH.prepare(context), schedule: polySchedule(context.numEpochs, { initialLr: 0 }) }),
};

function planWith(batchDice: boolean, ignore: boolean): Plan {
  const plan = tinyPlan();
  plan.configuration.batchDice = batchDice;
  if (ignore) plan.datasets[0]!.labels = { background: 0, lesion: 1, ignore: IGNORE };
  return plan;
}

/** Mean deep-supervised loss of validation batches 0 and 1 for the trainer's model under `options`. */
function validationLoss(trainer: Trainer, batches: readonly HostBatch[], options: DiceCeOptions): number {
  const model = trainer.model as Trainer['model'] & { forward(x: unknown): never };
  const strides = trainer.model.config.strides;
  const weights = deepSupervisionWeights(strides.length - 1);
  let total = 0;
  for (const batch of batches) {
    total += noGrad(() =>
      scope(() => {
        const { input, targets } = batchTensors(batch, CPU, strides, weights.length);
        return deepSupervisionLoss(model.forward(input), targets, (o, t) => diceCeLoss(o, t, options), weights).item();
      }),
    );
  }
  return total / batches.length;
}

async function run(plan: Plan, ignore: boolean): Promise<{ logged: number; planned: number; other: number; numClasses: number; options: DiceCeOptions | undefined }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loss-plan-'));
  const seed = 21;
  const makeLoader = (s: number): BatchLoader => (ignore ? new IgnoringLoader(s) : new MemoryBatchLoader(s));
  const validationBatches = [0, 1].map(() => null as HostBatch | null);
  const reference = makeLoader(seed + 1000);
  for (let i = 0; i < 2; i++) validationBatches[i] = await reference.next();
  let planned = NaN;
  let other = NaN;
  let numClasses = 0;
  let options: DiceCeOptions | undefined;
  try {
    const result = await runTraining({
      runDir: path.join(dir, 'run'),
      mode: 'fresh',
      plan,
      datasetName: 'Spheres',
      strategy: FROZEN_IN_TIME,
      pretrained: null,
      numEpochs: 1,
      iterationsPerEpoch: 1,
      validationIterations: 2,
      seed,
      device: CPU,
      precision: 'fp32',
      threads: 1,
      data: null,
      createLoaders: () => ({ train: makeLoader(seed), validation: makeLoader(seed + 1000) }),
      hooks: [
        {
          onTrainStart: (trainer) => {
            options = trainer.options.lossOptions;
            numClasses = trainer.model.config.numClasses;
            const batches = validationBatches as HostBatch[];
            planned = validationLoss(trainer, batches, { ...options });
            other = validationLoss(trainer, batches, { ...options, batchDice: !plan.configuration.batchDice });
          },
        },
      ],
    });
    assert.ok(result.finished);
    const [record] = readEpochLog(path.join(dir, 'run', 'log.jsonl'));
    return { logged: record!.val_loss!, planned, other, numClasses, options };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The trainer and this test run the same fp32 ops on the same weights and batches (measured:
// equal to the last bit; the bound allows reordered sums). At initialisation every probability
// is near 0.5, where batch and per-sample Dice agree to first order: they differ by ~9e-5 here.
const BOUND = 1e-6;

test('a plan with batchDice false trains with per-sample Dice, one with true with batch Dice', async () => {
  for (const batchDice of [false, true]) {
    const { logged, planned, other, options } = await run(planWith(batchDice, false), false);
    assert.deepEqual(options, { batchDice });
    assert.ok(Math.abs(planned - other) > 10 * BOUND, `the two settings must differ on these batches (${planned} vs ${other})`);
    assert.ok(Math.abs(logged - planned) < BOUND, `batchDice ${batchDice}: logged ${logged}, plan's setting ${planned}, other ${other}`);
  }
});

test("a dataset's ignore label: no output channel, and its voxels left out of the trained loss", async () => {
  const { logged, planned, numClasses, options } = await run(planWith(false, true), true);
  assert.equal(numClasses, 2);
  assert.deepEqual(options, { batchDice: false, ignoreLabel: IGNORE });
  assert.ok(Math.abs(logged - planned) < BOUND, `logged ${logged}, expected ${planned}`);
});

test('lossOptionsFromPlan reads batchDice and the ignore label; an unknown dataset is an InputError', () => {
  assert.deepEqual(lossOptionsFromPlan(planWith(true, false), 'Spheres'), { batchDice: true });
  assert.deepEqual(lossOptionsFromPlan(planWith(false, true), 'Spheres'), { batchDice: false, ignoreLabel: IGNORE });
  assert.throws(() => lossOptionsFromPlan(tinyPlan(), 'Nope'), /no dataset 'Nope': it covers Spheres/);
});
