/**
 * `train --configuration 2d|3d_lowres` and `export --format nnunet` of each, in process: a tiny
 * phantom (two cases of 32x64x64) planned with the tiny preset trains two iterations per
 * configuration with the real loader; the run's plan is the configuration chosen (2d: patch
 * [1, 32, 32], kernels [1, 3, 3], each case keeping its slice spacing; 3d_lowres: the coarser
 * spacing of the low-resolution search); the exported folder names the configuration as nnU-Net
 * does (2d: Conv2d, 2-entry patch, spacing and kernels, mirroring axes (0, 1), Conv2d weights
 * [out, in, 3, 3]); and our predictor gives the same masks and probabilities from the exported
 * folder as from the run (the same weights through the same kernels: equal to 1e-6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CPU, InputError } from '../core/index.js';
import { planDatasets, savePlan } from '../data/index.js';
import { readNifti, readNnunetCheckpoint } from '../io/index.js';
import { Predictor } from '../infer/index.js';
import { writeSynthDataset } from '../synth/index.js';
import { SCRATCH, trainCommand, type TrainCommandOptions } from '../train/index.js';
import { exportNnunet } from './index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'export-configurations-'));
const dataset = path.join(tmp, 'ds');
let synth: Promise<unknown> | null = null;

async function train(configuration: string, out: string): Promise<void> {
  synth ??= writeSynthDataset({ kind: 'covid', cases: 2, out: dataset, seed: 1, size: 'tiny' });
  await synth;
  const options: TrainCommandOptions = {
    dataset, out, strategy: SCRATCH, pretrained: null, split: null, fold: 'all', validationFraction: 0, configuration,
    preset: 'tiny', plan: null, epochs: 1, iterationsPerEpoch: 2, validationIterations: 1, seed: 0, device: CPU, precision: 'fp32',
    threads: 1, resume: false, force: false, preprocessed: path.join(tmp, `pre-${configuration}`), workers: 0,
  };
  await trainCommand(options);
}

const RUN_2D = path.join(tmp, 'run-2d');
let trained2d: Promise<void> | null = null;
/** The 2d run, trained once for the tests that need it. */
function train2d(): Promise<void> {
  trained2d ??= train('2d', RUN_2D);
  return trained2d;
}

/** The run's and the export's predictions of one case (no mirroring: the same windows either way, and fast). */
async function samePredictions(run: string, exported: string, configuration: string): Promise<void> {
  const image = await readNifti(path.join(dataset, 'imagesTr', 'covid_000_0000.nii.gz'));
  const options = { precision: 'fp32' as const, mirrorAxes: [], skipBackground: false };
  const ours = Predictor.fromCheckpoints([path.join(run, 'checkpoint_final')], options);
  const theirs = Predictor.fromCheckpoints([path.join(exported, 'fold_0', 'checkpoint_final.pth')], { ...options, configuration });
  try {
    const a = ours.predictCase([image], { probabilities: true });
    const b = theirs.predictCase([image], { probabilities: true });
    assert.deepEqual(a.segmentation.shape, [32, 64, 64]);
    assert.ok(Buffer.from(a.segmentation.data).equals(Buffer.from(b.segmentation.data)), 'the same mask');
    let worst = 0;
    a.probabilities!.forEach((p, c) => p.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.probabilities![c]!.data[i]!)))));
    assert.ok(worst <= 1e-6, `probabilities differ by ${worst}`);
  } finally {
    ours.dispose();
    theirs.dispose();
  }
}

