/**
 * The trainer loop on a tiny U-Net with in-memory sphere batches: poly lr per epoch, loader
 * positions, EMA and best-epoch bookkeeping, same seed -> same losses, and a checkpoint round trip
 * (weights + momentum + state) continuing exactly like the uninterrupted trainer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CPU, CheckpointError } from '../core/index.js';
import { manualSeed, setNumThreads } from '../tensor/index.js';
import { SGD } from '../nn/index.js';
import { PlainConvUNet, type UNetConfig } from '../models/index.js';
import { loadCheckpoint, recoverCheckpoint, restoreOptimizer, restoreWeights, writeCheckpoint } from '../checkpoint/index.js';
import type { TrainingSidecar, TrainingSidecarContent as SidecarContent } from './sidecar.js';
import { polySchedule, learningRate } from './schedule.js';
import { updateEma } from './pseudoDice.js';
import { MemoryBatchLoader } from './test-support.js';
import { decideRunMode } from './run.js';
import { initialTrainerState, Trainer, type TrainerHook, type TrainerState } from './trainer.js';

const reference = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/train/train_reference.json', import.meta.url), 'utf8'));

const CONFIG: UNetConfig = { inputChannels: 1, numClasses: 2, featuresPerStage: [4, 8], kernelSizes: [[1, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2]], deepSupervision: true };

function makeTrainer(numEpochs: number, state?: TrainerState, hooks: TrainerHook[] = []) {
  setNumThreads(1);
  manualSeed(5);
  const model = new PlainConvUNet(CONFIG);
  const optimizer = new SGD(model.parameterDict());
  const train = new MemoryBatchLoader(21);
  const validation = new MemoryBatchLoader(22);
  const trainer = new Trainer({
    model, optimizer, schedule: polySchedule(numEpochs), loader: train, validationLoader: validation,
    numEpochs, iterationsPerEpoch: 3, validationIterations: 2, device: CPU, precision: 'fp32', seed: 5,
    hooks,
    ...(state ? { state } : {}),
  });
  return { model, optimizer, trainer, train, validation, dispose: () => { optimizer.dispose(); model.dispose(); } };
}

test('poly lr set per epoch, loaders seek to the epoch\'s batches, EMA and best flags follow the pseudo Dice', async () => {
  const { trainer, train, validation, dispose } = makeTrainer(4);
  const records = await trainer.run();
  dispose();
  assert.deepEqual(records.map((r) => r.epoch), [0, 1, 2, 3]);
  records.forEach((r, epoch) => assert.ok(Math.abs(r.lr - reference.poly.max_epochs_4[epoch]) < 1e-15));
  assert.equal(train.position, 12);
  assert.equal(validation.position, 8);
  let ema: number | null = null;
  let best: number | null = null;
  for (const r of records) {
    ema = updateEma(ema, r.pseudo_dice ?? NaN);
    assert.equal(r.ema_pseudo_dice, ema);
    const isBest: boolean = ema !== null && (best === null || ema > best);
    assert.equal(r.is_best, isBest, `epoch ${r.epoch}`);
    if (isBest) best = ema;
    assert.ok(Number.isFinite(r.train_loss) && Number.isFinite(r.val_loss!));
  }
  assert.equal(trainer.state.bestEma, best);
  assert.equal(trainer.state.epoch, 4);
  assert.ok(trainer.finished);
});

test('same seed, same losses (CPU, fp32)', async () => {
  const a = makeTrainer(2);
  const first = await a.trainer.run();
  a.dispose();
  const b = makeTrainer(2);
  const second = await b.trainer.run();
  b.dispose();
  assert.deepEqual(second.map((r) => [r.train_loss, r.val_loss, r.pseudo_dice]), first.map((r) => [r.train_loss, r.val_loss, r.pseudo_dice]));
});

const content = (trainer: Trainer): SidecarContent => ({
  architecture: { name: 'PlainConvUNet', config: CONFIG, taskClasses: null },
  plan: null, planDigest: null,
  strategy: { name: 'scratch', pretrained: null, details: {} },
  training: { numEpochs: 4, iterationsPerEpoch: 3, validationIterations: 2, seed: 5, precision: 'fp32', device: 'cpu', threads: 1, schedule: polySchedule(4), optimizer: { kind: 'sgd', momentum: 0.99, nesterov: true, weightDecay: 3e-5 }, clipNorm: 12 },
  state: trainer.state,
  parameters: { ...trainer.model.countParameters(), frozenPrefixes: [] },
  loadReport: null, data: null, history: [],
});

test('checkpoint round trip (weights, momentum, trainer state) continues exactly like the uninterrupted trainer', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
  const uninterrupted = makeTrainer(4);
  const all = await uninterrupted.trainer.run();
  uninterrupted.dispose();

  const stopAfterTwo: TrainerHook = { onEpochEnd: (t) => { if (t.state.epoch === 2) t.requestStop(); } };
  const first = makeTrainer(4, undefined, [stopAfterTwo]);
  await first.trainer.run();
  const base = path.join(dir, 'checkpoint_latest');
  writeCheckpoint(base, 'latest', first.model, first.optimizer, content(first.trainer));
  first.dispose();

  const loaded = loadCheckpoint<TrainingSidecar>(`${base}.safetensors`);
  assert.equal(loaded.sidecar.state.epoch, 2);
  assert.equal(loaded.optimizer!.size, [...loaded.weights.keys()].length, 'a momentum buffer for every parameter');
  const second = makeTrainer(4, loaded.sidecar.state);
  restoreWeights(second.model, loaded);
  restoreOptimizer(second.optimizer, loaded.optimizer!, new Set(second.model.parameterDict().keys()), CPU, base);
  const rest = await second.trainer.run();
  second.dispose();
  assert.deepEqual(rest.map((r) => r.epoch), [2, 3]);
  assert.deepEqual(rest.map((r) => [r.train_loss, r.val_loss, r.pseudo_dice, r.ema_pseudo_dice, r.is_best]), all.slice(2).map((r) => [r.train_loss, r.val_loss, r.pseudo_dice, r.ema_pseudo_dice, r.is_best]));
  fs.rmSync(dir, { recursive: true });
});

test('a torn checkpoint set, a missing file and weights of another architecture are CheckpointErrors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
  const { model, optimizer, trainer, dispose } = makeTrainer(4, initialTrainerState(5));
  const base = path.join(dir, 'checkpoint_latest');
  writeCheckpoint(base, 'latest', model, optimizer, content(trainer));
  dispose();
  assert.doesNotThrow(() => loadCheckpoint(base));
  // A newer weight file next to the old sidecar (killed between the two writes).
  const other = makeTrainer(4);
  const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
  writeCheckpoint(path.join(otherDir, 'c'), 'latest', other.model, null, content(other.trainer));
  other.dispose();
  const original = fs.readFileSync(`${base}.safetensors`);
  const bytes = Buffer.from(original);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
  fs.writeFileSync(`${base}.safetensors`, bytes);
  assert.throws(() => loadCheckpoint(base), (e: unknown) => e instanceof CheckpointError && /torn checkpoint set: checkpoint_latest\.safetensors/.test(e.message) && e.message.includes(`${base}.json`));
  fs.writeFileSync(`${base}.safetensors`, original);
  fs.rmSync(`${base}.optim.safetensors`);
  assert.throws(() => loadCheckpoint(base), /torn checkpoint set: checkpoint_latest\.optim\.safetensors named by the sidecar is missing/);
  assert.throws(() => loadCheckpoint(path.join(dir, 'nothing')), /checkpoint sidecar not found/);
  // Weights of a wider network do not fit.
  const wide = new PlainConvUNet({ ...CONFIG, featuresPerStage: [6, 8] });
  assert.throws(() => restoreWeights(wide, loadCheckpoint(path.join(otherDir, 'c'))), (e: unknown) => e instanceof CheckpointError && /has shape \[6, 1, 1, 3, 3\]|has shape \[4, 1, 1, 3, 3\]/.test(e.message));
  wide.dispose();
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(otherDir, { recursive: true });
});

test('a kill while a checkpoint set is written leaves the old set or the new one: committed sets are finished, uncommitted ones discarded', async () => {
  // Set A (epoch 0) in `dir`; set B (after one epoch of training, other weights and momentum) written under the same name in `newDir`.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
  const newDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
  const base = path.join(dir, 'checkpoint_latest');
  const newBase = path.join(newDir, 'checkpoint_latest');
  const before = makeTrainer(4, initialTrainerState(5));
  writeCheckpoint(base, 'latest', before.model, before.optimizer, content(before.trainer));
  before.dispose();
  const after = makeTrainer(1, initialTrainerState(5));
  await after.trainer.run();
  writeCheckpoint(newBase, 'latest', after.model, after.optimizer, content(after.trainer));
  after.dispose();
  const files = (b: string) => ['.safetensors', '.optim.safetensors', '.json'].map((e) => fs.readFileSync(b + e));
  const [oldWeights, oldMomentum, oldSidecar] = files(base);
  const [newWeights, newMomentum, newSidecar] = files(newBase);
  assert.notDeepEqual(newWeights, oldWeights);
  const restoreOld = () => {
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
    fs.writeFileSync(`${base}.safetensors`, oldWeights!);
    fs.writeFileSync(`${base}.optim.safetensors`, oldMomentum!);
    fs.writeFileSync(`${base}.json`, oldSidecar!);
  };
  const epochOf = (b: string) => loadCheckpoint<TrainingSidecar>(b).sidecar.state.epoch;
  assert.equal(epochOf(base), 0);
  assert.equal(epochOf(newBase), 1);

  // Killed after the commit point, between renames: weights renamed, momentum and sidecar still partial.
  fs.writeFileSync(`${base}.safetensors`, newWeights!);
  fs.writeFileSync(`${base}.optim.safetensors.partial`, newMomentum!);
  fs.writeFileSync(`${base}.json.partial`, newSidecar!);
  const loaded = loadCheckpoint<TrainingSidecar>(base);
  assert.equal(loaded.sidecar.state.epoch, 1);
  assert.deepEqual(fs.readFileSync(`${base}.optim.safetensors`), newMomentum);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['checkpoint_latest.json', 'checkpoint_latest.optim.safetensors', 'checkpoint_latest.safetensors']);

  // Killed before the commit point: new weights and momentum written as partial files, the old set untouched.
  restoreOld();
  fs.writeFileSync(`${base}.safetensors.partial`, newWeights!);
  fs.writeFileSync(`${base}.optim.safetensors.partial`, newMomentum!);
  assert.equal(recoverCheckpoint(base), 'discarded');
  assert.equal(epochOf(base), 0);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['checkpoint_latest.json', 'checkpoint_latest.optim.safetensors', 'checkpoint_latest.safetensors']);
  assert.equal(recoverCheckpoint(base), 'clean');

  // The first checkpoint of a run, killed after its commit point: --resume finds it.
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
  fs.writeFileSync(`${base}.safetensors.partial`, newWeights!);
  fs.writeFileSync(`${base}.optim.safetensors.partial`, newMomentum!);
  fs.writeFileSync(`${base}.json.partial`, newSidecar!);
  assert.equal(decideRunMode(dir, { resume: true, force: false }), 'resume');
  assert.equal(epochOf(base), 1);

  // A set written over an interrupted one replaces it completely.
  restoreOld();
  fs.writeFileSync(`${base}.safetensors.partial`, newWeights!);
  const again = makeTrainer(4, initialTrainerState(5));
  writeCheckpoint(base, 'latest', again.model, again.optimizer, content(again.trainer));
  again.dispose();
  assert.deepEqual(fs.readFileSync(`${base}.safetensors`), oldWeights);
  assert.equal(fs.readdirSync(dir).length, 3);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(newDir, { recursive: true });
});

test('learningRate of the trainer schedule matches the fixture at epoch 999 of 1000', () => {
  assert.ok(Math.abs(learningRate(polySchedule(1000), 999) - reference.poly.max_epochs_1000['999']) < 1e-18);
});
