/**
 * planExperiment's 2d, 3d_lowres and 3d_cascade_fullres (and 3d_fullres) against the plans nnU-Net's
 * own ExperimentPlanner made from the same fingerprints (test/fixtures/data/plan_configurations.json,
 * written by make_plan_configurations.py from nnU-Net v2's source): patch, batch, spacing, median
 * shape, kernels, strides, features and batch Dice, exactly (the spacings of the low-resolution
 * search to 1e-12: the same float64 products in the same order). Then selectConfiguration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { InputError } from '../core/index.js';
import type { DatasetFingerprint } from './fingerprint.js';
import { planExperiment } from './planning.js';
import { planConfigurationNames, selectConfiguration } from './planning_configurations.js';
import { validatePlan, type PlanConfiguration } from './planning_schema.js';

interface NnunetConfiguration {
  batch_size: number;
  patch_size: number[];
  median_image_size_in_voxels: number[];
  spacing: number[];
  batch_dice: boolean;
  architecture: { arch_kwargs: { features_per_stage: number[]; kernel_sizes: number[][]; strides: number[][]; n_stages: number } };
  inherits_from?: string;
  previous_stage?: string;
}

interface Fixture {
  name: string;
  channels: Record<string, string>;
  labels: Record<string, number>;
  cases: { spacing: [number, number, number]; shape: [number, number, number] }[];
  relative_size: number;
  plans: { transpose_forward: number[]; configurations: Record<string, NnunetConfiguration> };
}

const FIXTURES = (JSON.parse(fs.readFileSync(new URL('../../test/fixtures/data/plan_configurations.json', import.meta.url), 'utf8')) as { fingerprints: Fixture[] }).fingerprints;

function fingerprintOf(fixture: Fixture): DatasetFingerprint {
  const n = fixture.cases.length;
  const properties = { mean: 100, median: 90, std: 250, min: -1000, max: 3000, percentile_00_5: -900, percentile_99_5: 1500 };
  return {
    datasets: [{ name: fixture.name, path: '/x', labels: fixture.labels, channelNames: fixture.channels, numTraining: n, fileEnding: '.nii.gz' }],
    summary: {
      numCases: n,
      medianSpacing: fixture.cases[0]!.spacing,
      medianShapeAfterCrop: fixture.cases[0]!.shape,
      medianRelativeSizeAfterCropping: fixture.relative_size,
      foregroundIntensityPropertiesPerChannel: Object.keys(fixture.channels).map(() => properties),
      intensitySampling: { samplesPerCase: 1, seed: 1234, generator: 'test' },
      cases: fixture.cases.map((c, i) => ({ dataset: fixture.name, id: `case${i}`, spacing: c.spacing, shapeAfterCrop: c.shape })),
    },
  };
}

/** Our configuration in nnU-Net's terms: a 2d one drops axis 0 (stride and kernel 1, patch 1 deep). */
function asNnunet(c: PlanConfiguration) {
  const drop = <T>(values: readonly T[]): T[] => (c.spatialDims === 2 ? values.slice(1) : [...values]);
  return {
    batch_size: c.batchSize,
    patch_size: drop(c.patchSize),
    median_image_size_in_voxels: drop(c.medianShape),
    batch_dice: c.batchDice,
    features_per_stage: c.network.featuresPerStage,
    kernel_sizes: c.network.kernelSizes.map(drop),
    strides: c.network.strides.map(drop),
    n_stages: c.network.nStages,
  };
}