test('train --configuration 2d trains a slice network; its nnU-Net export is a Conv2d model that predicts as the run', async () => {
  const run = RUN_2D;
  await train2d();
  const plan = JSON.parse(fs.readFileSync(path.join(run, 'plan.json'), 'utf8'));
  assert.equal(plan.configurations, undefined);
  assert.deepEqual([plan.configuration.name, plan.configuration.spatialDims, plan.configuration.patchSize], ['2d', 2, [1, 32, 32]]);
  assert.deepEqual(plan.configuration.network.kernelSizes, [[1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3]]);
  // Each preprocessed case keeps its slices (32 at the phantom's spacing) and is resampled in-plane only.
  const properties = JSON.parse(fs.readFileSync(path.join(tmp, 'pre-2d', 'covid_000.json'), 'utf8'));
  assert.equal(properties.targetSpacing[0], properties.spacingBeforeResampling[0]);
  assert.notEqual(properties.targetSpacing[0], plan.fingerprint.medianSpacing[0], 'the case\'s own slice spacing, not the median');
  assert.equal(properties.shapeAfterResampling[0], properties.shapeAfterCroppingBeforeResampling[0]);
  assert.deepEqual(properties.targetSpacing.slice(1), plan.configuration.targetSpacing.slice(1));

  const exported = path.join(tmp, 'nnunet-2d');
  exportNnunet({ run, out: exported });
  const plans = JSON.parse(fs.readFileSync(path.join(exported, 'plans.json'), 'utf8'));
  assert.deepEqual(Object.keys(plans.configurations), ['2d']);
  const c = plans.configurations['2d'];
  assert.deepEqual([c.patch_size, c.spacing.length, c.median_image_size_in_voxels.length, c.batch_dice, c.data_identifier], [[32, 32], 2, 2, true, 'nnUNetPlans_2d']);
  assert.equal(c.architecture.arch_kwargs.conv_op, 'torch.nn.modules.conv.Conv2d');
  assert.equal(c.architecture.arch_kwargs.norm_op, 'torch.nn.modules.instancenorm.InstanceNorm2d');
  assert.deepEqual(c.architecture.arch_kwargs.kernel_sizes, [[3, 3], [3, 3], [3, 3], [3, 3]]);
  assert.deepEqual(c.architecture.arch_kwargs.strides, [[1, 1], [2, 2], [2, 2], [2, 2]]);
  const checkpoint = readNnunetCheckpoint(path.join(exported, 'fold_0', 'checkpoint_final.pth'));
  assert.deepEqual([checkpoint.configuration, checkpoint.mirrorAxes], ['2d', [0, 1]]);
  assert.deepEqual(checkpoint.weights.get('encoder.stages.0.0.convs.0.conv.weight')!.shape, [4, 1, 3, 3]);
  assert.deepEqual(checkpoint.weights.get('decoder.transpconvs.0.weight')!.shape, [32, 16, 2, 2]);
  assert.ok([...checkpoint.weights.values()].every((w) => w.shape.length <= 4), 'no 3D weight is left');

  // Our predictor mirrors a 2d model over y and x, whichever way it was read.
  const fromRun = Predictor.fromCheckpoints([path.join(run, 'checkpoint_final')]);
  const fromExport = Predictor.fromCheckpoints([path.join(exported, 'fold_0', 'checkpoint_final.pth')], { configuration: '2d' });
  assert.deepEqual([fromRun.mirrorAxes, fromExport.mirrorAxes], [[1, 2], [1, 2]]);
  fromRun.dispose();
  fromExport.dispose();
  await samePredictions(run, exported, '2d');
  assert.throws(() => Predictor.fromCheckpoints([path.join(run, 'checkpoint_final')], { configuration: '3d_fullres' }), (error: unknown) => error instanceof InputError && /--configuration 3d_fullres: this lesionseg checkpoint is a 2d model/.test(error.message));
});

test('train --configuration 3d_lowres trains at the low-resolution spacing; its nnU-Net export is a 3d_lowres model that predicts as the run', async () => {
  const run = path.join(tmp, 'run-lowres');
  await train('3d_lowres', run);
  const plan = JSON.parse(fs.readFileSync(path.join(run, 'plan.json'), 'utf8'));
  assert.equal(plan.configuration.name, '3d_lowres');
  assert.equal(plan.configuration.batchDice, false);
  const exported = path.join(tmp, 'nnunet-lowres');
  exportNnunet({ run, out: exported });
  const plans = JSON.parse(fs.readFileSync(path.join(exported, 'plans.json'), 'utf8'));
  assert.deepEqual(Object.keys(plans.configurations), ['3d_lowres']);
  assert.deepEqual(plans.configurations['3d_lowres'].spacing, plan.configuration.targetSpacing);
  assert.equal(plans.configurations['3d_lowres'].architecture.arch_kwargs.conv_op, 'torch.nn.modules.conv.Conv3d');
  assert.equal(readNnunetCheckpoint(path.join(exported, 'fold_0', 'checkpoint_final.pth')).configuration, '3d_lowres');
  await samePredictions(run, exported, '3d_lowres');
});

test('train --configuration refuses one the plan does not hold, naming those it holds, and a cascade stage, before the run folder changes', async () => {
  const out = path.join(tmp, 'run-refused');
  // The 2d run's plan holds 2d only.
  await train2d();
  const options: TrainCommandOptions = {
    dataset, out, strategy: SCRATCH, pretrained: null, split: null, fold: 'all', validationFraction: 0, configuration: '3d_lowres',
    preset: null, plan: path.join(RUN_2D, 'plan.json'), epochs: 1, iterationsPerEpoch: 1, validationIterations: 1, seed: 0, device: CPU, precision: 'fp32',
    threads: 1, resume: false, force: false, preprocessed: null, workers: 0,
  };
  await assert.rejects(trainCommand(options), (error: unknown) => error instanceof InputError && error.code === 'unknown-configuration' && /^--configuration 3d_lowres: the plan holds 2d \(nnU-Net plans a low resolution only when/.test(error.message));
  assert.equal(fs.existsSync(out), false);
  // A cascade stage needs its previous stage.
  const full = path.join(tmp, 'plan-tiny.json');
  savePlan(full, await planDatasets(dataset, 'tiny'));
  await assert.rejects(trainCommand({ ...options, plan: full, configuration: '3d_cascade_fullres' }), (error: unknown) => error instanceof InputError && error.code === 'bad-arguments' && /^--configuration 3d_cascade_fullres needs --previous-stage LOWRES/.test(error.message));
  assert.equal(fs.existsSync(out), false);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
