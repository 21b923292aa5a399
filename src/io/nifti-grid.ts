/**
 * The grid a NIfTI header describes, exactly as readNifti gives it (shape [z, y, x] from dims, the
 * affine and spacing geometryFromHeader chooses), for the checks that run on headers before any
 * voxel is read (predict's channels, view's and predict's masks): they compare it with core's
 * compareGrids and so decide as the commands that read the voxels do.
 */
import type { Grid } from '../core/index.js';
import { geometryFromHeader } from './nifti-affine.js';
import type { NiftiHeader } from './nifti-types.js';

export function gridFromHeader(header: NiftiHeader): Grid {
  const geometry = geometryFromHeader(header);
  const [sx, sy, sz] = geometry.zoomsXyz;
  return { shape: [header.dims[2] ?? 1, header.dims[1] ?? 1, header.dims[0] ?? 1], spacing: [sz, sy, sx], affine: geometry.affine };
}
