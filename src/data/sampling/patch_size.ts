/**
 * What nnU-Net derives from the final patch size before training (nnunetv2 nnUNetTrainer
 * `configure_rotation_dummyDA_mirroring_and_inital_patch_size`, NNUNET.md sections 3-4): whether the
 * spatial augmentation runs in-plane only ("dummy 2D", when max(patch) / patch[0] > 3), the rotation
 * range, the mirror axes, and the ENLARGED patch the sampler crops so that rotation and scaling
 * do not pull zeros into the final patch (`get_patch_size`).
 *
 * A 2d configuration's patch [1, y, x] is nnU-Net's 2D patch (y, x), sampled as its loader does, one
 * slice deep: rotation in the slice by +-15 degrees when max(y, x) / min(y, x) > 1.5, else +-180;
 * the enlarged patch from the 2D rotation alone; mirroring over y and x; spatial and low-resolution
 * transforms in the slice (as dummy 2D does), blur over y and x only.
 */
import type { Triple } from '../planning_topology.js';

/** nnU-Net's ANISO_THRESHOLD for dummy-2D augmentation. */
export const DUMMY_2D_THRESHOLD = 3;
/** The scale range get_patch_size divides by (nnU-Net keeps the old (0.85, 1.25) here). */
export const PATCH_SIZE_SCALE_RANGE: readonly [number, number] = [0.85, 1.25];

const DEGREE = Math.PI / 180;

export interface AugmentationGeometry {
  /** Final patch [z, y, x] (network order), what the network sees. */
  finalPatchSize: Triple;
  /** Patch the sampler crops before the spatial transform. */
  sampledPatchSize: Triple;
  /** Spatial augmentation in the (y, x) plane only, one set of parameters for all slices. */
  dummy2d: boolean;
  /** Rotation angle range in radians (each axis independently, or in-plane for dummy 2D). */
  rotationRangeRad: readonly [number, number];
  mirrorAxes: number[];
  /** 2: a 2d configuration's patch, one slice deep (absent: 3D). */
  spatialDims?: 2;
}

/** nnU-Net's 2D rule: rotate up to 15 degrees when the patch is elongated beyond this ratio, else up to 180. */
export const ELONGATED_2D_PATCH = 1.5;

/** True when nnU-Net would do dummy-2D augmentation for this 3D patch. */
export function isDummy2d(patchSize: Triple): boolean {
  return Math.max(...patchSize) / patchSize[0] > DUMMY_2D_THRESHOLD;
}

function rotateAboutX(v: Triple, angle: number): Triple {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  // Row vector times Rx (batchgenerators rotate_coords_3d multiplies coords^T @ R).
  return [v[0], v[1] * c + v[2] * s, -v[1] * s + v[2] * c];
}

function rotateAboutY(v: Triple, angle: number): Triple {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return [v[0] * c - v[2] * s, v[1], v[0] * s + v[2] * c];
}

function rotateAboutZ(v: Triple, angle: number): Triple {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return [v[0] * c + v[1] * s, -v[0] * s + v[1] * c, v[2]];
}

/**
 * nnU-Net `get_patch_size`: rotate the patch-size vector by the largest angle (capped at 90 degrees)
 * about each axis separately, keep the elementwise largest |coordinate|, divide by the smallest
 * scale and truncate to integers.
 */
export function enlargedPatchSize(patchSize: Triple, maxRotationRad: number, scaleRange: readonly [number, number] = PATCH_SIZE_SCALE_RANGE): Triple {
  const angle = Math.min(90 * DEGREE, Math.abs(maxRotationRad));
  const candidates = [patchSize, rotateAboutX(patchSize, angle), rotateAboutY(patchSize, angle), rotateAboutZ(patchSize, angle)];
  const largest = [0, 1, 2].map((axis) => Math.max(...candidates.map((v) => Math.abs(v[axis]!))));
  const minScale = Math.min(...scaleRange);
  return largest.map((value) => Math.trunc(value / minScale)) as Triple;
}

/** The augmentation geometry nnU-Net uses for a final patch (training: augment = true); `spatialDims` 2: a 2d configuration's [1, y, x]. */
export function augmentationGeometry(finalPatchSize: Triple, augment = true, spatialDims: 2 | 3 = 3): AugmentationGeometry {
  if (spatialDims === 2) {
    if (finalPatchSize[0] !== 1) throw new RangeError(`a 2d patch is one slice deep, got [${finalPatchSize.join(', ')}]`);
    const inPlane = [finalPatchSize[1], finalPatchSize[2]];
    const maxAngle = (Math.max(...inPlane) / Math.min(...inPlane) > ELONGATED_2D_PATCH ? 15 : 180) * DEGREE;
    const rotationRangeRad: [number, number] = [-maxAngle, maxAngle];
    // get_patch_size in 2D: the slice's vector rotated in its plane, which is the rotation about axis 0.
    const angle = Math.min(90 * DEGREE, maxAngle);
    const rotated = rotateAboutX(finalPatchSize, angle);
    const minScale = Math.min(...PATCH_SIZE_SCALE_RANGE);
    const sampled: Triple = [1, ...[1, 2].map((axis) => Math.trunc(Math.max(finalPatchSize[axis]!, Math.abs(rotated[axis]!)) / minScale))] as Triple;
    return { finalPatchSize: [...finalPatchSize], sampledPatchSize: augment ? sampled : [...finalPatchSize], dummy2d: true, rotationRangeRad, mirrorAxes: [1, 2], spatialDims: 2 };
  }
  const dummy2d = isDummy2d(finalPatchSize);
  const maxAngle = (dummy2d ? 180 : 30) * DEGREE;
  const rotationRangeRad: [number, number] = [-maxAngle, maxAngle];
  const mirrorAxes = [0, 1, 2];
  if (!augment) {
    return { finalPatchSize: [...finalPatchSize], sampledPatchSize: [...finalPatchSize], dummy2d, rotationRangeRad, mirrorAxes };
  }
  const sampled = enlargedPatchSize(finalPatchSize, maxAngle);
  if (dummy2d) sampled[0] = finalPatchSize[0];
  return { finalPatchSize: [...finalPatchSize], sampledPatchSize: sampled, dummy2d, rotationRangeRad, mirrorAxes };
}
