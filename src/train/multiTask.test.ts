/**
 * The multi-head (multi-lesion) loss: each sample's loss reaches only its own task's heads (the
 * heads of tasks absent from the batch get no gradient, the shared body does), and the batch loss
 * equals the sample-count-weighted mean of the single-task losses that a PlainConvUNet with the
 * same body and that task's heads computes on the task's samples (PlainConvUNet and Dice+CE are
 * checked against PyTorch in src/models and src/nn, so this is the reference).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../core/index.js';
import { fromArray, liveTensors, manualSeed, noGrad, scope, type Tensor } from '../tensor/index.js';
import { deepSupervisionTargets, deepSupervisionWeights, loadStateDict, stateDict } from '../nn/index.js';
import { MultiHeadUNet, PlainConvUNet, type UNetConfig } from '../models/index.js';
import { batchLoss } from './step.js';
import { groupByTask } from './multiTask.js';

const config: UNetConfig = {
  inputChannels: 1,
  numClasses: 2,
  featuresPerStage: [4, 8, 16],
  kernelSizes: [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
  strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
  deepSupervision: true,
};
const TASK_CLASSES = [2, 2, 3];
const SPATIAL = [4, 16, 16] as const;
const CPU = { type: 'cpu' } as const;

/** Image and labels of a batch whose sample s belongs to task tasks[s] (labels within its task's classes). */
function batch(tasks: readonly number[], seed: number): { image: Float32Array; labels: BigInt64Array } {
  const rng = new Rng(seed);
  const voxels = SPATIAL[0] * SPATIAL[1] * SPATIAL[2];
  const image = Float32Array.from({ length: tasks.length * voxels }, () => rng.normal());
  const labels = BigInt64Array.from({ length: tasks.length * voxels }, (_, i) => BigInt(Math.floor(rng.uniform(0, TASK_CLASSES[tasks[Math.floor(i / voxels)]!]!))));
  return { image, labels };
}

function tensors(data: { image: Float32Array; labels: BigInt64Array }, batchSize: number): { x: Tensor; targets: Tensor[] } {
  const x = fromArray(data.image, [batchSize, 1, ...SPATIAL]);
  const y = fromArray(data.labels, [batchSize, 1, ...SPATIAL]);
  return { x, targets: deepSupervisionTargets(y, config.strides, config.featuresPerStage.length - 1) };
}

test('groupByTask keeps samples in order per task', () => {
  assert.deepEqual([...groupByTask([2, 0, 2, 1, 0])], [[2, [0, 2]], [0, [1, 4]], [1, [3]]]);
});

test('each sample trains only its own task heads: heads of absent tasks get no gradient', () => {
  const before = liveTensors();
  manualSeed(3);
  const model = new MultiHeadUNet(config, TASK_CLASSES);
  const tasks = [0, 2, 0];
  scope(() => {
    const { x, targets } = tensors(batch(tasks, 7), tasks.length);
    model.zeroGrad();
    batchLoss({ model, device: CPU, precision: 'fp32' }, x, targets, tasks).backward();
  });
  const absolute = (name: string): number | null =>
    noGrad(() =>
      scope(() => {
        const grad = model.parameterDict().get(name)!.value.grad;
        return grad === null ? null : grad.toFloat32Array().reduce((sum, v) => sum + Math.abs(v), 0);
      }),
    );
  const names = [...model.parameterDict().keys()];
  const heads = (task: number) => names.filter((n) => n.startsWith(`decoder.task_heads.${task}.`));
  assert.equal(heads(1).length, 2 * 2, 'task 1 has a weight and a bias per decoder level');
  for (const name of heads(1)) assert.equal(absolute(name), null, `${name}: task 1 is not in the batch`);
  // Head i serves deep-supervision output L-1-i; nnU-Net weighs the lowest-resolution output 0, so its head gets no gradient either.
  const weights = deepSupervisionWeights(config.featuresPerStage.length - 1);
  const levelWeight = (name: string): number => weights[weights.length - 1 - Number(name.split('.')[3])]!;
  for (const name of [...heads(0), ...heads(2)]) {
    if (levelWeight(name) > 0) assert.ok(absolute(name)! > 0, `${name} gets a gradient`);
    else assert.equal(absolute(name), null, `${name}: deep-supervision weight 0`);
  }
  assert.ok([...heads(0), ...heads(2)].filter((n) => levelWeight(n) > 0).length >= 4);
  for (const name of names.filter((n) => n.startsWith('encoder.') || n.startsWith('decoder.stages.'))) {
    if (name.endsWith('.weight') && name.includes('conv')) assert.ok(absolute(name)! > 0, `${name}: the shared body learns from every sample`);
  }
  model.zeroGrad();
  model.dispose();
  assert.equal(liveTensors(), before);
});

test('the batch loss is the sample-weighted mean of the per-task losses of single-head networks', () => {
  const before = liveTensors();
  manualSeed(5);
  const multi = new MultiHeadUNet(config, TASK_CLASSES);
  const multiState = stateDict(multi);
  for (const tasks of [[0, 2, 0, 1], [2, 2], [1, 0, 1]]) {
    const data = batch(tasks, tasks.length * 13);
    const expected = new Map<number, number>();
    for (const [task, samples] of groupByTask(tasks)) {
      const single = new PlainConvUNet({ ...config, numClasses: TASK_CLASSES[task]! });
      const report = loadStateDict(single, multiState, { rename: (name) => name.replace('decoder.seg_layers.', `decoder.task_heads.${task}.`) });
      assert.deepEqual([report.missing, report.shapeMismatch], [[], []]);
      const voxels = SPATIAL[0] * SPATIAL[1] * SPATIAL[2];
      const groupData = {
        image: Float32Array.from(samples.flatMap((s) => [...data.image.subarray(s * voxels, (s + 1) * voxels)])),
        labels: BigInt64Array.from(samples.flatMap((s) => [...data.labels.subarray(s * voxels, (s + 1) * voxels)])),
      };
      const loss = noGrad(() => scope(() => {
        const { x, targets } = tensors(groupData, samples.length);
        return batchLoss({ model: single, device: CPU, precision: 'fp32' }, x, targets).item();
      }));
      expected.set(task, loss);
      single.dispose();
    }
    const reference = [...groupByTask(tasks)].reduce((sum, [task, samples]) => sum + (samples.length / tasks.length) * expected.get(task)!, 0);
    const actual = noGrad(() => scope(() => {
      const { x, targets } = tensors(data, tasks.length);
      return batchLoss({ model: multi, device: CPU, precision: 'fp32' }, x, targets, tasks).item();
    }));
    assert.ok(Math.abs(actual - reference) < 1e-5 * Math.max(1, Math.abs(reference)), `tasks ${tasks}: ${actual} vs ${reference}`);
  }
  assert.throws(() => scope(() => {
    const { x, targets } = tensors(batch([0], 1), 1);
    return batchLoss({ model: multi, device: CPU, precision: 'fp32' }, x, targets);
  }), /needs the task of each sample/);
  multi.dispose();
  assert.equal(liveTensors(), before);
});
