/**
 * The transfer strategies end to end on a tiny U-Net: what each plan copies, freezes and carries;
 * that frozen weights stay bit-identical through training steps while the others move; the
 * continued learning-rate schedule and carried momentum buffers of continual; parameter counts
 * against the PyTorch models of test/fixtures/transfer/make_transfer_fixtures.py; refusal of a
 * checkpoint of another topology; a multi-head (multi-lesion) checkpoint's body transfers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../io/index.js';
import { CheckpointError, InputError, Rng } from '../core/index.js';
import { add, fromArray, liveTensors, manualSeed, mean, scope } from '../tensor/index.js';
import { SGD, deepSupervisionTargets, stateDict, tensorToHost, type HostTensor, type Module } from '../nn/index.js';
import { MultiHeadUNet, PlainConvUNet, type UNetConfig } from '../models/index.js';
import { trainStep } from '../train/index.js';
import {
  applyTransfer,
  buildModelForPlan,
  buildModelForStrategy,
  buildTransferOptimizer,
  transferLearningRate,
  transferPlan,
  type PretrainedCheckpoint,
  type TransferModel,
} from './index.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/transfer/transfer_fixtures.safetensors');
const meta = JSON.parse(readSafetensors(fixture).metadata.meta!) as {
  config: UNetConfig;
  inputShape: number[];
  counts: Record<string, { trainable: number; frozen: number }>;
  lr: { pretrainEpochs: number; targetEpochs: number; continual: number[]; fresh: number[] };
};
const config = meta.config;
const TARGET_CLASSES = 2;
const PRETRAIN_CLASSES = 3;
const PRETRAIN_EPOCHS = meta.lr.pretrainEpochs;

/** Two SGD steps on random data give a pre-trained model and non-empty momentum buffers. */
function train(model: Module & { forward: PlainConvUNet['forward'] }, optimizer: SGD, steps: number, classes: number, seed: number): void {
  const rng = new Rng(seed);
  const [batch, , ...spatial] = meta.inputShape as [number, number, number, number, number];
  const voxels = batch * spatial.reduce((a, b) => a * b, 1);
  for (let step = 0; step < steps; step++) {
    const image = Float32Array.from({ length: voxels }, () => rng.normal());
    const label = BigInt64Array.from({ length: voxels }, () => BigInt(Math.floor(rng.uniform(0, classes))));
    scope(() => {
      const x = fromArray(image, meta.inputShape);
      const y = fromArray(label, [batch, 1, ...spatial]);
      trainStep({ model, optimizer, device: { type: 'cpu' }, precision: 'fp32' }, x, deepSupervisionTargets(y, config.strides, config.featuresPerStage.length - 1));
    });
  }
}

function pretrainedPlain(overrides: Partial<UNetConfig> = {}): PretrainedCheckpoint {
  manualSeed(11);
  const pretrainConfig = { ...config, ...overrides, numClasses: PRETRAIN_CLASSES };
  const model = new PlainConvUNet(pretrainConfig);
  const optimizer = new SGD(model.parameterDict());
  train(model, optimizer, 2, PRETRAIN_CLASSES, 1);
  const optimizerState = new Map([...optimizer.buffers].map(([name, buffer]) => [name, tensorToHost(buffer)] as const));
  const checkpoint: PretrainedCheckpoint = { state: stateDict(model), optimizerState, epochs: PRETRAIN_EPOCHS, architecture: { name: 'PlainConvUNet', config: pretrainConfig }, file: 'pre/checkpoint_final.safetensors' };
  optimizer.dispose();
  model.dispose();
  return checkpoint;
}

const pretrained = pretrainedPlain();

const bytesOf = (entry: HostTensor): Buffer => Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
const identical = (a: HostTensor, b: HostTensor): boolean => a.shape.join() === b.shape.join() && bytesOf(a).equals(bytesOf(b));
const under = (state: ReadonlyMap<string, HostTensor>, prefix: string): [string, HostTensor][] => [...state].filter(([name]) => name.startsWith(prefix));

