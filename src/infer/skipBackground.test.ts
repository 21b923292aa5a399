/**
 * Skipping windows outside the body (issue 14) on a phantom with air around it: a box-shaped torso
 * (40 HU) with a lesion (100 HU) in air (-1000 HU), 16 x 80 x 96 voxels, patch 8 x 16 x 16, step
 * 0.5. Of its 3 x 9 x 11 = 297 windows, 3 x 5 x 6 = 90 come within 4 voxels of the torso
 * (y 30..50, x 36..60); the other 207 are not run. Inside the torso grown by the margin the
 * logits are bit-identical to the full sliding window, and the mask is identical everywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Volume } from '../core/index.js';
import { copyInPlace, fromArray, noGrad, scope, type Tensor } from '../tensor/index.js';
import { BODY_MARGIN_VOXELS, largestComponentAbove, normalizedCtThreshold } from './bodyMask.js';
import { predictFiles } from './predictFiles.js';
import { Predictor } from './predictor.js';
import { BACKGROUND_LOGIT, slidingWindowPredict, type WindowCounts } from './slidingWindowPredict.js';
import { FIXTURES, PointwiseNetwork, TINY_CONFIG, TINY_PATCH, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from './test-support.js';
import type { Triple } from './slidingWindow.js';

const NNUNET_FOLD0 = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
  '../../test/fixtures/nnunet/models/Dataset901_Tiny/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0/checkpoint_final.pth');

const SHAPE: Triple = [16, 80, 96];
const TORSO = { y: [30, 50], x: [36, 60] } as const;
const CT = { mean: 0, std: 100, percentile_00_5: -1000, percentile_99_5: 500 };

/** The phantom in HU, [z, y, x]. */
function phantomHu(): Float32Array {
  const [nz, ny, nx] = SHAPE;
  const data = new Float32Array(nz * ny * nx).fill(-1000);
  for (let z = 0; z < nz; z++) for (let y = TORSO.y[0]; y <= TORSO.y[1]; y++) for (let x = TORSO.x[0]; x <= TORSO.x[1]; x++) {
    const lesion = (z - 8) ** 2 + (y - 40) ** 2 + (x - 45) ** 2 <= 9;
    data[(z * ny + y) * nx + x] = lesion ? 100 : 40;
  }
  return data;
}

const normalized = (hu: Float32Array): Float32Array => hu.map((v) => (Math.min(CT.percentile_99_5, Math.max(CT.percentile_00_5, v)) - CT.mean) / CT.std);

function inTorsoGrownBy(margin: number, z: number, y: number, x: number): boolean {
  void z;
  return y >= TORSO.y[0] - margin && y <= TORSO.y[1] + margin && x >= TORSO.x[0] - margin && x <= TORSO.x[1] + margin;
}

test('the body mask of the phantom is the torso (16 x 21 x 25 voxels)', () => {
  const data = normalized(phantomHu());
  const mask = largestComponentAbove(data, SHAPE, normalizedCtThreshold(CT)!);
  assert.equal(mask.reduce((s, v) => s + v, 0), 16 * 21 * 25);
});

test('skipping windows outside the body leaves the logits inside it bit-identical (tiny U-Net, one window per batch)', () => {
  const network = fixtureUNet();
  const hu = phantomHu();
  const data = normalized(hu);
  const mask = largestComponentAbove(data, SHAPE, normalizedCtThreshold(CT)!);
  const forward = (x: Tensor): Tensor => network.forward(x)[0]!;
  // Every window through the network (no uniform windows shared), to count them.
  const options = { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: [] as const, windowsPerBatch: 1, shareUniformWindows: false };
  const counts: WindowCounts[] = [];
  let calls = 0;
  const counted = (x: Tensor): Tensor => {
    calls += x.shape[0]!;
    return forward(x);
  };
  const [full, skipped] = scope(() => {
    const input = fromArray(data, [1, ...SHAPE]);
    const a = slidingWindowPredict([counted], input, { ...options, onWindows: (c) => counts.push(c) });
    const callsFull = calls;
    const b = slidingWindowPredict([counted], input, { ...options, bodyMask: { mask }, onWindows: (c) => counts.push(c) });
    assert.equal(callsFull, 297);
    assert.equal(calls - callsFull, 90);
    return [a.toFloat32Array(), b.toFloat32Array()];
  });
  assert.deepEqual(counts, [{ total: 297, run: 297, passes: 297, mirrored: 0, batch: 1 }, { total: 297, run: 90, passes: 90, mirrored: 0, batch: 1 }]);
  const [nz, ny, nx] = SHAPE;
  const voxels = nz * ny * nx;
  let compared = 0;
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    if (!inTorsoGrownBy(BODY_MARGIN_VOXELS, z, y, x)) continue;
    const i = (z * ny + y) * nx + x;
    for (let k = 0; k < 3; k++) assert.equal(skipped[k * voxels + i], full[k * voxels + i], `class ${k} at [${z}, ${y}, ${x}]`);
    compared++;
  }
  assert.equal(compared, 16 * 29 * 33);
  // A corner no run window reaches gets background: class 0 the large logit, the others 0.
  assert.deepEqual([skipped[0], skipped[voxels], skipped[2 * voxels]], [BACKGROUND_LOGIT, 0, 0]);
  assert.ok(skipped.every(Number.isFinite));
  network.dispose();
});

