/** Logits back to the input geometry: crop box, transpose, resampling, probabilities. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Shape3 } from '../core/index.js';
import { transposeArray, type CaseProperties } from '../data/index.js';
import { exportPrediction } from './export.js';

function properties(overrides: Partial<CaseProperties>): CaseProperties {
  return {
    caseId: 'case',
    originalSpacing: [2, 1, 1],
    affine: [[1, 0, 0, 5], [0, 1, 0, 6], [0, 0, 2, 7], [0, 0, 0, 1]],
    shapeBeforeCropping: [4, 5, 6],
    bboxUsedForCropping: [[0, 4], [0, 5], [0, 6]],
    shapeAfterCroppingBeforeResampling: [4, 5, 6],
    shapeAfterResampling: [4, 5, 6],
    spacingBeforeResampling: [2, 1, 1],
    targetSpacing: [2, 1, 1],
    transpose: { forward: [0, 1, 2], backward: [0, 1, 2] },
    classLocations: {},
    ...overrides,
  };
}

/** Logits that make `labels` the argmax: 5 for the voxel's class, 0 elsewhere. */
function oneHotLogits(labels: Uint8Array, numClasses: number): Float32Array[] {
  return Array.from({ length: numClasses }, (_, k) => Float32Array.from(labels, (v) => (v === k ? 5 : 0)));
}

test('argmax is pasted into zeros at the crop box, with the original spacing and affine', () => {
  const cropped = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => (i % 3) as number);
  const props = properties({ bboxUsedForCropping: [[1, 3], [1, 4], [2, 5]], shapeAfterCroppingBeforeResampling: [2, 3, 3], shapeAfterResampling: [2, 3, 3] });
  const logits = oneHotLogits(cropped, 3);
  const { segmentation, probabilities } = exportPrediction((k) => logits[k]!, 3, props, { labelValues: [0, 1, 7] });
  assert.equal(probabilities, null);
  assert.deepEqual(segmentation.shape, [4, 5, 6]);
  assert.deepEqual(segmentation.spacing, [2, 1, 1]);
  assert.deepEqual(segmentation.affine, props.affine);
  let index = 0;
  for (let z = 0; z < 4; z++) for (let y = 0; y < 5; y++) for (let x = 0; x < 6; x++) {
    const inside = z >= 1 && z < 3 && y >= 1 && y < 4 && x >= 2 && x < 5;
    const expected = inside ? [0, 1, 7][cropped[((z - 1) * 3 + (y - 1)) * 3 + (x - 2)]!]! : 0;
    assert.equal(segmentation.data[index++], expected, `voxel ${z},${y},${x}`);
  }
});

test('the transpose is undone: a label map survives forward transpose + export unchanged', () => {
  const inputShape: Shape3 = [3, 4, 5];
  const labels = Uint8Array.from({ length: 60 }, (_, i) => (i * 7) % 3);
  const forward: Shape3 = [2, 0, 1];
  const backward: Shape3 = [1, 2, 0];
  const networkOrder = transposeArray(labels, inputShape, forward, (n) => new Uint8Array(n));
  const props = properties({
    originalSpacing: [3, 2, 1],
    shapeBeforeCropping: networkOrder.shape,
    bboxUsedForCropping: [[0, networkOrder.shape[0]], [0, networkOrder.shape[1]], [0, networkOrder.shape[2]]],
    shapeAfterCroppingBeforeResampling: networkOrder.shape,
    shapeAfterResampling: networkOrder.shape,
    transpose: { forward, backward },
  });
  const logits = oneHotLogits(networkOrder.data, 3);
  const { segmentation } = exportPrediction((k) => logits[k]!, 3, props);
  assert.deepEqual(segmentation.shape, inputShape);
  assert.deepEqual(segmentation.spacing, [3, 2, 1]);
  assert.deepEqual([...segmentation.data], [...labels]);
});

test('logits are resampled (linear) to the cropped shape before the argmax; probabilities sum to 1, background 1 outside', () => {
  // Class 1 rises along z on a grid of spacing 2; the original spacing is 1, so 3 slices become 6.
  const props = properties({
    originalSpacing: [1, 1, 1],
    shapeBeforeCropping: [8, 2, 2],
    bboxUsedForCropping: [[1, 7], [0, 2], [0, 2]],
    shapeAfterCroppingBeforeResampling: [6, 2, 2],
    shapeAfterResampling: [3, 2, 2],
    spacingBeforeResampling: [1, 1, 1],
    targetSpacing: [2, 1, 1],
  });
  const background = new Float32Array(12);
  const ramp = Float32Array.from({ length: 12 }, (_, i) => Math.floor(i / 4) - 1); // slices -1, 0, 1
  const { segmentation, probabilities } = exportPrediction((k) => (k === 0 ? background : ramp), 2, props, { probabilities: true });
  // skimage's order-1 resize from 3 to 6 slices samples slice i at z = i / 2 - 0.25, clamped to [0, 2].
  const resampled = [-1, -0.75, -0.25, 0.25, 0.75, 1];
  for (let z = 0; z < 8; z++) {
    const inside = z >= 1 && z < 7;
    const value = inside ? resampled[z - 1]! : null;
    for (let i = 0; i < 4; i++) {
      const at = z * 4 + i;
      assert.equal(segmentation.data[at], value !== null && value > 0 ? 1 : 0, `slice ${z}`);
      const p1 = probabilities![1]!.data[at]!;
      assert.ok(Math.abs(p1 + probabilities![0]!.data[at]! - 1) < 1e-6);
      assert.ok(Math.abs(p1 - (value === null ? 0 : 1 / (1 + Math.exp(-value)))) < 1e-6, `slice ${z}: p1 ${p1}`);
    }
  }
});
