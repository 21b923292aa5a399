/** nnU-Net v2 plans.json -> our Plan and network (fixtures of test/fixtures/nnunet/make_nnunet_fixtures.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, ValidationError } from '../core/index.js';
import { readDatasetJson } from '../io/index.js';
import { MAX_INHERITANCE_DEPTH, planFromNnunet } from './nnunet_plans.js';
import { validatePlan } from './planning_schema.js';

const MODELS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nnunet/models/Dataset901_Tiny');
const PLAIN = path.join(MODELS, 'nnUNetTrainer__nnUNetPlans__3d_fullres');
const RESENC = path.join(MODELS, 'nnUNetTrainer__nnUNetResEncUNetMPlans__3d_fullres');

function load(folder: string): { plans: Record<string, any>; file: string } {
  const file = path.join(folder, 'plans.json');
  return { plans: JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>, file };
}

test('3d_fullres of a PlainConvUNet plan: preprocessing, patch and network as nnU-Net plans them; a valid Plan', () => {
  const { plans, file } = load(PLAIN);
  const { plan, network } = planFromNnunet(plans, readDatasetJson(PLAIN), { plansFile: file });
  assert.deepEqual(validatePlan(plan), []);
  assert.deepEqual(plan.configuration.patchSize, [8, 16, 16]);
  assert.deepEqual(plan.configuration.targetSpacing, [2, 1, 1]);
  assert.deepEqual(plan.configuration.normalization, [{ channel: 'CT', scheme: 'ct', useMaskForNorm: false, ct: { mean: -200, std: 350, percentile_00_5: -1000, percentile_99_5: 300 } }]);
  assert.deepEqual(plan.configuration.resampling.data, { order: 3, orderZ: 0, forceSeparateZ: null, anisotropyThreshold: 3 });
  assert.deepEqual(plan.configuration.resampling.segmentation, { order: 1, orderZ: 0, forceSeparateZ: null, anisotropyThreshold: 3 });
  assert.equal(plan.configuration.network.architecture, 'PlainConvUNet');
  assert.deepEqual(network, {
    name: 'PlainConvUNet',
    config: {
      inputChannels: 1, numClasses: 3, featuresPerStage: [4, 8, 16], kernelSizes: [[1, 3, 3], [3, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
      nConvPerStage: 2, nConvPerStageDecoder: 2, deepSupervision: false, negativeSlope: 0.01, normEps: 1e-5,
    },
  });
});

test('a ResidualEncoderUNet plan keeps its blocks per stage; configurations inherit as PlansManager resolves them', () => {
  const { plans, file } = load(RESENC);
  const { plan, network } = planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file });
  assert.deepEqual(validatePlan(plan), []);
  assert.equal(network.name, 'ResidualEncoderUNet');
  assert.deepEqual(network.config.nBlocksPerStage, [1, 2, 2]);
  assert.equal(network.config.nConvPerStageDecoder, 1);
  assert.deepEqual(plan.configuration.network.nBlocksPerStage, [1, 2, 2]);
  plans.configurations.my_config = { inherits_from: '3d_fullres', patch_size: [16, 16, 16] };
  const inherited = planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: 'my_config' });
  assert.deepEqual(inherited.plan.configuration.patchSize, [16, 16, 16]);
  assert.deepEqual(inherited.plan.configuration.targetSpacing, [2, 1, 1]);
  plans.configurations.loop_a = { inherits_from: 'loop_b' };
  plans.configurations.loop_b = { inherits_from: 'loop_a' };
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: 'loop_a' }), /inheritance loops: loop_a -> loop_b -> loop_a/);
  // A chain as deep as allowed resolves (child keys win at every level); one deeper, or 100,000 deep, is refused by its depth.
  const chain = (prefix: string, depth: number): string => {
    for (let i = 1; i < depth; i++) plans.configurations[`${prefix}${i}`] = { inherits_from: i === 1 ? '3d_fullres' : `${prefix}${i - 1}`, ...(i === 3 ? { patch_size: [8, 16, 16] } : {}) };
    return `${prefix}${depth - 1}`;
  };
  const deepest = planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: chain('ok_', MAX_INHERITANCE_DEPTH) });
  assert.deepEqual(deepest.plan.configuration.patchSize, [8, 16, 16]);
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: chain('deep_', MAX_INHERITANCE_DEPTH + 1) }), (error: unknown) => {
    assert.ok(error instanceof InputError && error.code === 'bad-plan');
    assert.match(error.message, /configuration inheritance is deeper than 16: deep_16 -> deep_15 -> deep_14 -> deep_13 -> \.\.\. -> deep_2 -> deep_1 -> 3d_fullres/);
    return true;
  });
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: chain('huge_', 100_000) }), /inheritance is deeper than 16: huge_99999 -> huge_99998/);
  plans.configurations.self = { inherits_from: 'self' };
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: 'self' }), /inheritance loops: self -> self/);
  plans.configurations.orphan = { inherits_from: 'ghost' };
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: 'orphan' }), /configuration 'ghost' \(inherited by orphan\) is not in the plans/);
  plans.configurations.proto = { inherits_from: '__proto__' };
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: 'proto' }), /configuration '__proto__' \(inherited by proto\) is not in the plans/);
  plans.configurations.numbered = { inherits_from: 3 };
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: 'numbered' }), /configurations\.numbered\.inherits_from must name a configuration, got 3/);
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: 'nope' }), (error: unknown) => error instanceof InputError && /'nope' is not in the plans \(they hold 2d, 3d_fullres/.test(error.message));
  // This fixture's 2d configuration names Conv2d with 3D kernels and strides: each is refused by its path.
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file, configuration: '2d' }), /2d\.architecture\.arch_kwargs\.kernel_sizes\.0 must be 2 odd positive integers \(got \[3,3,3\]\)/);
});

test('every difference from what we build is one issue with its JSON path', () => {
  const { plans, file } = load(RESENC);
  const kwargs = plans.configurations['3d_fullres'].architecture.arch_kwargs;
  kwargs.block = 'dynamic_network_architectures.building_blocks.residual.BottleneckD';
  kwargs.norm_op = 'torch.nn.BatchNorm3d';
  kwargs.squeeze_excitation = true;
  plans.configurations['3d_fullres'].resampling_fn_probabilities_kwargs.order = 3;
  plans.image_reader_writer = 'NibabelIOWithReorient';
  assert.throws(() => planFromNnunet(plans, readDatasetJson(RESENC), { plansFile: file }), (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    assert.deepEqual(error.issues.map((issue) => issue.path).sort(), [
      'configurations.3d_fullres.architecture.arch_kwargs.block',
      'configurations.3d_fullres.architecture.arch_kwargs.norm_op',
      'configurations.3d_fullres.architecture.arch_kwargs.squeeze_excitation',
      'configurations.3d_fullres.resampling_fn_probabilities_kwargs',
      'image_reader_writer',
    ]);
    return true;
  });
});

test('shapes and types (zod schema) are reported with what we would build differently; keys nnU-Net adds pass through', () => {
  const { plans, file } = load(PLAIN);
  plans.experiment_planner_used = 'ExperimentPlanner';
  plans.configurations['3d_fullres'].my_custom_key = { any: 1 };
  assert.doesNotThrow(() => planFromNnunet(plans, readDatasetJson(PLAIN), { plansFile: file }));
  const c = plans.configurations['3d_fullres'];
  c.spacing = [1, 'x', 1];
  c.batch_dice = 'yes';
  c.resampling_fn_seg_kwargs.force_separate_z = 'no';
  plans.transpose_forward = [0, 0, 2];
  c.architecture.arch_kwargs.norm_op = 'torch.nn.BatchNorm3d';
  assert.throws(() => planFromNnunet(plans, readDatasetJson(PLAIN), { plansFile: file }), (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    assert.deepEqual(error.issues.map((issue) => `${issue.code} ${issue.path}`).sort(), [
      'bad-value transpose_forward',
      'unsupported configurations.3d_fullres.architecture.arch_kwargs.norm_op',
      'wrong-type configurations.3d_fullres.batch_dice',
      'wrong-type configurations.3d_fullres.resampling_fn_seg_kwargs.force_separate_z',
      'wrong-type configurations.3d_fullres.spacing.1',
    ]);
    assert.equal(error.issues.find((i) => i.path === 'transpose_forward')!.message, 'must be a permutation of [0, 1, 2], got [0,0,2]');
    return true;
  });
});