/** A pointwise "network" that calls > 70 HU lesion: class 0 logit 0.7 - x, class 1 x - 0.7, class 2 -10 (x CT-normalised). */
function thresholdNetwork(): PointwiseNetwork {
  const network = new PointwiseNetwork(TINY_CONFIG);
  noGrad(() => scope(() => {
    copyInPlace(network.head.weight.value, fromArray(Float32Array.from([-1, 1, 0]), [3, 1, 1, 1, 1]));
    copyInPlace(network.head.bias!.value, fromArray(Float32Array.from([0.7, -0.7, -10]), [3]));
  }));
  return network;
}

test('a Predictor gives the identical mask with and without skipping, running 90 instead of 297 windows', () => {
  const plan = tinyInferencePlan();
  plan.configuration.normalization = [{ channel: 'CT', scheme: 'ct', useMaskForNorm: false, ct: { ...CT } }];
  const image: Volume<Float32Array> = { data: phantomHu(), shape: SHAPE, spacing: [2, 1, 1], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]] };
  const network = thresholdNetwork();
  const skipping = new Predictor([network], plan, { mirrorAxes: [], skipBackground: true });
  const running = new Predictor([network], plan, { mirrorAxes: [], skipBackground: false });
  const a = skipping.predictCase([image]);
  const b = running.predictCase([image]);
  assert.deepEqual(a.properties.shapeAfterResampling, SHAPE);
  // 15 of the windows run hold only air (one value after the CT normalisation): one pass of 2 such windows serves them.
  assert.deepEqual(a.windows, { total: 297, run: 90, passes: 90 - 15 + 2, mirrored: 0, batch: 2, uniform: 15 });
  // Without skipping, the 222 windows of only air share one pass too: the network runs 75 windows either way.
  assert.deepEqual(b.windows, { total: 297, run: 297, passes: 297 - 222 + 2, mirrored: 0, batch: 2, uniform: 222 });
  assert.deepEqual(a.segmentation.data, b.segmentation.data);
  const lesion = a.segmentation.data.reduce((s, v) => s + (v === 1 ? 1 : 0), 0);
  assert.ok(lesion > 20, `${lesion} lesion voxels`);
  // The stages are timed and the RSS high-water marks never go down.
  const peaks = [a.peakRssMiB.preprocess, a.peakRssMiB.bodyMask, a.peakRssMiB.slidingWindow, a.peakRssMiB.export];
  assert.ok(peaks.every((p, i) => p > 0 && (i === 0 || p >= peaks[i - 1]!)));
  assert.ok(a.seconds.resampleBack + a.seconds.argmax <= a.seconds.export + 1e-6);
  network.dispose();
});


test('predictFiles --verbose logs every stage of a case, and the record carries seconds, RSS peaks and windows', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-verbose-'));
  const model = fixtureUNet();
  writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  fs.mkdirSync(path.join(dir, 'in'));
  fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), path.join(dir, 'in', 'p1_0000.nii.gz'));
  const lines: string[] = [];
  const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
  const result = await predictFiles({ model: path.join(dir, 'run'), input: path.join(dir, 'in'), output: path.join(dir, 'out'), mirrorAxes: [], verbose: true }, logger);
  const record = result.cases[0]!;
  for (const stage of ['read', 'preprocess', 'body mask', 'sliding window', 'export', 'resample back', 'argmax', 'write']) {
    assert.ok(lines.some((l) => l.trimStart().startsWith(stage)), `no '${stage}' line in:\n${lines.join('\n')}`);
  }
  // The tiny plan clips CT at [-10, 90] HU, so -500 HU cannot be told apart: no window is skipped.
  assert.equal(record.windows.run, record.windows.total);
  assert.ok(lines.some((l) => new RegExp(`${record.windows.run} of ${record.windows.total} windows run .*windows/s`).test(l)));
  assert.ok(Object.values(record.peakRssMiB).every((p) => p > 0));
  assert.ok(record.seconds.slidingWindow > 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the skip default follows the model: on for lesionseg checkpoints, off for nnU-Net model folders (as nnU-Net runs every window)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-skip-default-'));
  const model = fixtureUNet();
  const ours = writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  const cases = [
    { file: ours, options: {}, skips: true },
    { file: ours, options: { skipBackground: false }, skips: false },
    { file: NNUNET_FOLD0, options: {}, skips: false },
    { file: NNUNET_FOLD0, options: { skipBackground: true }, skips: true },
  ];
  for (const { file, options, skips } of cases) {
    const predictor = Predictor.fromCheckpoints([file], { mirrorAxes: [], ...options });
    assert.equal(predictor.skipsBackground, skips, `${path.basename(file)} with ${JSON.stringify(options)}`);
    predictor.dispose();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
