/**
 * nnU-Net's cascade augmentations: the morphology against scipy.ndimage
 * (test/fixtures/cascade/make_cascade_morphology.py: skimage 0.19's ball and disk, nnU-Net's 'same'
 * alignment, 26-connected labels), the transform's channel rules on hand-made patches, and the
 * probabilities nnUNetTrainer gives them over many draws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CPU, Rng } from '../../core/index.js';
import type { Triple } from '../planning_topology.js';
import { applyAugmentation, type AugmentationParams } from './augment_pipeline.js';
import { applyCascadeAugmentation, ballRows, binaryOperator, connectedComponents, sampleCascadeAugmentation, type BinaryOperator } from './cascade_transforms.js';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/cascade/morphology.json');

interface MorphologyCase {
  shape: Triple;
  planar: boolean;
  mask: string;
  operations: { operator: BinaryOperator; radius: number; strelVoxels: number; out: string }[];
  components: number[];
  componentCount: number;
}

const fromBits = (bits: string): Uint8Array => Uint8Array.from(bits, (c) => (c === '1' ? 1 : 0));
const toBits = (mask: Uint8Array): string => Array.from(mask, (v) => (v === 1 ? '1' : '0')).join('');

test('binary dilation, erosion, opening and closing with skimage balls agree voxel for voxel with scipy.ndimage', () => {
  const { cases } = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as { cases: MorphologyCase[] };
  let checked = 0;
  for (const c of cases) {
    const mask = fromBits(c.mask);
    for (const op of c.operations) {
      const rows = ballRows(op.radius, c.planar);
      // As many points in the element as in skimage's ball / disk of that radius.
      assert.equal(rows.reduce((sum, r) => sum + r.x1 - r.x0 + 1, 0), op.strelVoxels, `r ${op.radius}`);
      const out = binaryOperator(op.operator, mask, c.shape, rows);
      assert.equal(toBits(out), op.out, `${op.operator} r ${op.radius} on [${c.shape.join(', ')}]`);
      checked++;
    }
  }
  assert.equal(checked, 48);
});

test('26-connected components are numbered as scipy.ndimage.label numbers them', () => {
  const { cases } = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as { cases: MorphologyCase[] };
  for (const c of cases) {
    const { labels, sizes } = connectedComponents(fromBits(c.mask), c.shape);
    assert.equal(sizes.length, c.componentCount);
    assert.deepEqual(Array.from(labels), c.components);
  }
});

test('the cascade transform: a dilated channel clears the voxels it gained in the other channel; a removed component is one below 15 % of the patch', () => {
  const shape: Triple = [1, 1, 20];
  const voxels = 20;
  // One image channel, then the one-hot channels of labels 1 and 2.
  const image = new Float32Array(3 * voxels);
  image.fill(7, 0, voxels);
  const label1 = [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
  const label2 = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0];
  image.set(label1, voxels);
  image.set(label2, 2 * voxels);
  // Dilation of label 1 by disk(1) (in a one-slice patch): offsets -1..1 along x.
  const dilated = applyCascadeAugmentation(image, 3, shape, { labels: 2, binaryOperator: [{ channel: 0, operator: 'dilation', radius: 1 }], removeComponent: null });
  assert.deepEqual(Array.from(dilated.subarray(0, voxels)), Array(voxels).fill(7));
  assert.deepEqual(Array.from(dilated.subarray(voxels, 2 * voxels)), [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0]);
  assert.deepEqual(Array.from(dilated.subarray(2 * voxels)), [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  // Label 1 has components of 2 and 1 voxels (both < 0.15 * 20 = 3): pick 0.7 of 2 takes the second.
  const removed = applyCascadeAugmentation(image, 3, shape, { labels: 2, binaryOperator: null, removeComponent: [{ channel: 0, pick: 0.7 }, { channel: 1, pick: 0 }] });
  assert.deepEqual(Array.from(removed.subarray(voxels, 2 * voxels)), [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // Label 2's only component covers 8 of 20 voxels (>= 15 %): kept.
  assert.deepEqual(Array.from(removed.subarray(2 * voxels)), label2);
  assert.deepEqual(Array.from(image.subarray(voxels, 2 * voxels)), label1, 'the input is not changed');
});

test('sampling uses nnU-Net\'s probabilities: 0.4 and 0.2 per patch, 0.5 per label, radius in [1, 8)', () => {
  const rng = new Rng(5);
  const n = 20000;
  let operator = 0;
  let remove = 0;
  let perLabel = 0;
  let radiusOk = true;
  for (let i = 0; i < n; i++) {
    const p = sampleCascadeAugmentation(rng, 2);
    if (p.binaryOperator !== null) {
      operator++;
      perLabel += p.binaryOperator.length;
      radiusOk &&= p.binaryOperator.every((s) => s.radius >= 1 && s.radius < 8);
    }
    if (p.removeComponent !== null) remove++;
  }
  // Binomial standard errors at n = 20000: 0.0035 (p 0.4) and 0.0028 (p 0.2); 5 sigma bounds.
  assert.ok(Math.abs(operator / n - 0.4) < 0.018, `binary operator rate ${operator / n}`);
  assert.ok(Math.abs(remove / n - 0.2) < 0.014, `component removal rate ${remove / n}`);
  assert.ok(Math.abs(perLabel / operator / 2 - 0.5) < 0.02, `per-label rate ${perLabel / operator / 2}`);
  assert.ok(radiusOk);
});

test('the previous stage\'s map travels as the labels do (rotation, scaling, mirroring) and ends as one-hot channels after the image', () => {
  const shape: Triple = [10, 12, 14];
  const voxels = shape[0] * shape[1] * shape[2];
  const rng = new Rng(9);
  const seg = new Int8Array(voxels);
  const image = new Float32Array(voxels);
  for (let z = 0; z < shape[0]; z++) for (let y = 0; y < shape[1]; y++) for (let x = 0; x < shape[2]; x++) {
    const i = (z * shape[1] + y) * shape[2] + x;
    seg[i] = x < 2 ? -1 : (z - 5) ** 2 + (y - 6) ** 2 + (x - 8) ** 2 < 10 ? 1 : 0;
    image[i] = rng.normal();
  }
  const params: AugmentationParams = {
    spatial: { outputShape: [6, 8, 9], dummy2d: false, rotationRad: [0.3, -0.2, 0.1], scale: 1.2 },
    gaussianNoise: null, gaussianBlur: null, brightness: null, contrast: null, lowResolution: null, invertedGamma: null, gamma: null,
    mirror: { axes: [0, 2] },
    maskChannels: [],
    cascade: { labels: 1, binaryOperator: null, removeComponent: null },
  };
  // The previous stage said exactly what the labels say: after the same transforms its channel is the labels' foreground.
  const out = applyAugmentation({ image, seg, previous: seg.slice(), channels: 1, shape }, params, { device: CPU });
  assert.equal(out.channels, 2);
  assert.equal(out.previous, undefined);
  const outVoxels = 6 * 8 * 9;
  const channel = Array.from(out.image.subarray(outVoxels));
  assert.deepEqual(channel, Array.from(out.seg, (label) => (label === 1 ? 1 : 0)));
  assert.ok(channel.includes(1) && channel.includes(0));
});