/** Train a transferred model a few steps; return its state before and after. */
function trainAndCompare(model: TransferModel, optimizer: SGD): { before: Map<string, HostTensor>; after: Map<string, HostTensor> } {
  const before = stateDict(model);
  train(model, optimizer, 3, TARGET_CLASSES, 2);
  return { before, after: stateDict(model) };
}

test('plans are plain data: what each strategy copies, skips, freezes and carries', () => {
  const body = [{ from: 'encoder.', to: 'encoder.' }, { from: 'decoder.', to: 'decoder.' }];
  const heads = ['decoder.seg_layers.'];
  assert.deepEqual(transferPlan('scratch'), { strategy: 'scratch', model: { kind: 'PlainConvUNet' }, copy: [], skip: [], freeze: [], optimizer: 'fresh', schedule: { kind: 'fresh' } });
  assert.deepEqual(transferPlan('continual', { pretrainEpochs: 10 }), { strategy: 'continual', model: { kind: 'PlainConvUNet' }, copy: body, skip: heads, freeze: [], optimizer: 'carry', schedule: { kind: 'continue', pretrainEpochs: 10 } });
  assert.deepEqual(transferPlan('finetune'), { strategy: 'finetune', model: { kind: 'PlainConvUNet' }, copy: body, skip: heads, freeze: [], optimizer: 'fresh', schedule: { kind: 'fresh' } });
  assert.deepEqual(transferPlan('frozen-encoder'), { strategy: 'frozen-encoder', model: { kind: 'PlainConvUNet' }, copy: body, skip: heads, freeze: ['encoder.'], optimizer: 'fresh', schedule: { kind: 'fresh' }, decoderInit: 'pretrained' });
  assert.deepEqual(transferPlan('frozen-encoder', { decoderInit: 'random' }).copy, [{ from: 'encoder.', to: 'encoder.' }]);
  assert.deepEqual(transferPlan('hybrid'), { strategy: 'hybrid', model: { kind: 'HybridUNet', fuseLevels: 'all' }, copy: [{ from: 'encoder.', to: 'adapted_encoder.' }, { from: 'decoder.', to: 'decoder.' }], skip: heads, freeze: ['adapted_encoder.'], optimizer: 'fresh', schedule: { kind: 'fresh' }, decoderInit: 'pretrained' });
  assert.deepEqual(transferPlan('hybrid', { decoderInit: 'random' }).copy, [{ from: 'encoder.', to: 'adapted_encoder.' }]);
  assert.deepEqual(JSON.parse(JSON.stringify(transferPlan('hybrid', { fuseLevels: 'bottleneck' }))), transferPlan('hybrid', { fuseLevels: 'bottleneck' }));
  assert.throws(() => transferPlan('continual'), (e: unknown) => e instanceof InputError && /needs pretrainEpochs/.test(e.message));
  assert.throws(() => transferPlan('finetune', { decoderInit: 'random', fuseLevels: 'all' }), /decoderInit applies only to frozen-encoder and hybrid.*fuseLevels applies only to hybrid/);
  assert.throws(() => transferPlan('transfer' as never), /unknown transfer strategy 'transfer'; valid: scratch, continual, finetune, frozen-encoder, hybrid/);
});

test('learning rates: continual continues the pre-training poly schedule, the others restart at 0.01 (torch LambdaLR)', () => {
  const continual = transferPlan('continual', { pretrainEpochs: meta.lr.pretrainEpochs }).schedule;
  const fresh = transferPlan('finetune').schedule;
  for (let epoch = 0; epoch < meta.lr.targetEpochs; epoch++) {
    assert.ok(Math.abs(transferLearningRate(continual, epoch, meta.lr.targetEpochs) - meta.lr.continual[epoch]!) < 1e-12);
    assert.ok(Math.abs(transferLearningRate(fresh, epoch, meta.lr.targetEpochs) - meta.lr.fresh[epoch]!) < 1e-12);
  }
  assert.equal(transferLearningRate(fresh, 0, 4), 0.01);
});

