/**
 * The grid a NIfTI header describes, exactly as readNifti gives it (shape [z, y, x] by the reader's
 * one rule for 2D files, the affine geometryFromHeader chooses and the spacing of its rule), for the
 * checks that run on headers before any voxel is read (predict's channels, view's and predict's
 * masks): they compare it with core's compareGrids and so decide as the commands that read the voxels do.
 */
import type { Grid } from '../../core/index.js';
import { geometryFromHeader } from './affine.js';
import type { NiftiHeader } from './types.js';
import { volumeShape } from './validate.js';

export function gridFromHeader(header: NiftiHeader): Grid {
  const geometry = geometryFromHeader(header);
  const [sx, sy, sz] = geometry.spacingXyz;
  return { shape: volumeShape(header), spacing: [sz, sy, sx], affine: geometry.affine };
}