function assertSpacing(actual: readonly number[], expected: readonly number[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((value, i) => assert.ok(Math.abs(value - expected[i]!) <= 1e-12 * expected[i]!, `${what}: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`));
}

for (const fixture of FIXTURES) {
  test(`planExperiment makes nnU-Net's configurations for ${fixture.name}`, () => {
    const plan = planExperiment(fingerprintOf(fixture), 'nnunet');
    assert.deepEqual(validatePlan(plan), []);
    const theirs = fixture.plans.configurations;
    assert.deepEqual(plan.configuration.transpose.forward, fixture.plans.transpose_forward);
    assert.deepEqual(planConfigurationNames(plan).sort(), Object.keys(theirs).sort(), 'the same configurations');
    for (const name of ['2d', '3d_fullres', '3d_lowres'] as const) {
      const expected = theirs[name];
      if (expected === undefined) continue;
      const ours = name === '3d_fullres' ? plan.configuration : plan.configurations![name]!;
      const kwargs = expected.architecture.arch_kwargs;
      assert.deepEqual(
        asNnunet(ours),
        {
          batch_size: expected.batch_size,
          patch_size: expected.patch_size,
          // nnU-Net keeps 2d and 3d_fullres median shapes as numpy's (fractional) medians, 3d_lowres' rounded.
          median_image_size_in_voxels: expected.median_image_size_in_voxels,
          batch_dice: expected.batch_dice,
          features_per_stage: kwargs.features_per_stage,
          kernel_sizes: kwargs.kernel_sizes,
          strides: kwargs.strides,
          n_stages: kwargs.n_stages,
        },
        `${fixture.name} ${name}`,
      );
      assertSpacing(ours.spatialDims === 2 ? ours.targetSpacing.slice(1) : ours.targetSpacing, expected.spacing, `${fixture.name} ${name} spacing`);
    }
    const cascade = theirs['3d_cascade_fullres'];
    if (cascade !== undefined) {
      assert.deepEqual([cascade.inherits_from, cascade.previous_stage], ['3d_fullres', '3d_lowres']);
      const { name, previousStage, ...rest } = plan.configurations!['3d_cascade_fullres']!;
      assert.deepEqual([name, previousStage], ['3d_cascade_fullres', '3d_lowres']);
      assert.deepEqual(rest, plan.configuration);
    }
  });
}

test('the fixtures cover a 3d_lowres, an anisotropic search, no 3d_lowres and a transposed plan', () => {
  const names = FIXTURES.map((f) => [f.name, '3d_lowres' in f.plans.configurations, f.plans.transpose_forward.join('')]);
  assert.deepEqual(names, [
    ['Dataset901_IsoCT', true, '012'],
    ['Dataset902_ThickCT', true, '012'],
    ['Dataset903_Small', false, '012'],
    ['Dataset904_Transposed', false, '102'],
  ]);
});

test('selectConfiguration returns the chosen configuration and refuses one the plan lacks, naming what it holds', () => {
  const plan = planExperiment(fingerprintOf(FIXTURES[0]!), 'nnunet');
  const twoD = selectConfiguration(plan, '2d');
  assert.equal(twoD.configurations, undefined);
  assert.equal(twoD.configuration.name, '2d');
  assert.deepEqual(twoD.configuration.patchSize, [1, 512, 512]);
  assert.deepEqual(validatePlan(twoD), []);
  assert.deepEqual(selectConfiguration(twoD, '2d'), twoD, 'a plan of 2d selects itself');
  assert.equal(selectConfiguration(plan, '3d_fullres').configuration, plan.configuration);
  const small = planExperiment(fingerprintOf(FIXTURES[2]!), 'nnunet');
  assert.throws(() => selectConfiguration(small, '3d_lowres'), (error: unknown) => {
    assert.ok(error instanceof InputError);
    assert.equal(error.code, 'unknown-configuration');
    assert.match(error.message, /^--configuration 3d_lowres: the plan holds 3d_fullres, 2d \(nnU-Net plans a low resolution only when/);
    return true;
  });
  assert.throws(() => selectConfiguration(twoD, '3d_fullres'), /--configuration 3d_fullres: the plan holds 2d$/);
  assert.throws(() => selectConfiguration(plan, '3D'), /'3D' is not an nnU-Net configuration: use one of 2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres/);
});

test('the tiny and cpu presets plan a 2d of their pixel budget, paper plans none', () => {
  const fingerprint = fingerprintOf(FIXTURES[0]!);
  const tiny = planExperiment(fingerprint, 'tiny').configurations!['2d']!;
  assert.deepEqual([tiny.patchSize, tiny.batchSize, tiny.network.featuresPerStage], [[1, 32, 32], 2, [4, 8, 16, 32]]);
  const cpu = planExperiment(fingerprint, 'cpu').configurations!['2d']!;
  assert.deepEqual([cpu.patchSize, cpu.batchSize], [[1, 128, 128], 12]);
  assert.equal(planExperiment(fingerprint, 'paper').configurations?.['2d'], undefined);
});