test('continual: every body weight and its momentum buffer come from the pre-trained run; heads are new', () => {
  const before = liveTensors();
  const plan = transferPlan('continual', { pretrainEpochs: PRETRAIN_EPOCHS });
  const model = buildModelForPlan(plan, config, TARGET_CLASSES);
  const { report, momentum } = applyTransfer(model, pretrained, plan);
  const state = stateDict(model);
  for (const [name, entry] of state) {
    if (name.startsWith('decoder.seg_layers.')) {
      assert.equal(entry.shape[0], TARGET_CLASSES, `${name}: a fresh head for the target label space`);
      assert.notEqual(pretrained.state.get(name)!.shape[0], TARGET_CLASSES);
    } else assert.ok(identical(entry, pretrained.state.get(name)!), `${name} copied`);
  }
  assert.deepEqual(report.droppedHeads, under(pretrained.state, 'decoder.seg_layers.').map(([n]) => n));
  assert.deepEqual(report.randomInit, under(state, 'decoder.seg_layers.').map(([n]) => n));
  assert.deepEqual(report.copies.map((c) => c.load.skipped), [[], report.randomInit]);
  assert.deepEqual(report.notCopied, []);

  const optimizer = buildTransferOptimizer(model, { report, momentum });
  const bodyBuffers = [...pretrained.optimizerState!].filter(([name]) => !name.startsWith('decoder.seg_layers.'));
  assert.ok(bodyBuffers.length > 40);
  assert.deepEqual(report.momentum, { carried: bodyBuffers.length, dropped: [...pretrained.optimizerState!.keys()].filter((n) => n.startsWith('decoder.seg_layers.')) });
  assert.equal(optimizer.buffers.size, bodyBuffers.length);
  for (const [name, buffer] of bodyBuffers) assert.ok(identical(tensorToHost(optimizer.buffers.get(name)!), buffer), `momentum of ${name} carried`);
  assert.equal(report.parameters.trainable, meta.counts.continual!.trainable);
  assert.ok(transferLearningRate(plan.schedule, 0, 4) < 0.004, 'the target phase starts in the schedule tail');
  optimizer.dispose();
  model.dispose();
  assert.equal(liveTensors(), before);
});

test('finetune: body copied, heads new, fresh optimizer (no buffers) and lr 0.01', () => {
  const plan = transferPlan('finetune');
  const model = buildModelForPlan(plan, config, TARGET_CLASSES);
  const result = applyTransfer(model, pretrained, plan);
  for (const [name, entry] of under(stateDict(model), 'encoder.')) assert.ok(identical(entry, pretrained.state.get(name)!));
  const optimizer = buildTransferOptimizer(model, result);
  assert.equal(optimizer.buffers.size, 0);
  assert.equal(result.report.momentum, null);
  assert.equal(transferLearningRate(plan.schedule, 0, 50), 0.01);
  assert.deepEqual(result.report.parameters, { trainable: meta.counts.finetune!.trainable, frozen: 0, total: meta.counts.finetune!.trainable });
  optimizer.dispose();
  model.dispose();
});

