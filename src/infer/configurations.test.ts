/**
 * nnU-Net's 2d and 3d_lowres -> 3d_cascade_fullres configurations against nnU-Net itself: the model
 * folders and references of test/fixtures/nnunet/make_nnunet_zoo_fixtures.py, which ran nnU-Net's
 * own nnUNetPredictor (from its source, at fixture time) on an anisotropic CT with
 * dynamic-network-architectures' networks (the 2d one with real Conv2d / InstanceNorm2d /
 * ConvTranspose2d). Also the pure parts (per-axis steps, the one-hot channels) by hand, and the
 * refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/index.js';
import { readNifti, readNiftiHeader, readNpy } from '../io/index.js';
import { readInferenceCheckpoint, resolveCheckpoints } from '../checkpoint/index.js';
import { caseTargetSpacing, preprocessCase, withPreviousStage } from '../data/index.js';
import { axisStepFractions } from './configurations.js';
import { caseExtent } from './predictChecks.js';
import { predictFiles } from './predictFiles.js';
import { slidingWindowBoxes } from './slidingWindow.js';

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nnunet');
const ZOO = path.join(HERE, 'models/Dataset902_Zoo');
const folder = (configuration: string, plans = 'nnUNetPlans'): string => path.join(ZOO, `nnUNetTrainer__${plans}__${configuration}`);
const CASE = path.join(HERE, 'zoo/case_0000.nii.gz');

test('a 2D configuration steps one slice at a time along z and by the fraction in-plane', () => {
  assert.deepEqual(axisStepFractions({ spatialDims: 2 }, 0.5), [1, 0.5, 0.5]);
  assert.deepEqual(axisStepFractions({}, 0.5), [0.5, 0.5, 0.5]);
  // 3 slices of 32 x 29 with the 2D patch 16 x 16: every slice once, in-plane starts 0, 8, 16 and 0, 6, 13 (np.round(6.5) = 6).
  const boxes = slidingWindowBoxes([3, 32, 29], [1, 16, 16], axisStepFractions({ spatialDims: 2 }, 0.5));
  assert.equal(boxes.length, 3 * 3 * 3);
  assert.deepEqual([...new Set(boxes.map((b) => b.start[0]))], [0, 1, 2]);
  assert.deepEqual([...new Set(boxes.map((b) => b.start[1]))], [0, 8, 16]);
  assert.deepEqual([...new Set(boxes.map((b) => b.start[2]))], [0, 6, 13]);
});

test('the previous stage\'s labels become one channel per foreground label after the image channels (-1 and 0 give none)', () => {
  const data = Float32Array.from([5, 6, 7, 8]);
  const out = withPreviousStage(data, [1, 1, 2, 2], Int8Array.from([0, 2, -1, 1]), 3);
  assert.deepEqual(out.shape, [3, 1, 2, 2]);
  assert.deepEqual([...out.data], [5, 6, 7, 8, /* label 1 */ 0, 0, 0, 1, /* label 2 */ 0, 1, 0, 0]);
});

test('a 2d checkpoint reads as the 3D network with kernel depth 1: [1, y, x] patch, weights with a slice axis, mirror axes y and x; cases keep their slice spacing', async () => {
  const checkpoint = readInferenceCheckpoint(path.join(folder('2d'), 'fold_0/checkpoint_final.pth'));
  const c = checkpoint.plan.configuration;
  assert.equal(c.spatialDims, 2);
  assert.deepEqual(c.patchSize, [1, 16, 16]);
  assert.deepEqual(checkpoint.architecture.config.kernelSizes, [[1, 3, 3], [1, 3, 3], [1, 3, 3]]);
  assert.deepEqual(checkpoint.architecture.config.strides, [[1, 1, 1], [1, 2, 2], [1, 2, 2]]);
  assert.deepEqual(checkpoint.weights.get('encoder.stages.0.0.convs.0.conv.weight')!.shape, [4, 1, 1, 3, 3]);
  assert.deepEqual(checkpoint.weights.get('decoder.transpconvs.0.weight')!.shape, [16, 8, 1, 2, 2]);
  // nnU-Net's (0, 1) are the slice's y and x.
  assert.deepEqual(checkpoint.mirrorAxes, [1, 2]);
  // The case keeps its 3 mm slices; in-plane 0.8 mm -> 1 mm: 40 x 34 (cropped) -> 32 x 27 (np.round(27.2)). nnU-Net's own mask
  // cannot tell: with z resampled separately by nearest neighbour, 2D slices repeated 3 times give the same labels back.
  const image = await readNifti(CASE);
  assert.deepEqual(caseTargetSpacing(c, [3, 0.8, 0.8]), [3, 1, 1]);
  assert.deepEqual(preprocessCase([image], null, checkpoint.plan).properties.shapeAfterResampling, [6, 32, 27]);
  const cascade = readInferenceCheckpoint(path.join(folder('3d_cascade_fullres'), 'fold_0/checkpoint_final.pth'));
  assert.equal(cascade.plan.configuration.previousStage, '3d_lowres');
  assert.equal(cascade.architecture.config.inputChannels, 3, '1 CT channel + 2 foreground labels of the lowres mask');
});

