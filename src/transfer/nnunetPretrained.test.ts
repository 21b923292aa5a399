/**
 * Every transfer strategy starts from an nnU-Net v2 model (test/fixtures/nnunet: a PlainConvUNet
 * fold trained by "nnUNetTrainer", 3 epochs, one SGD step of momentum): the body's weights are
 * nnU-Net's, the heads new, frozen encoders stay bit-identical, continual carries nnU-Net's momentum
 * and continues its 1000-epoch poly schedule, hybrid's Adapted encoder is nnU-Net's encoder. A
 * ResidualEncoderUNet, a folder of several folds and another topology are refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CPU, CheckpointError, InputError } from '../core/index.js';
import { readSafetensors } from '../io/index.js';
import { loadCheckpoint } from '../checkpoint/index.js';
import { loadPretrained, runTraining, type TrainingRunResult, type TrainingSidecar } from '../train/index.js';
import { MemoryBatchLoader, tinyPlan } from '../train/test-support.js';
import { transferTrainingStrategy } from './index.js';
import type { TransferStrategy } from './plan.js';

const MODELS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nnunet/models/Dataset901_Tiny');
const PLAIN = path.join(MODELS, 'nnUNetTrainer__nnUNetPlans__3d_fullres');
const FOLD0 = path.join(PLAIN, 'fold_0');

/** The nnU-Net plan with the in-memory Spheres dataset (background, lesion) as the target. */
function targetPlan() {
  const source = loadPretrained(FOLD0);
  const plan = structuredClone(source.plan!);
  plan.datasets.push(tinyPlan().datasets[0]!);
  return plan;
}

async function run(strategy: TransferStrategy, runDir: string): Promise<TrainingRunResult> {
  return runTraining({
    runDir,
    mode: 'fresh',
    plan: targetPlan(),
    datasetName: 'Spheres',
    strategy: transferTrainingStrategy(strategy),
    pretrained: FOLD0,
    numEpochs: 1,
    iterationsPerEpoch: 1,
    validationIterations: 0,
    seed: 5,
    device: CPU,
    precision: 'fp32',
    threads: 1,
    data: null,
    createLoaders: () => ({ train: new MemoryBatchLoader(5), validation: null }),
  });
}

function bytes(entry: { data: Uint8Array } | undefined): Buffer {
  assert.ok(entry !== undefined);
  return Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
}

test('an nnU-Net fold as a pre-trained source: plan, architecture, weights, momentum, schedule length', () => {
  const source = loadPretrained(FOLD0);
  assert.equal(source.kind, 'nnunet');
  assert.equal(source.name, 'final');
  assert.equal(source.numEpochs, 1000, 'nnUNetTrainer trains 1000 epochs');
  assert.equal(source.architecture.name, 'PlainConvUNet');
  assert.equal(source.plan!.preset, 'nnunet');
  assert.deepEqual([...source.optimizer!.keys()], [...source.weights.keys()]);
  assert.equal(loadPretrained(path.join(FOLD0, 'checkpoint_best.pth')).name, 'best');
  assert.throws(() => loadPretrained(PLAIN), (error: unknown) => error instanceof InputError && /needs one fold of this nnU-Net model: name it as .*fold_K \(found fold_0, fold_1\)/.test(error.message));
  assert.throws(() => loadPretrained(path.join(MODELS, 'nnUNetTrainer__nnUNetResEncUNetMPlans__3d_fullres')), (error: unknown) =>
    error instanceof CheckpointError && /a ResidualEncoderUNet cannot be transferred from yet/.test(error.message));
});