for (const decoderInit of ['pretrained', 'random'] as const) {
  test(`frozen-encoder (decoder ${decoderInit}): the encoder stays bit-identical through training, the decoder learns`, () => {
    const before = liveTensors();
    const plan = transferPlan('frozen-encoder', { decoderInit });
    const model = buildModelForPlan(plan, config, TARGET_CLASSES);
    const result = applyTransfer(model, pretrained, plan);
    assert.equal(result.report.decoderInit, decoderInit);
    assert.deepEqual({ trainable: result.report.parameters.trainable, frozen: result.report.parameters.frozen }, meta.counts['frozen-encoder']);
    const optimizer = buildTransferOptimizer(model, result);
    const { before: start, after } = trainAndCompare(model, optimizer);
    for (const [name, entry] of under(after, 'encoder.')) {
      assert.ok(identical(entry, pretrained.state.get(name)!), `${name} is the pre-trained weight, unchanged`);
    }
    assert.equal([...optimizer.buffers.keys()].filter((n) => n.startsWith('encoder.')).length, 0, 'no encoder weight in the optimizer');
    const decoderWeights = under(after, 'decoder.stages.').filter(([n]) => n.endsWith('conv.weight'));
    for (const [name, entry] of decoderWeights) assert.ok(!identical(entry, start.get(name)!), `${name} trained`);
    const decoderFromCheckpoint = under(start, 'decoder.stages.').every(([name, entry]) => identical(entry, pretrained.state.get(name)!));
    assert.equal(decoderFromCheckpoint, decoderInit === 'pretrained');
    assert.equal(result.report.notCopied.length, decoderInit === 'random' ? under(pretrained.state, 'decoder.').length - under(pretrained.state, 'decoder.seg_layers.').length : 0);
    optimizer.dispose();
    model.dispose();
    assert.equal(liveTensors(), before);
  });
}

for (const fuseLevels of ['all', 'bottleneck'] as const) {
  test(`hybrid (${fuseLevels}, random decoder): the Adapted encoder is the frozen pre-trained one; Dedicated, fusion and decoder train`, () => {
    const before = liveTensors();
    const plan = transferPlan('hybrid', { fuseLevels, decoderInit: 'random' });
    const model = buildModelForPlan(plan, config, TARGET_CLASSES);
    assert.equal(model.keyToEncoder, 'dedicated_encoder.');
    const result = applyTransfer(model, pretrained, plan);
    assert.deepEqual(result.report.copies.map((c) => [c.from, c.to, c.load.loaded.length]), [['encoder.', 'adapted_encoder.', under(pretrained.state, 'encoder.').length]]);
    assert.deepEqual({ trainable: result.report.parameters.trainable, frozen: result.report.parameters.frozen }, meta.counts[`hybrid-${fuseLevels}`]);
    const optimizer = buildTransferOptimizer(model, result);
    const { before: start, after } = trainAndCompare(model, optimizer);
    for (const [name, entry] of under(after, 'adapted_encoder.')) {
      assert.ok(identical(entry, pretrained.state.get(name.replace('adapted_encoder.', 'encoder.'))!), `${name} unchanged`);
    }
    for (const prefix of ['dedicated_encoder.', 'fusion.', 'decoder.stages.']) {
      const moved = under(after, prefix).filter(([name, entry]) => name.endsWith('.weight') && !identical(entry, start.get(name)!));
      assert.ok(moved.length > 0, `${prefix} weights trained`);
    }
    optimizer.dispose();
    model.dispose();
    assert.equal(liveTensors(), before);
  });
}

test('hybrid (default decoderInit pretrained): the decoder body starts as the pre-trained decoder (heads new), and trains', () => {
  const before = liveTensors();
  const plan = transferPlan('hybrid');
  const model = buildModelForPlan(plan, config, TARGET_CLASSES);
  const result = applyTransfer(model, pretrained, plan);
  const decoderBody = under(pretrained.state, 'decoder.').length - under(pretrained.state, 'decoder.seg_layers.').length;
  assert.deepEqual(result.report.copies.map((c) => [c.from, c.to, c.load.loaded.length]), [['encoder.', 'adapted_encoder.', under(pretrained.state, 'encoder.').length], ['decoder.', 'decoder.', decoderBody]]);
  assert.equal(result.report.decoderInit, 'pretrained');
  const start = new Map(stateDict(model));
  for (const [name, entry] of under(start, 'decoder.')) {
    if (name.startsWith('decoder.seg_layers.')) continue;
    assert.ok(identical(entry, pretrained.state.get(name)!), `${name} copied`);
  }
  const optimizer = buildTransferOptimizer(model, result);
  const { after } = trainAndCompare(model, optimizer);
  assert.ok(under(after, 'decoder.stages.').some(([name, entry]) => name.endsWith('.weight') && !identical(entry, start.get(name)!)), 'the decoder trains');
  optimizer.dispose();
  model.dispose();
  assert.equal(liveTensors(), before);
});

