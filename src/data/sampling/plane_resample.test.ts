/**
 * The host label resampling of the dummy-2D spatial transform against libtorch's gridSample
 * (bilinear, zeros padding, alignCorners false), value for value: the corner weights' float32
 * running sums equal gridSample of 0/1 channels exactly, and the voted labels equal the one-hot
 * channels resampled by gridSample and argmax'd (winningLabels), ties included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../core/index.js';
import { fromArray, gridSample, scope } from '../../tensor/index.js';
import { planeLabels, planeWeights } from './plane_resample.js';
import { distinctLabels, oneHotChannels, winningLabels } from './spatial_transform.js';

const OPTIONS = { mode: 'bilinear', paddingMode: 'zeros', alignCorners: false } as const;

function torchSample(input: Float32Array, channels: number, height: number, width: number, grid: Float32Array): Float32Array {
  return scope(() => gridSample(fromArray(input, [1, channels, height, width]), fromArray(grid, [1, 1, grid.length / 2, 2]), OPTIONS).toFloat32Array());
}

/** A rotated and scaled in-plane grid [points, 2] (x, y) over an input [height, width], as the spatial transform builds it. */
function rotatedGrid(outH: number, outW: number, height: number, width: number, angle: number, scale: number): Float32Array {
  const grid = new Float32Array(2 * outH * outW);
  const [c, s] = [Math.cos(angle) * scale, Math.sin(angle) * scale];
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const [cy, cx] = [y + (1 - outH) / 2, x + (1 - outW) / 2];
      grid[2 * (y * outW + x)] = Math.fround((s * cy + c * cx) / (width / 2));
      grid[2 * (y * outW + x) + 1] = Math.fround((c * cy - s * cx) / (height / 2));
    }
  }
  return grid;
}

/** Outside iff a coordinate is beyond 1 - 1/size (the spatial transform's rule). */
function outsideOf(grid: Float32Array, height: number, width: number): Uint8Array {
  return Uint8Array.from({ length: grid.length / 2 }, (_, i) =>
    Math.abs(grid[2 * i]!) > Math.fround(1 - 1 / width) || Math.abs(grid[2 * i + 1]!) > Math.fround(1 - 1 / height) ? 1 : 0);
}

test('planeWeights: the corners\' float32 running sums equal gridSample of 0/1 channels bit for bit', () => {
  const rng = new Rng(5);
  let compared = 0;
  const mismatches: string[] = [];
  for (let trial = 0; trial < 6; trial++) {
    const [height, width, points] = [17 + rng.int(0, 90), 17 + rng.int(0, 90), 2000];
    // Positions beyond the input too (|g| up to 1.1): corners outside read 0.
    const grid = Float32Array.from({ length: 2 * points }, () => rng.uniform(-1.1, 1.1));
    const input = Float32Array.from({ length: 3 * height * width }, () => (rng.float() < 0.5 ? 1 : 0));
    const expected = torchSample(input, 3, height, width, grid);
    const table = planeWeights(grid, height, width);
    const corners = [0, 1, width, width + 1];
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < points; i++) {
        let sum = 0;
        for (let k = 0; k < 4; k++) {
          if ((table.inside[i]! >> k) & 1 && input[c * height * width + table.offset[i]! + corners[k]!] === 1) sum = Math.fround(sum + table.weights[4 * i + k]!);
        }
        if (sum !== expected[c * points + i]) mismatches.push(`trial ${trial} channel ${c} point ${i}: ${sum} vs ${expected[c * points + i]}`);
        compared += 1;
      }
    }
  }
  assert.equal(compared, 36000);
  assert.deepEqual(mismatches.slice(0, 5), [], `${mismatches.length} mismatches`);
});

/** Blocky labels -1..2 over `planes` planes, with isolated voxels: boundaries everywhere. */
function blockyLabels(rng: Rng, planes: number, height: number, width: number): Int8Array {
  const seg = new Int8Array(planes * height * width);
  for (let p = 0; p < planes; p++) {
    const [by, bx] = [2 + rng.int(0, 5), 2 + rng.int(0, 5)];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) seg[(p * height + y) * width + x] = rng.float() < 0.05 ? rng.int(-1, 3) : ((Math.floor(y / by) + Math.floor(x / bx) + p) % 4) - 1;
    }
  }
  return seg;
}

/** The reference: one-hot channels per label through gridSample, argmax (lowest label on ties), -1 outside. */
function referenceLabels(seg: Int8Array, planes: number, height: number, width: number, grid: Float32Array, outside: Uint8Array): Int8Array {
  const labels = distinctLabels(seg);
  const resampled = torchSample(oneHotChannels(seg, labels), labels.length * planes, height, width, grid);
  return winningLabels(resampled, labels, outside, planes);
}

test('planeLabels equals the one-hot channels through gridSample and argmax, every plane, ties included', () => {
  const rng = new Rng(11);
  const [planes, height, width] = [3, 40, 36];
  const cases = [
    { name: 'rotation + zoom out', grid: rotatedGrid(30, 34, height, width, 0.7, 1.3) },
    { name: 'rotation + zoom in', grid: rotatedGrid(30, 34, height, width, -2.1, 0.75) },
    { name: 'small rotation', grid: rotatedGrid(30, 34, height, width, 0.05, 1) },
  ];
  for (const { name, grid } of cases) {
    const seg = blockyLabels(rng, planes, height, width);
    const outside = outsideOf(grid, height, width);
    if (name === 'rotation + zoom out') assert.ok(outside.includes(1), 'some positions outside');
    const actual = planeLabels(seg, planes, planeWeights(grid, height, width), outside);
    assert.deepEqual(actual, referenceLabels(seg, planes, height, width, grid, outside), name);
  }
  // Half-voxel positions on a 16 x 16 input: x = k + 0.5 exactly, two corners weigh 0.5 each (four weigh 0.25).
  const [tieH, tieW] = [16, 16];
  const tieGrid = new Float32Array(2 * 15 * 15);
  for (let y = 0; y < 15; y++) {
    for (let x = 0; x < 15; x++) {
      tieGrid[2 * (y * 15 + x)] = (2 * x + 2) / tieW - 1;
      tieGrid[2 * (y * 15 + x) + 1] = (2 * y + 2) / tieH - 1 + (y % 2 === 0 ? 0 : 1 / tieH);
    }
  }
  const seg = blockyLabels(rng, 2, tieH, tieW);
  const outside = outsideOf(tieGrid, tieH, tieW);
  const table = planeWeights(tieGrid, tieH, tieW);
  assert.ok(table.weights.includes(0.25) && table.weights.includes(0.5), 'tie weights present');
  assert.deepEqual(planeLabels(seg, 2, table, outside), referenceLabels(seg, 2, tieH, tieW, tieGrid, outside), 'ties');
});
