/**
 * The planner against the worked 3d_fullres plans of NNUNET.md section 1 (computed there with a
 * numpy re-implementation of nnU-Net's planner that reproduces the plan posted in nnUNet#1898),
 * plus the target-spacing rule, the small presets and the batch-Dice (3d_lowres) rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Shape3 } from '../core/index.js';
import { determineTargetSpacing, determineTranspose, planConfiguration } from './planning.js';
import { PRESETS, getPreset } from './planning_presets.js';
import { convFeatureMapSize, featuresPerStage, padShape, poolAndConvProps, type Triple } from './planning_topology.js';
import { searchLowres } from './planning_batch_dice.js';

const repeat = (stride: Triple, n: number): Triple[] => Array.from({ length: n }, () => stride);

const WORKED_PLANS: {
  name: string;
  spacing: Triple;
  medianShape: Triple;
  channels: number;
  classes: number;
  numTraining: number;
  patch: Triple;
  batch: number;
  strides: Triple[];
  firstKernel: Triple;
}[] = [
  {
    name: 'nnUNet#1898 plan',
    spacing: [0.6, 0.347, 0.347],
    medianShape: [512, 512, 706],
    channels: 1,
    classes: 2,
    numTraining: 30,
    patch: [128, 112, 160],
    batch: 2,
    strides: [[1, 1, 1], ...repeat([2, 2, 2], 4), [2, 1, 2]],
    firstKernel: [3, 3, 3],
  },
  {
    name: 'BraTS-like',
    spacing: [1, 1, 1],
    medianShape: [138, 169, 138],
    channels: 4,
    classes: 4,
    numTraining: 484,
    patch: [128, 128, 128],
    batch: 2,
    strides: [[1, 1, 1], ...repeat([2, 2, 2], 5)],
    firstKernel: [3, 3, 3],
  },
  {
    name: 'liver-like CT',
    spacing: [1, 0.77, 0.77],
    medianShape: [432, 512, 512],
    channels: 1,
    classes: 3,
    numTraining: 131,
    patch: [128, 128, 128],
    batch: 2,
    strides: [[1, 1, 1], ...repeat([2, 2, 2], 5)],
    firstKernel: [3, 3, 3],
  },
  {
    name: 'hippocampus-like',
    spacing: [1, 1, 1],
    medianShape: [36, 50, 35],
    channels: 1,
    classes: 3,
    numTraining: 260,
    patch: [40, 56, 40],
    batch: 9,
    strides: [[1, 1, 1], ...repeat([2, 2, 2], 3)],
    firstKernel: [3, 3, 3],
  },
  {
    name: 'anisotropic MR',
    spacing: [5, 1.56, 1.56],
    medianShape: [18, 256, 216],
    channels: 1,
    classes: 4,
    numTraining: 200,
    patch: [20, 256, 224],
    batch: 4,
    strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2]],
    firstKernel: [1, 3, 3],
  },
];

test('nnunet preset reproduces the worked plans table (patch, batch, strides, kernels)', () => {
  assert.equal(WORKED_PLANS.length, 5);
  for (const row of WORKED_PLANS) {
    const result = planConfiguration(
      {
        targetSpacing: row.spacing,
        medianShape: row.medianShape,
        numInputChannels: row.channels,
        numClasses: row.classes,
        numTraining: row.numTraining,
      },
      PRESETS.nnunet,
    );
    assert.deepEqual(result.patchSize, row.patch, `${row.name}: patch`);
    assert.equal(result.batchSize, row.batch, `${row.name}: batch`);
    assert.deepEqual(result.topology.strides, row.strides, `${row.name}: strides`);
    assert.deepEqual(result.topology.kernelSizes[0], row.firstKernel, `${row.name}: first kernel`);
    assert.deepEqual(result.topology.kernelSizes.at(-1), [3, 3, 3], `${row.name}: bottleneck kernel`);
    assert.equal(result.featuresPerStage.length, row.strides.length);
    assert.ok(result.vramEstimate <= 560e6, `${row.name}: estimate under the reference`);
  }
});

test('VRAM proxy of the 6-stage 128^3 network is about 4.51e8 (NNUNET.md section 6)', () => {
  const strides: Triple[] = [[1, 1, 1], ...repeat([2, 2, 2], 5)];
  const estimate = convFeatureMapSize([128, 128, 128], { featuresPerStage: featuresPerStage(6, 32, 320), strides, numClasses: 2 });
  assert.ok(Math.abs(estimate - 4.51e8) < 0.005e8, `estimate ${estimate}`);
});

test('pad_shape and get_pool_and_conv_props on the hippocampus median shape', () => {
  assert.deepEqual(padShape([36, 50, 35], [8, 8, 8]), [40, 56, 40]);
  assert.deepEqual(padShape([32, 48, 40], [8, 16, 8]), [32, 48, 40]);
  const topology = poolAndConvProps([1, 1, 1], [36, 50, 35]);
  assert.deepEqual(topology.poolsPerAxis, [3, 3, 3]);
  assert.deepEqual(topology.patchSize, [40, 56, 40]);
});

test('target spacing: median, or the 10th percentile along a very anisotropic axis', () => {
  const shapes: Shape3[] = Array.from({ length: 5 }, () => [20, 256, 256] as Shape3);
  assert.deepEqual(
    determineTargetSpacing([[5, 1, 1], [5, 1, 1], [5, 1, 1], [3, 1, 1], [2.5, 1, 1]], shapes),
    [2.7, 1, 1],
  );
  const low = determineTargetSpacing([[4, 1, 1], [4, 1, 1], [4, 1, 1], [0.9, 1, 1], [0.8, 1, 1]], shapes);
  assert.ok(Math.abs(low[0] - 1.00001) < 1e-12);
  const isotropicShapes: Shape3[] = Array.from({ length: 3 }, () => [200, 256, 256] as Shape3);
  assert.deepEqual(determineTargetSpacing([[5, 1, 1], [4, 1, 1], [3, 1, 1]], isotropicShapes), [4, 1, 1]);
  assert.deepEqual(determineTranspose([1, 3, 1]), { forward: [1, 0, 2], backward: [1, 0, 2] });
  assert.deepEqual(determineTranspose([2.5, 0.8, 0.8]), { forward: [0, 1, 2], backward: [0, 1, 2] });
});

test('paper preset keeps 50x160x192 and pools each axis only as far as it divides', () => {
  const result = planConfiguration(
    { targetSpacing: [1.5, 0.78, 0.78], medianShape: [300, 400, 400], numInputChannels: 1, numClasses: 2, numTraining: 20 },
    PRESETS.paper,
  );
  assert.deepEqual(result.patchSize, [50, 160, 192]);
  assert.equal(result.batchSize, 2);
  const product = [0, 1, 2].map((axis) => result.topology.strides.reduce((p, s) => p * s[axis]!, 1));
  assert.deepEqual(product.map((p, axis) => result.patchSize[axis]! % p), [0, 0, 0]);
  assert.equal(product[0], 2);
  assert.equal(result.featuresPerStage[0], 32);
});

test('cpu and tiny presets stay under their voxel budgets and stage limits', () => {
  for (const name of ['cpu', 'tiny'] as const) {
    const preset = getPreset(name);
    for (const spacing of [[1, 1, 1], [2.5, 0.7, 0.7], [5, 1.56, 1.56]] as Triple[]) {
      const result = planConfiguration(
        { targetSpacing: spacing, medianShape: [120, 300, 300], numInputChannels: 1, numClasses: 2, numTraining: 10 },
        preset,
      );
      const voxels = result.patchSize[0] * result.patchSize[1] * result.patchSize[2];
      assert.ok(preset.patch.kind === 'voxels' && voxels <= preset.patch.budgetVoxels, `${name} ${spacing}: ${result.patchSize}`);
      assert.ok(result.topology.strides.length <= preset.maxStages);
      assert.ok(result.topology.strides.length >= 3, `${name} ${spacing}: ${result.topology.strides.length} stages`);
      assert.ok(Math.max(...result.featuresPerStage) <= preset.maxFeatures);
      assert.equal(result.batchSize, 2);
    }
  }
  assert.throws(() => getPreset('huge'), /use one of nnunet, paper, cpu, tiny/);
});

test('batch Dice for 3d_fullres exactly when nnU-Net would also plan a 3d_lowres', () => {
  // 3d_lowres exists for the large CT plans (patch << a quarter of the median case), not for the
  // others, whose patch already covers most of the median case.
  const expected: Record<string, boolean> = {
    'nnUNet#1898 plan': true,
    'BraTS-like': false,
    'liver-like CT': true,
    'hippocampus-like': false,
    'anisotropic MR': false,
  };
  for (const row of WORKED_PLANS) {
    const input = { targetSpacing: row.spacing, medianShape: row.medianShape, numInputChannels: row.channels, numClasses: row.classes, numTraining: row.numTraining };
    const patch = planConfiguration(input, PRESETS.nnunet).patchSize;
    const search = searchLowres(row.spacing, row.medianShape, patch, (spacing, shape) => planConfiguration({ ...input, targetSpacing: spacing, medianShape: shape }, PRESETS.nnunet).patchSize);
    assert.equal(search.lowres, expected[row.name], row.name);
  }
});

test('3d_lowres search by hand: +3 % per step until the patch covers a quarter, dropped when < 2x fewer voxels', () => {
  const fixed = (size: number) => () => [size, size, size];
  // 40^3 = 64000 voxels of a 100^3 median: the median must fall to 256000 voxels, 1.03^(3k) >= 3.906
  // -> k = 16 (1.03^48 = 4.13 >= 2: kept).
  const kept = searchLowres([1, 1, 1], [100, 100, 100], [40, 40, 40], fixed(40));
  assert.equal(kept.steps, 16);
  assert.equal(kept.lowres, true);
  kept.lowresSpacing.forEach((s) => assert.ok(Math.abs(s - 1.03 ** 16) < 1e-12));
  // 58^3 = 195112: 1.03^(3k) >= 1.2813 -> k = 3, and 1.03^9 = 1.30 < 2: dropped.
  const dropped = searchLowres([1, 1, 1], [100, 100, 100], [58, 58, 58], fixed(58));
  assert.deepEqual([dropped.steps, dropped.lowres], [3, false]);
  // the patch already covers a quarter: no search at all
  assert.deepEqual(searchLowres([1, 1, 1], [100, 100, 100], [63, 63, 63], fixed(63)), { lowres: false, lowresSpacing: [1, 1, 1], steps: 0 });
  // anisotropic [3, 1, 1]: only the fine axes grow while they are more than 2x finer (14 steps:
  // 1.03^13 = 1.469 < 1.5 <= 1.03^14), then all; 4.5e6 voxels must fall to 4 * 32000, i.e.
  // 1.03^(2 * 14 + 3m) >= 35.16 -> m = 31, 45 steps.
  const aniso = searchLowres([3, 1, 1], [50, 300, 300], [20, 40, 40], () => [20, 40, 40]);
  assert.equal(aniso.steps, 45);
  assert.equal(aniso.lowres, true);
  assert.ok(Math.abs(aniso.lowresSpacing[0] / (3 * 1.03 ** 31) - 1) < 1e-12);
  assert.ok(Math.abs(aniso.lowresSpacing[1] / 1.03 ** 45 - 1) < 1e-12 && aniso.lowresSpacing[1] === aniso.lowresSpacing[2]);
});