test('trainable weights per strategy (tiny config) equal the PyTorch models', () => {
  const counts: Record<string, { trainable: number; frozen: number }> = {};
  for (const [key, plan] of [
    ['scratch', transferPlan('scratch')],
    ['frozen-encoder', transferPlan('frozen-encoder')],
    ['hybrid-all', transferPlan('hybrid')],
    ['hybrid-bottleneck', transferPlan('hybrid', { fuseLevels: 'bottleneck' })],
  ] as const) {
    const model = buildModelForPlan(plan, config, TARGET_CLASSES);
    const { parameters } = applyTransfer(model, plan.copy.length ? pretrained : null, plan).report;
    counts[key] = { trainable: parameters.trainable, frozen: parameters.frozen };
    model.dispose();
  }
  for (const key of Object.keys(counts)) assert.deepEqual(counts[key], meta.counts[key], key);
  // By hand (conv weight + bias + norm weight and bias per ConvNormAct; kernels 1x3x3 at stage 0, 3x3x3 below):
  const encoder = (1 * 4 * 9 + 4 + 8) + (4 * 4 * 9 + 4 + 8) + (4 * 8 * 27 + 8 + 16) + (8 * 8 * 27 + 8 + 16) + (8 * 16 * 27 + 16 + 32) + (16 * 16 * 27 + 16 + 32);
  const transpconvs = (16 * 8 * 8 + 8) + (8 * 4 * 4 + 4);
  const decoderStages = (16 * 8 * 27 + 8 + 16) + (8 * 8 * 27 + 8 + 16) + (8 * 4 * 9 + 4 + 8) + (4 * 4 * 9 + 4 + 8);
  const heads = (8 * 2 + 2) + (4 * 2 + 2);
  assert.deepEqual(counts['frozen-encoder'], { trainable: transpconvs + decoderStages + heads, frozen: encoder });
  assert.deepEqual(counts.scratch, { trainable: encoder + transpconvs + decoderStages + heads, frozen: 0 });
  // Here the encoder holds 2/3 of the weights (the bottleneck stage dominates), so frozen-encoder trains 1/3 of scratch.
  assert.equal(counts['frozen-encoder']!.trainable + counts['frozen-encoder']!.frozen, counts.scratch!.trainable);
  const hybrid = buildModelForStrategy('hybrid', config, 2, { fuseLevels: 'bottleneck' });
  assert.equal(hybrid.countParameters().total, meta.counts['hybrid-bottleneck']!.trainable + meta.counts['hybrid-bottleneck']!.frozen);
  hybrid.dispose();
});

test('scratch needs no checkpoint; the others refuse to run without one', () => {
  const model = buildModelForStrategy('scratch', config, TARGET_CLASSES);
  const { report } = applyTransfer(model, null, transferPlan('scratch'));
  assert.equal(report.source, null);
  assert.equal(report.randomInit.length, [...model.namedParameters()].length);
  model.dispose();
  const finetune = buildModelForStrategy('finetune', config, TARGET_CLASSES);
  assert.throws(() => applyTransfer(finetune, null, transferPlan('finetune')), /finetune strategy needs a pre-trained checkpoint/);
  finetune.dispose();
});

