/** crop_to_nonzero (mask with filled holes, bbox, -1 outside marker) against scipy. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Shape3 } from '../core/index.js';
import { boundingBox, cropToNonzero, fillHoles, nonzeroMask } from './crop.js';

const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/data/data_fixtures.json', import.meta.url), 'utf8'));

test('cropToNonzero matches nnU-Net crop_to_nonzero with binary_fill_holes', () => {
  const c = fixtures.crop;
  const shape = c.shape.slice(1) as Shape3;
  const voxels = shape[0] * shape[1] * shape[2];
  const data = Float32Array.from(c.data as number[]);
  const channels = [data.subarray(0, voxels), data.subarray(voxels)];
  assert.deepEqual(Array.from(nonzeroMask(channels, shape)), c.mask);
  const result = cropToNonzero(channels, shape, Int8Array.from(c.seg as number[]));
  assert.deepEqual(result.bbox, c.bbox);
  assert.deepEqual(result.shape, c.croppedShape.slice(1));
  const cropped = new Float32Array(2 * result.channels[0]!.length);
  cropped.set(result.channels[0]!, 0);
  cropped.set(result.channels[1]!, result.channels[0]!.length);
  assert.deepEqual(Array.from(cropped), (c.croppedData as number[]).map(Math.fround));
  assert.deepEqual(Array.from(result.segmentation), c.croppedSeg);
});

test('without a label the segmentation is 0 inside and -1 outside; an empty mask keeps the volume', () => {
  const shape: Shape3 = [3, 3, 3];
  const image = new Float32Array(27);
  image[13] = 5;
  image[14] = 5;
  const result = cropToNonzero([image], shape, null);
  assert.deepEqual(result.bbox, [[1, 2], [1, 2], [1, 3]]);
  assert.deepEqual(Array.from(result.segmentation), [0, 0]);
  assert.deepEqual(boundingBox(new Uint8Array(27), shape), [[0, 3], [0, 3], [0, 3]]);
});

test('fillHoles fills an enclosed cavity but not a tunnel to the border', () => {
  const shape: Shape3 = [5, 5, 5];
  const shell = new Uint8Array(125);
  for (let z = 1; z < 4; z++) for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) shell[z * 25 + y * 5 + x] = 1;
  shell[2 * 25 + 2 * 5 + 2] = 0;
  assert.equal(fillHoles(shell.slice(), shape)[62], 1);
  const tunnel = shell.slice();
  tunnel[2 * 25 + 2 * 5 + 3] = 0;
  tunnel[2 * 25 + 2 * 5 + 4] = 0;
  assert.equal(fillHoles(tunnel, shape)[62], 0);
});