/**
 * `windows`: nnU-Net's tiles of the case cropped to [6, 40, 34] and resampled (2d: 6 slices x 3 x 3 over 32 x 27;
 * lowres: [3, 20, 17] padded to 4 deep, 1 x 2 x 2; cascade at 0.9 mm: [6, 36, 30], 2 x 4 x 3).
 */
const CASES = [
  { configuration: '2d', windows: 54, why: 'slice-wise 2D windows, in-plane resampling that keeps the 3 mm slices, mirroring over y and x' },
  { configuration: '3d_lowres', windows: 4, why: 'its own spacing (z resampled separately), mirroring over all axes' },
  { configuration: '3d_cascade_fullres', windows: 24, why: 'after 3d_lowres, whose mask is resampled to 0.9 mm as a label map and one-hot input channels, mirroring (1, 2)' },
  { configuration: '2d', plans: 'nnUNetResEncUNetMPlans', reference: 'resenc_2d', windows: 54, why: 'a 2D ResidualEncoderUNet (BasicBlockD with Conv2d and AvgPool2d skips)' },
];

for (const item of CASES) {
  test(`predict ${item.plans ?? 'nnUNetPlans'} ${item.configuration} (${item.why}): nnU-Net's own mask and probabilities`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nnunet-zoo-'));
    try {
      const output = path.join(dir, 'case.nii.gz');
      const result = await predictFiles({ model: folder(item.configuration, item.plans), input: CASE, output, saveProbabilities: true, configuration: item.configuration, stepFraction: 0.5 });
      assert.equal(result.cases[0]!.windows.total, item.windows, 'sliding windows (a 2D network\'s: one per slice and in-plane tile)');
      const mask = await readNifti(output);
      const referenceMask = readNpy(path.join(HERE, `zoo/${item.reference ?? item.configuration}_mask.npy`));
      const reference = readNpy(path.join(HERE, `zoo/${item.reference ?? item.configuration}_probabilities.npy`)).data as Float32Array;
      assert.deepEqual([...mask.shape], referenceMask.shape);
      const voxels = referenceMask.data.length;
      const ours: Float32Array[] = [];
      for (const file of result.cases[0]!.probabilities) ours.push((await readNifti(file)).data as Float32Array);
      let worst = 0;
      let differing = 0;
      let tiesAllowed = 0;
      for (let i = 0; i < voxels; i++) {
        const column = ours.map((p, k) => ({ k, ref: reference[k * voxels + i]! }));
        for (const [k, p] of ours.entries()) worst = Math.max(worst, Math.abs(p[i]! - reference[k * voxels + i]!));
        if (mask.data[i] !== referenceMask.data[i]) {
          differing++;
          // A tie: the reference's top two probabilities closer than the agreement bound below.
          const sorted = column.map((c) => c.ref).sort((a, b) => b - a);
          if (sorted[0]! - sorted[1]! < 2e-4) tiesAllowed++;
        }
      }
      t.diagnostic(`max |probability - nnU-Net| = ${worst.toExponential(2)}; ${differing} of ${voxels} labels differ (${tiesAllowed} at ties)`);
      // Probabilities lie in [0, 1]. Both sides blend fp32 windows (the fixture switched nnU-Net's fp16 accumulators to
      // fp32), so they differ by the fp32 rounding of a few network ops, our and scipy's cubic/linear resampling
      // (float64 in both) and oneDNN's conv kernels against PyTorch's Conv2d: ~1e-6 measured, under 1e-4 on any CPU.
      assert.ok(worst < 1e-4, `probabilities differ by ${worst}`);
      assert.equal(differing, tiesAllowed, 'labels differ only where nnU-Net\'s top two probabilities tie within 2e-4');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a cascade without its 3d_lowres folder beside it is refused by name before any case is read', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nnunet-cascade-'));
  try {
    const copy = path.join(dir, 'Dataset902_Zoo', 'nnUNetTrainer__nnUNetPlans__3d_cascade_fullres');
    fs.cpSync(folder('3d_cascade_fullres'), copy, { recursive: true });
    const output = path.join(dir, 'out.nii.gz');
    await assert.rejects(predictFiles({ model: copy, input: CASE, output, configuration: '3d_cascade_fullres' }), (error: unknown) =>
      error instanceof InputError && error.code === 'missing-model' && /needs its previous stage '3d_lowres'.*nnUNetTrainer__nnUNetPlans__3d_lowres, which is missing/.test(error.message));
    assert.equal(fs.existsSync(output), false);
    // The configuration must be the one the checkpoint was trained as.
    await assert.rejects(predictFiles({ model: folder('2d'), input: CASE, output, configuration: '3d_fullres' }), /trained as configuration '2d', not '3d_fullres'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--configuration picks the model folder of an nnU-Net results dataset folder, as nnUNetv2_predict -d -c does', () => {
  assert.deepEqual(resolveCheckpoints(ZOO, undefined, { configuration: '3d_lowres' }), [path.join(folder('3d_lowres'), 'fold_0/checkpoint_final.pth')]);
  assert.deepEqual(resolveCheckpoints(ZOO, undefined, { configuration: '3d_cascade_fullres' }), [path.join(folder('3d_cascade_fullres'), 'fold_0/checkpoint_final.pth')]);
  assert.throws(() => resolveCheckpoints(ZOO, undefined, { configuration: '3d_fullres' }), (error: unknown) =>
    error instanceof InputError && /no model of configuration '3d_fullres' \(it holds nnUNetTrainer__nnUNetPlans__2d, nnUNetTrainer__nnUNetPlans__3d_cascade_fullres, nnUNetTrainer__nnUNetPlans__3d_lowres, nnUNetTrainer__nnUNetResEncUNetMPlans__2d\)/.test(error.message));
  assert.throws(() => resolveCheckpoints(ZOO, undefined, { configuration: '2d' }), /has 2 models of configuration '2d' \(nnUNetTrainer__nnUNetPlans__2d, nnUNetTrainer__nnUNetResEncUNetMPlans__2d\): give one of them as -m/);
  const tiny = path.join(HERE, 'models/Dataset901_Tiny');
  assert.throws(() => resolveCheckpoints(tiny, undefined, { configuration: '3d_fullres' }), /has 2 models of configuration '3d_fullres' \(nnUNetTrainer__nnUNetPlans__3d_fullres, nnUNetTrainer__nnUNetResEncUNetMPlans__3d_fullres\): give one of them as -m/);
});

test('the header checks count a 2d case\'s windows per slice and a cascade\'s one-hot channels (before any voxel is read)', async () => {
  const header = await readNiftiHeader(CASE);
  const plan = (configuration: string) => readInferenceCheckpoint(path.join(folder(configuration), 'fold_0/checkpoint_final.pth')).plan;
  const options = { numClasses: 3, stepFraction: 0.5, probabilities: false };
  // Uncropped [6, 40, 36] (headers only): 2d in-plane 32 x 29 -> 6 x 3 x 3 windows.
  assert.equal(caseExtent('case', [header], plan('2d'), options).windows, 54);
  const cascade = plan('3d_cascade_fullres');
  const withMask = caseExtent('case', [header], cascade, options);
  const alone = structuredClone(cascade);
  delete alone.configuration.previousStage;
  const without = caseExtent('case', [header], alone, options);
  // Two float32 one-hot channels over the resampled [6, 36, 32] grid.
  assert.equal(withMask.bytes - without.bytes, 2 * 6 * 36 * 32 * 4);
});