test('a checkpoint of another topology is refused with a message naming each difference', () => {
  const other = pretrainedPlain({ featuresPerStage: [4, 8, 32] });
  for (const strategy of ['finetune', 'hybrid'] as const) {
    const plan = transferPlan(strategy);
    const model = buildModelForPlan(plan, config, TARGET_CLASSES);
    assert.throws(
      () => applyTransfer(model, other, plan),
      (e: unknown) => e instanceof CheckpointError && e.message.includes('pre/checkpoint_final.safetensors') && e.message.includes('featuresPerStage: checkpoint [4, 8, 32], model [4, 8, 16]'),
    );
    model.dispose();
  }
  // Weights that do not match what the sidecar claims: every shape mismatch is named.
  const lying: PretrainedCheckpoint = { ...other, architecture: { name: 'PlainConvUNet', config: { ...config, numClasses: 3 } } };
  const model = buildModelForStrategy('finetune', config, TARGET_CLASSES);
  assert.throws(() => applyTransfer(model, lying, transferPlan('finetune')), /encoder\.stages\.2\.0\.convs\.0\.conv\.weight: shape \[32, 8, 3, 3, 3\] in the checkpoint, \[16, 8, 3, 3, 3\] in the model/);
  const wrongEpochs = transferPlan('continual', { pretrainEpochs: 20 });
  assert.throws(() => applyTransfer(model, pretrained, wrongEpochs), /continues 20 pre-training epochs, the checkpoint ran 10/);
  model.dispose();
});

test('a multi-head (multi-lesion) checkpoint transfers its body; task heads and their momentum are dropped', () => {
  manualSeed(5);
  const multi = new MultiHeadUNet({ ...config, numClasses: 2 }, [2, 3, 2]);
  const optimizer = new SGD(multi.parameterDict());
  // One step through the shared body and the heads of tasks 0 and 1 gives momentum buffers for them (task 2 gets none).
  scope(() => {
    const x = fromArray(Float32Array.from({ length: meta.inputShape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)), meta.inputShape);
    multi.zeroGrad();
    const outputs = multi.forwardTasks(x, [0, 1]).flat();
    outputs.map((o) => mean(o)).reduce((total, m) => add(total, m)).backward();
    optimizer.step();
  });
  const checkpoint: PretrainedCheckpoint = {
    state: stateDict(multi),
    optimizerState: new Map([...optimizer.buffers].map(([name, buffer]) => [name, tensorToHost(buffer)] as const)),
    epochs: PRETRAIN_EPOCHS,
    architecture: { name: 'MultiHeadUNet', config: { ...config, numClasses: 2 }, taskClasses: [2, 3, 2] },
  };
  optimizer.dispose();
  multi.dispose();
  const taskHeads = [...checkpoint.state.keys()].filter((n) => n.startsWith('decoder.task_heads.'));
  assert.equal(taskHeads.length, 3 * 2 * 2);
  for (const strategy of ['finetune', 'continual'] as const) {
    const plan = strategy === 'continual' ? transferPlan(strategy, { pretrainEpochs: PRETRAIN_EPOCHS }) : transferPlan(strategy);
    const model = buildModelForPlan(plan, config, TARGET_CLASSES);
    const result = applyTransfer(model, checkpoint, plan);
    assert.deepEqual(result.report.droppedHeads, taskHeads);
    assert.deepEqual(result.report.randomInit, [...model.namedParameters()].map(([n]) => n).filter((n) => n.startsWith('decoder.seg_layers.')));
    for (const [name, entry] of stateDict(model)) if (!name.startsWith('decoder.seg_layers.')) assert.ok(identical(entry, checkpoint.state.get(name)!), name);
    if (strategy === 'continual') {
      const headBuffers = [...checkpoint.optimizerState!.keys()].filter((n) => n.startsWith('decoder.task_heads.'));
      assert.deepEqual(headBuffers, taskHeads.filter((n) => !n.startsWith('decoder.task_heads.2.')));
      assert.deepEqual(result.report.momentum?.dropped, headBuffers);
      assert.equal(result.momentum.size, checkpoint.state.size - taskHeads.length);
    }
    model.dispose();
  }
});