for (const strategy of ['continual', 'finetune', 'frozen-encoder', 'hybrid'] as const) {
  test(`${strategy} from an nnU-Net fold: nnU-Net's body weights are copied, the heads are new`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nnunet-${strategy}-`));
    const result = await run(strategy, dir);
    assert.equal(result.finished, true);
    const final = loadCheckpoint<TrainingSidecar>(path.join(dir, 'checkpoint_final'));
    const source = loadPretrained(FOLD0);
    const report = final.sidecar.loadReport!;
    const bodyNames = [...source.weights.keys()].filter((name) => !name.startsWith('decoder.seg_layers.'));
    const loaded = new Set(report.loaded.map((name) => name.replace(/^adapted_/, '')));
    for (const name of strategy === 'hybrid' ? bodyNames.filter((n) => n.startsWith('encoder.')) : bodyNames) assert.ok(loaded.has(name), `${name} was not loaded`);
    assert.equal(report.shapeMismatch.length, 0);
    assert.ok(report.skipped.some((name) => name.includes('seg_layers')), 'the heads start new');
    const schedule = final.sidecar.training.schedule;
    if (strategy === 'continual') {
      assert.deepEqual([schedule.startEpoch, schedule.totalEpochs], [1000, 1001], 'continual continues nnU-Net\'s schedule');
      const momentum = (final.sidecar.strategy.details.transfer as { momentum: { carried: number; dropped: string[] } }).momentum;
      assert.equal(momentum.carried, bodyNames.length, 'nnU-Net\'s SGD momentum of every body weight is carried');
    } else {
      assert.deepEqual([schedule.startEpoch, schedule.totalEpochs], [0, 1]);
    }
    if (strategy === 'frozen-encoder' || strategy === 'hybrid') {
      // The frozen (Adapted) encoder still holds nnU-Net's values bit for bit after a training step.
      const weights = readSafetensors(path.join(dir, 'checkpoint_final.safetensors')).tensors;
      const prefix = strategy === 'hybrid' ? 'adapted_' : '';
      for (const name of bodyNames.filter((n) => n.startsWith('encoder.'))) {
        assert.ok(bytes(weights.get(`${prefix}${name}`)).equals(bytes(source.weights.get(name))), name);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

test('a target plan of another topology than the nnU-Net model is refused, naming each difference', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nnunet-topology-'));
  const plan = targetPlan();
  plan.configuration.network.featuresPerStage = [4, 8, 32];
  await assert.rejects(
    runTraining({
      runDir: dir, mode: 'fresh', plan, datasetName: 'Spheres', strategy: transferTrainingStrategy('finetune'), pretrained: FOLD0,
      numEpochs: 1, iterationsPerEpoch: 1, validationIterations: 0, seed: 5, device: CPU, precision: 'fp32', threads: 1, data: null,
      createLoaders: () => ({ train: new MemoryBatchLoader(5), validation: null }),
    }),
    (error: unknown) => error instanceof CheckpointError && /cannot start 'finetune'/.test(error.message) && /featuresPerStage/.test(error.message) && error.message.includes('checkpoint_final.pth'),
  );
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a region-based nnU-Net model (sigmoid heads) is refused as a pre-trained source, naming its regions', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nnunet-regions-'));
  fs.mkdirSync(path.join(dir, 'fold_0'));
  fs.copyFileSync(path.join(FOLD0, 'checkpoint_final.pth'), path.join(dir, 'fold_0/checkpoint_final.pth'));
  fs.copyFileSync(path.join(PLAIN, 'plans.json'), path.join(dir, 'plans.json'));
  const dataset = JSON.parse(fs.readFileSync(path.join(PLAIN, 'dataset.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'dataset.json'), JSON.stringify({ ...dataset, labels: { background: 0, whole: [1, 2], core: 2, extra: [2] }, regions_class_order: [1, 2, 2] }));
  assert.throws(() => loadPretrained(path.join(dir, 'fold_0')), (error: unknown) =>
    error instanceof InputError && error.code === 'unsupported-regions' && /sigmoid heads for whole, core, extra/.test(error.message));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('train --pretrained refuses an nnU-Net 2d or cascade model by name (training builds 3D configurations without a previous stage)', () => {
  const zoo = path.resolve(MODELS, '../Dataset902_Zoo');
  assert.throws(() => loadPretrained(path.join(zoo, 'nnUNetTrainer__nnUNetPlans__2d/fold_0')), (error: unknown) =>
    error instanceof CheckpointError && /a 2d nnU-Net model cannot start training yet/.test(error.message));
  assert.throws(() => loadPretrained(path.join(zoo, 'nnUNetTrainer__nnUNetPlans__3d_cascade_fullres/fold_0')), (error: unknown) =>
    error instanceof CheckpointError && /a cascade nnU-Net model cannot start training yet/.test(error.message));
  // 3d_lowres is an ordinary 3D configuration: it loads.
  assert.equal(loadPretrained(path.join(zoo, 'nnUNetTrainer__nnUNetPlans__3d_lowres/fold_0')).plan!.configuration.targetSpacing[0], 6);
});
