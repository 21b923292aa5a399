/**
 * The one same-grid test against hand-computed cases: the corner distance of a shifted origin,
 * a scaled spacing and a rotation, each just below and just above GRID_TOLERANCE_VOXELS.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertSameGrid, compareGrids, GRID_MISMATCH, GRID_TOLERANCE_VOXELS, type Grid } from './grid.js';
import { InputError } from './errors.js';
import type { Affine, Shape3 } from './volume.js';

/** A [z, y, x] grid with spacing [sz, sy, sx], rotated by `angle` radians about z, at `origin` (x, y, z) mm. */
function grid(shape: Shape3, spacing: Shape3, origin: [number, number, number] = [-100, -120, 40], angle = 0): Grid {
  const [sz, sy, sx] = spacing;
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const affine: Affine = [
    [c * sx, -s * sy, 0, origin[0]],
    [s * sx, c * sy, 0, origin[1]],
    [0, 0, sz, origin[2]],
    [0, 0, 0, 1],
  ];
  return { shape, spacing, affine };
}

describe('compareGrids', () => {
  const reference = grid([40, 200, 100], [2.5, 0.8, 0.5]);

  it('accepts the same grid and reports no displacement', () => {
    const result = compareGrids(grid([40, 200, 100], [2.5, 0.8, 0.5]), reference);
    assert.deepEqual(result, { same: true, displacementVoxels: 0, displacementMm: 0 });
  });

  it('refuses another shape whatever the affine', () => {
    const result = compareGrids(grid([40, 200, 101], [2.5, 0.8, 0.5]), reference);
    assert.equal(result.same, false);
    assert.equal(result.displacementVoxels, Infinity);
    assert.match(result.difference!, /^shape \[40, 200, 101\] \(z, y, x\) differs from the reference's \[40, 200, 100\]/);
  });

  it('measures an origin shift in voxels of the smallest spacing, accepting it below the tolerance', () => {
    // 0.004 mm along x on 0.5 mm voxels: 0.008 voxel, under 0.01; 0.006 mm is 0.012 voxel, over.
    const below = compareGrids(grid([40, 200, 100], [2.5, 0.8, 0.5], [-100 + 0.004, -120, 40]), reference);
    assert.equal(below.same, true);
    assert.ok(Math.abs(below.displacementVoxels - 0.008) < 1e-9, String(below.displacementVoxels));
    assert.ok(Math.abs(below.displacementMm - 0.004) < 1e-9, String(below.displacementMm));
    const above = compareGrids(grid([40, 200, 100], [2.5, 0.8, 0.5], [-100 + 0.006, -120, 40]), reference);
    assert.equal(above.same, false);
    assert.ok(Math.abs(above.displacementVoxels - 0.012) < 1e-9);
    assert.match(above.difference!, /^origin \[-99\.994, -120, 40\] mm differs from the reference's \[-100, -120, 40\]: voxel centres lie up to 0\.012 voxel apart \(tolerance 0\.01 voxel\)$/);
  });

  it('measures a spacing difference at the far corner (n - 1 voxels away)', () => {
    // z spacing 2.5 -> 2.5 + d over 39 steps moves the last slice by 39 d mm; on 0.5 mm voxels that
    // is 78 d voxels: d = 1e-4 gives 0.0078 (same grid), d = 2e-4 gives 0.0156 (another grid).
    const below = compareGrids(grid([40, 200, 100], [2.5 + 1e-4, 0.8, 0.5]), reference);
    assert.equal(below.same, true);
    assert.ok(Math.abs(below.displacementVoxels - 0.0078) < 1e-9, String(below.displacementVoxels));
    const above = compareGrids(grid([40, 200, 100], [2.5 + 2e-4, 0.8, 0.5]), reference);
    assert.equal(above.same, false);
    assert.ok(Math.abs(above.displacementVoxels - 0.0156) < 1e-9);
    assert.match(above.difference!, /^spacing \[2\.5002, 0\.8, 0\.5\] mm \(z, y, x\) differs/);
  });

  it('measures a rotation at the corner farthest from the origin', () => {
    // Rotating x and y columns by a about z: a corner at (99 * 0.5, 199 * 0.8) mm moves by
    // 2 sin(a / 2) * hypot(49.5, 159.2) mm. For a = 2e-5 rad that is 3.334e-3 mm = 0.00667 voxel.
    const radius = Math.hypot(99 * 0.5, 199 * 0.8);
    const small = compareGrids(grid([40, 200, 100], [2.5, 0.8, 0.5], undefined, 2e-5), reference);
    assert.equal(small.same, true);
    assert.ok(Math.abs(small.displacementVoxels - (2 * Math.sin(1e-5) * radius) / 0.5) < 1e-9);
    const large = compareGrids(grid([40, 200, 100], [2.5, 0.8, 0.5], undefined, 1e-3), reference);
    assert.equal(large.same, false);
    assert.match(large.difference!, /^direction differs from the reference's by up to 0\.0573 degrees: voxel centres lie up to 0\.333 voxel apart/);
  });

  it('counts a non-finite affine as another grid', () => {
    const broken = grid([40, 200, 100], [2.5, 0.8, 0.5]);
    broken.affine[0][3] = NaN;
    const result = compareGrids(broken, reference);
    assert.equal(result.same, false);
    assert.equal(result.displacementVoxels, Infinity);
  });

  it('is symmetric in its two grids', () => {
    const moved = grid([40, 200, 100], [2.5, 0.8, 0.5], [-99.9, -120, 40], 1e-4);
    assert.equal(compareGrids(moved, reference).displacementVoxels, compareGrids(reference, moved).displacementVoxels);
  });
});

describe('assertSameGrid', () => {
  it('throws one InputError naming the file, with the one code', () => {
    const reference = grid([4, 5, 6], [1, 1, 1]);
    assert.doesNotThrow(() => assertSameGrid('b.nii.gz', grid([4, 5, 6], [1, 1, 1], [-100 + GRID_TOLERANCE_VOXELS / 2, -120, 40]), reference, 'channel 1', 'channel 0 (a.nii.gz)'));
    assert.throws(
      () => assertSameGrid('b.nii.gz', grid([4, 5, 6], [1, 1, 1], [-99, -120, 40]), reference, 'channel 1', 'channel 0 (a.nii.gz)'),
      (error: unknown) =>
        error instanceof InputError &&
        error.code === GRID_MISMATCH &&
        error.file === 'b.nii.gz' &&
        !error.message.includes('\n') &&
        /^b\.nii\.gz: channel 1 does not lie on the grid of channel 0 \(a\.nii\.gz\): origin/.test(error.message),
    );
  });
});
