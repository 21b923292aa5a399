import { test } from 'node:test';
import assert from 'node:assert/strict';
import { surfelAreaTable } from './surfelTable.js';
import { SURFEL_NORMALS_IN_EIGHTHS } from './surfelNormals.js';

test('surfel areas: empty and full neighbourhoods have none; a lone corner is 1/8 of the voxel-corner triangle', () => {
  const table = surfelAreaTable([3, 2, 1]);
  assert.equal(table.length, 256);
  assert.equal(table[0], 0);
  assert.equal(table[255], 0);
  // code 1: one normal (1/8, 1/8, 1/8) scaled to (sy*sx, sz*sx, sz*sy)/8 = (2, 3, 6)/8: length 7/8.
  assert.equal(table[1], 7 / 8);
  // A code and its complement describe the same surface.
  for (let code = 0; code < 256; code++) assert.ok(Math.abs(table[code]! - table[255 - code]!) < 1e-12, `code ${code}`);
});

test('a half-filled neighbourhood (a flat face across x) has the area of one voxel face', () => {
  // Voxels with x offset 1 (bits 64, 16, 4, 1) are inside: a face perpendicular to x of area sz*sy.
  const table = surfelAreaTable([1.5, 0.8, 0.6]);
  assert.ok(Math.abs(table[64 + 16 + 4 + 1]! - 1.5 * 0.8) < 1e-12);
});

test('the derived triangle table: 256 rows of whole area vectors, pointing out of the foreground', () => {
  assert.equal(SURFEL_NORMALS_IN_EIGHTHS.length, 256);
  for (const row of SURFEL_NORMALS_IN_EIGHTHS) assert.equal(row.length % 3, 0);
  // Code 1 (only voxel (z, y, x) inside): one triangle through three edge midpoints, facing away from it.
  assert.deepEqual(SURFEL_NORMALS_IN_EIGHTHS[1], [-1, -1, -1]);
  // Its complement (every voxel but that one) has the same triangle facing the other way.
  assert.deepEqual(SURFEL_NORMALS_IN_EIGHTHS[254], [1, 1, 1]);
});
