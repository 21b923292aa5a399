/**
 * The Predictor end to end: a phantom NIfTI (oblique affine, written by nibabel) in, a mask out
 * with exactly the input's geometry; the whole pipeline equals one forward pass where the case
 * fits one window; a transposed plan changes nothing for a pointwise network; bad channel counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, type Volume } from '../core/index.js';
import { readNifti, writeNifti } from '../io/index.js';
import { argmax, fromArray, manualSeed, noGrad, scope } from '../tensor/index.js';
import { Predictor } from './predictor.js';
import { FIXTURES, PointwiseNetwork, TINY_CONFIG, TINY_PATCH, fixtureUNet, tinyInferencePlan } from './test-support.js';

interface PhantomFixture { shape_xyz: number[]; affine: number[][]; sform_code: number; qform_code: number }
const phantom = (JSON.parse(fs.readFileSync(path.join(FIXTURES, 'infer_fixtures.json'), 'utf8')) as { phantom: PhantomFixture }).phantom;

test('a predicted phantom mask, written and read back, has exactly the input affine and shape (as nibabel reads the input)', async () => {
  const image = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  const predictor = new Predictor([fixtureUNet()], tinyInferencePlan(), { mirrorAxes: [0, 1, 2], windowsPerBatch: 3 });
  const result = predictor.predictCase([image], { caseId: 'phantom', probabilities: true });
  assert.deepEqual(result.segmentation.shape, [...phantom.shape_xyz].reverse());
  assert.deepEqual(result.segmentation.affine, image.affine);
  assert.deepEqual(result.segmentation.spacing, image.spacing);
  // The plan resamples (target spacing [2, 1, 1] vs the phantom's [2.5, 0.9, 0.8]) and crops to the body.
  assert.notDeepEqual(result.properties.shapeAfterResampling, result.properties.shapeAfterCroppingBeforeResampling);
  assert.ok(result.segmentation.data.every((v) => v <= 2));
  assert.equal(result.probabilities!.length, 3);
  for (let i = 0; i < image.data.length; i += 97) {
    const sum = result.probabilities!.reduce((s, p) => s + p.data[i]!, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5);
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-'));
  const file = path.join(dir, 'phantom.nii.gz');
  await writeNifti(file, result.segmentation, { header: image.header });
  const back = await readNifti(file);
  assert.deepEqual(back.shape, image.shape);
  assert.equal(back.datatype, 'uint8');
  assert.deepEqual([...back.data], [...result.segmentation.data]);
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) {
    assert.ok(Math.abs(back.affine[r]![c]! - phantom.affine[r]![c]!) < 1e-5, `affine[${r}][${c}] ${back.affine[r]![c]} vs nibabel ${phantom.affine[r]![c]}`);
  }
  assert.equal(back.header.sformCode, phantom.sform_code);
  assert.equal(back.header.qformCode, phantom.qform_code);
  fs.rmSync(dir, { recursive: true, force: true });
  predictor.dispose();
});

/** CT normalisation of the tiny plan: clip to [-10, 90], then (x - 40) / 20. */
function ctNormalized(data: Float32Array): Float32Array {
  return data.map((v) => (Math.min(90, Math.max(-10, v)) - 40) / 20);
}

test('where the case fits one window, the prediction equals the argmax of one whole-volume forward pass', () => {
  manualSeed(11);
  const voxels = TINY_PATCH[0] * TINY_PATCH[1] * TINY_PATCH[2];
  // No zero voxels (so no crop) and the plan's spacing (so no resampling).
  const data = Float32Array.from({ length: voxels }, (_, i) => 1 + ((i * 7919) % 97));
  const image: Volume<Float32Array> = { data, shape: TINY_PATCH, spacing: [2, 1, 1], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]] };
  const network = fixtureUNet();
  const predictor = new Predictor([network], tinyInferencePlan(), { mirrorAxes: [] });
  const result = predictor.predictCase([image]);
  const expected = scope(() => noGrad(() => argmax(network.forward(fromArray(ctNormalized(data), [1, 1, ...TINY_PATCH]))[0]!, 1)).toTypedArray());
  assert.deepEqual([...result.segmentation.data], Array.from(expected as BigInt64Array, Number));
  predictor.dispose();
});

test('a transposed plan gives the same mask as the identity plan for a pointwise network, in the input geometry', async () => {
  const image = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  manualSeed(2);
  const network = new PointwiseNetwork(TINY_CONFIG);
  const identity = new Predictor([network], tinyInferencePlan({ targetSpacing: [2.5, 0.9, 0.8] }), { mirrorAxes: [] });
  const transposed = new Predictor([network], tinyInferencePlan({ targetSpacing: [0.8, 2.5, 0.9], transpose: { forward: [2, 0, 1], backward: [1, 2, 0] } }), { mirrorAxes: [] });
  const a = identity.predictCase([image]);
  const b = transposed.predictCase([image]);
  assert.deepEqual(b.properties.shapeBeforeCropping, [21, 11, 18]);
  assert.deepEqual(b.segmentation.shape, image.shape);
  assert.deepEqual([...b.segmentation.data], [...a.segmentation.data]);
  assert.ok(new Set(a.segmentation.data).size > 1);
  network.dispose();
});

test('a case with another number of channels than the plan is an InputError naming the case', async () => {
  const image = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  const predictor = new Predictor([fixtureUNet()], tinyInferencePlan(), { mirrorAxes: [] });
  assert.throws(
    () => predictor.predictCase([image, image], { caseId: 'lung_007' }),
    (error: unknown) => error instanceof InputError && /case 'lung_007' has 2 channel image\(s\), the model's plan expects 1 \(CT\)/.test(error.message),
  );
  predictor.dispose();
});

test('fp16 on the CPU is refused up front with a hint (libtorch autocasts only to bf16 there)', () => {
  const network = fixtureUNet();
  assert.throws(() => new Predictor([network], tinyInferencePlan(), { precision: 'fp16' }), (e: unknown) => e instanceof InputError && /use --precision bf16 or fp32/.test(e.message));
  network.dispose();
});
