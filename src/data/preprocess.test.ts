/** preprocessCase end to end against the scipy/numpy pipeline of make_data_fixtures.py. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GRID_MISMATCH, identityAffine, InputError, type Shape3, type Volume } from '../core/index.js';
import { preprocessCase, sampleClassLocations, transposeArray } from './preprocess.js';
import { validatePlan, type Plan } from './planning_schema.js';
import { DATA_RESAMPLING, SEGMENTATION_RESAMPLING } from './resample.js';
import { unetConfigFromPlan } from './planning_unet.js';

const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/data/data_fixtures.json', import.meta.url), 'utf8'));

function testPlan(targetSpacing: Shape3, ct: Plan['configuration']['normalization'][number]['ct']): Plan {
  return {
    version: 1,
    preset: 'tiny',
    datasets: [{ name: 'Dataset900_Test', labels: { background: 0, lesion: 1, core: 2 }, channelNames: { '0': 'CT' }, numTraining: 1, fileEnding: '.nii.gz' }],
    fingerprint: {
      numCases: 1,
      medianSpacing: [3.5, 0.9, 0.9],
      medianShapeAfterCrop: [9, 13, 12],
      medianRelativeSizeAfterCropping: 0.7,
      foregroundIntensityPropertiesPerChannel: [{ mean: 12.5, median: 0, std: 180, min: -900, max: 900, percentile_00_5: -350, percentile_99_5: 420 }],
      intensitySampling: { samplesPerCase: 10, seed: 1234, generator: 'test' },
      cases: [],
    },
    configuration: {
      patchSize: [16, 32, 32],
      batchSize: 2,
      targetSpacing,
      medianShape: [16, 11, 10],
      transpose: { forward: [0, 1, 2], backward: [0, 1, 2] },
      normalization: [{ channel: 'CT', scheme: 'ct', useMaskForNorm: false, ...(ct ? { ct } : {}) }],
      resampling: { data: { ...DATA_RESAMPLING }, segmentation: { ...SEGMENTATION_RESAMPLING } },
      network: {
        architecture: 'PlainConvUNet',
        nStages: 3,
        featuresPerStage: [4, 8, 16],
        kernelSizes: [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
        strides: [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        nConvPerStage: 2,
        nConvPerStageDecoder: 2,
        convBias: true,
        norm: { kind: 'instance', eps: 1e-5, affine: true },
        nonlin: { kind: 'leaky_relu', negativeSlope: 0.01 },
      },
      deepSupervision: true,
      batchDice: false,
      vramEstimate: 1,
    },
  };
}

function volume<T extends Float32Array | Int8Array>(data: T, shape: Shape3, spacing: Shape3, file: string): Volume<T> & { file: string } {
  return { data, shape, spacing, affine: identityAffine([spacing[2], spacing[1], spacing[0]]), file };
}

test('preprocessCase: crop, CT normalisation, separate-z resampling and labels as nnU-Net', () => {
  const c = fixtures.case;
  const plan = testPlan(c.target, c.ct);
  assert.deepEqual(validatePlan(plan), []);
  const image = volume(Float32Array.from(c.image as number[]), c.shape, c.spacing, 'case_0000.nii.gz');
  const label = volume(Int8Array.from(c.label as number[]), c.shape, c.spacing, 'case.nii.gz');
  const result = preprocessCase([image], label, plan, { caseId: 'case', foregroundLabels: [1, 2] });
  assert.deepEqual(result.shape, [1, ...c.outShape]);
  assert.deepEqual(result.properties.bboxUsedForCropping, c.bbox);
  assert.deepEqual(result.properties.shapeAfterCroppingBeforeResampling, c.croppedShape);
  let worst = 0;
  for (let i = 0; i < c.data.length; i++) worst = Math.max(worst, Math.abs(result.data[i]! - c.data[i]));
  assert.ok(worst <= 1e-4, `max difference ${worst}`);
  assert.deepEqual(Array.from(result.seg!), c.seg);
  // Class locations: all voxels of small labels (1 % rule never exceeds 10000 here), each inside its label.
  for (const [value, locations] of Object.entries(result.properties.classLocations)) {
    const count = (c.seg as number[]).filter((v) => v === Number(value)).length;
    assert.equal(locations.length, count);
    for (const [z, y, x] of locations) assert.equal(result.seg![(z * c.outShape[1] + y) * c.outShape[2] + x], Number(value));
  }
  const unet = unetConfigFromPlan(plan);
  assert.equal(unet.numClasses, 3);
  assert.equal(unet.inputChannels, 1);
});

test('preprocessCase without a label returns seg null; bad inputs name the file', () => {
  const c = fixtures.case;
  const plan = testPlan(c.target, c.ct);
  const image = volume(Float32Array.from(c.image as number[]), c.shape, c.spacing, 'img_0000.nii.gz');
  const result = preprocessCase([image], null, plan);
  assert.equal(result.seg, null);
  const badLabel = volume(new Int8Array(10), [1, 2, 5], c.spacing, 'bad_label.nii.gz');
  assert.throws(() => preprocessCase([image], badLabel, plan), (e: unknown) => e instanceof InputError && e.code === GRID_MISMATCH && /bad_label\.nii\.gz: the label does not lie on the grid of channel 0 \(img_0000\.nii\.gz\): shape \[1, 2, 5\]/.test(e.message));
  assert.throws(() => preprocessCase([image, image], null, plan), (e: unknown) => e instanceof InputError && /img_0000\.nii\.gz: the case has 2 channel/.test(e.message));
});

test('class locations: max(min(10000, n), ceil(0.01 n)) distinct voxels per label', () => {
  const shape: Shape3 = [30, 40, 50];
  const seg = new Int8Array(60000);
  seg.fill(1, 0, 20000);
  seg.fill(2, 20000, 20050);
  const locations = sampleClassLocations(seg, shape, [1, 2, 3]);
  assert.equal(locations['1']!.length, 10000);
  assert.equal(locations['2']!.length, 50);
  assert.equal(locations['3']!.length, 0);
  assert.equal(new Set(locations['1']!.map((p) => p.join(','))).size, 10000);
  assert.equal(sampleClassLocations(new Int8Array(2_000_000).fill(1), [20, 100, 1000], [1])['1']!.length, 20000);
});

test('transposeArray moves axes', () => {
  const data = Float32Array.from({ length: 6 }, (_, i) => i);
  const result = transposeArray(data, [1, 2, 3], [2, 0, 1], (n) => new Float32Array(n));
  assert.deepEqual(result.shape, [3, 1, 2]);
  assert.deepEqual(Array.from(result.data), [0, 3, 1, 4, 2, 5]);
});

test('preprocessCase applies the plan transpose first (lowest-resolution axis moved to the front)', () => {
  const c = fixtures.case;
  const plan = testPlan(c.target, c.ct);
  plan.configuration.transpose = { forward: [1, 0, 2], backward: [1, 0, 2] };
  // The fixture case stored with its first two axes swapped: [y, z, x].
  const swapped = transposeArray(Float32Array.from(c.image as number[]), c.shape, [1, 0, 2], (n) => new Float32Array(n));
  const swappedLabel = transposeArray(Int8Array.from(c.label as number[]), c.shape, [1, 0, 2], (n) => new Int8Array(n));
  const spacing: Shape3 = [c.spacing[1], c.spacing[0], c.spacing[2]];
  const result = preprocessCase([volume(swapped.data, swapped.shape, spacing, 'i')], volume(swappedLabel.data, swappedLabel.shape, spacing, 'l'), plan);
  assert.deepEqual(result.shape, [1, ...c.outShape]);
  assert.deepEqual(result.properties.shapeBeforeCropping, c.shape);
  assert.deepEqual(result.properties.originalSpacing, spacing);
  let worst = 0;
  for (let i = 0; i < c.data.length; i++) worst = Math.max(worst, Math.abs(result.data[i]! - c.data[i]));
  assert.ok(worst <= 1e-4, `max difference ${worst}`);
  assert.deepEqual(Array.from(result.seg!), c.seg);
});
