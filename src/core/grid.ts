/**
 * The one same-grid test (STYLE rules 16 and 21): whether two volumes put their voxels at the same
 * places in the world, used by every command that pairs images (check, plan, preprocess, train and
 * pretrain through check; predict's channels and its --lungs/--lobes masks; evaluate's prediction
 * and lung mask; view's masks; the DICOM conversion). A failure is one code, GRID_MISMATCH.
 *
 * Two grids are the same when their shapes are equal and every voxel centre of one lies within
 * GRID_TOLERANCE_VOXELS of the same voxel centre of the other, in units of the smallest voxel size
 * of the two. Voxel centres are placed by each volume's own affine (world = affine * [i, j, k, 1]),
 * so spacing, origin and direction are compared at once and in one unit: the world distance is an
 * affine function of the index, so its largest value over the grid is at one of the 8 corners.
 * Nothing here re-derives spacing: the affine places the voxels, and the `spacing` fields (what the
 * reader decided spacing is) only express the distance in voxels and say what differs.
 *
 * Why 0.01 voxel:
 * - It is above what float32 headers alone produce: each affine entry is stored with a relative
 *   error of 6e-8, which moves the far corner of a 2048-voxel axis by 3 x 6e-8 x 2047 = 4e-4 voxel
 *   per grid, and an origin 1 m from the isocentre by 6e-5 mm (2e-4 of a 0.3 mm voxel). ITK's
 *   default (1e-6 of the first spacing for origin and spacing, 1e-6 for direction cosines, which
 *   SimpleITK filters apply) is below float32 resolution, which is why NIfTI pairs written by two
 *   tools fail it.
 * - It accepts what nnU-Net's verify_dataset_integrity accepts on spacing (np.allclose, relative
 *   1e-5) for axes up to 1000 voxels (1e-5 x 999 < 0.01); nnU-Net only warns on origin and
 *   direction, and a warning scrolled past is how a shifted label trains a model.
 * - A centre moved by 0.01 voxel changes no nearest-neighbour pairing of voxels and moves a
 *   surface by 1% of a voxel, far below the 1 to 3 mm tolerances NSD is read at.
 */
import { InputError } from './errors.js';
import type { Affine, Shape3 } from './volume.js';

/** The error and issue code of two volumes that do not share one grid, in every command. */
export const GRID_MISMATCH = 'geometry-mismatch';

/** Largest distance (in voxels of the smaller voxel size) between two centres that still count as one place. */
export const GRID_TOLERANCE_VOXELS = 0.01;

/** What places a volume's voxels: a Volume or a NiftiImage is one, and io's gridFromHeader makes one from a header. */
export interface Grid {
  /** [z, y, x]. */
  shape: Shape3;
  /** mm, [sz, sy, sx]. */
  spacing: Shape3;
  /** NIfTI voxel (x, y, z) -> world RAS mm. */
  affine: Affine;
}

export interface GridComparison {
  /** True when the shapes are equal and the voxel centres lie within GRID_TOLERANCE_VOXELS. */
  same: boolean;
  /** Largest distance between corresponding voxel centres, in voxels (Infinity for other shapes or non-finite affines). */
  displacementVoxels: number;
  /** The same distance in mm. */
  displacementMm: number;
  /** What differs, as a phrase ('shape [..] differs from ..'), or undefined when `same`. */
  difference?: string;
}

const AXIS_INDEX_OF_COLUMN = [2, 1, 0] as const; // affine column c (x, y, z) is spacing/shape index 2 - c

function list(values: readonly number[]): string {
  return `[${values.map((v) => Number(v.toPrecision(6))).join(', ')}]`;
}

/** Largest world distance (mm) between the centres of voxel `index` under `a` and under `b`, over the grid's corners. */
function largestCornerDistance(a: Affine, b: Affine, shape: Shape3, columns: readonly number[] = [0, 1, 2], withOrigin = true): number {
  let largest = 0;
  const extent = [shape[2] - 1, shape[1] - 1, shape[0] - 1];
  for (let corner = 0; corner < 8; corner++) {
    let squared = 0;
    for (let row = 0; row < 3; row++) {
      let delta = withOrigin ? a[row]![3] - b[row]![3] : 0;
      for (const c of columns) if (corner & (1 << c)) delta += (a[row]![c]! - b[row]![c]!) * extent[c]!;
      squared += delta * delta;
    }
    largest = Math.max(largest, Math.sqrt(squared));
  }
  return largest;
}

/** `grid` against `reference` (see the file comment); `name` names the reference in the phrase, e.g. "channel 0's". */
export function compareGrids(grid: Grid, reference: Grid, name = "the reference's"): GridComparison {
  if (grid.shape.some((n, axis) => n !== reference.shape[axis])) {
    return { same: false, displacementVoxels: Infinity, displacementMm: Infinity, difference: `shape ${list(grid.shape)} (z, y, x) differs from ${name} ${list(reference.shape)}` };
  }
  const voxel = Math.min(...grid.spacing, ...reference.spacing);
  const displacementMm = largestCornerDistance(grid.affine, reference.affine, grid.shape);
  const displacementVoxels = displacementMm / voxel;
  if (displacementVoxels <= GRID_TOLERANCE_VOXELS) return { same: true, displacementVoxels, displacementMm };
  // Say which part moves the centres by more than the tolerance on its own: the origin, the
  // spacing (as the readers decided it), else the directions (or only their combination).
  const parts: string[] = [];
  const originMm = Math.hypot(...[0, 1, 2].map((row) => grid.affine[row]![3] - reference.affine[row]![3]));
  if (!(originMm / voxel <= GRID_TOLERANCE_VOXELS)) {
    parts.push(`origin ${list(grid.affine.slice(0, 3).map((row) => row[3]))} mm differs from ${name} ${list(reference.affine.slice(0, 3).map((row) => row[3]))}`);
  }
  const spacingVoxels = Math.max(...[0, 1, 2].map((axis) => (Math.abs(grid.spacing[axis]! - reference.spacing[axis]!) * (grid.shape[axis]! - 1)) / voxel));
  if (!(spacingVoxels <= GRID_TOLERANCE_VOXELS)) parts.push(`spacing ${list(grid.spacing)} mm (z, y, x) differs from ${name} ${list(reference.spacing)}`);
  const linearVoxels = largestCornerDistance(grid.affine, reference.affine, grid.shape, [0, 1, 2], false) / voxel;
  if (parts.length === 0 || (!parts.some((p) => p.startsWith('spacing')) && !(linearVoxels <= GRID_TOLERANCE_VOXELS))) {
    const directions = [0, 1, 2].map((c) => {
      const axis = AXIS_INDEX_OF_COLUMN[c]!;
      const u = [0, 1, 2].map((row) => grid.affine[row]![c]! / grid.spacing[axis]!);
      const v = [0, 1, 2].map((row) => reference.affine[row]![c]! / reference.spacing[axis]!);
      const cosine = Math.min(1, Math.max(-1, u[0]! * v[0]! + u[1]! * v[1]! + u[2]! * v[2]!));
      return (Math.acos(cosine) * 180) / Math.PI;
    });
    parts.push(`direction differs from ${name} by up to ${Number(Math.max(...directions).toPrecision(3))} degrees`);
  }
  const moved = Number.isFinite(displacementVoxels) ? `${Number(displacementVoxels.toPrecision(3))} voxel` : 'an undefined distance (non-finite affine)';
  return {
    same: false,
    displacementVoxels: Number.isNaN(displacementVoxels) ? Infinity : displacementVoxels,
    displacementMm: Number.isNaN(displacementMm) ? Infinity : displacementMm,
    difference: `${parts.join('; ')}: voxel centres lie up to ${moved} apart (tolerance ${GRID_TOLERANCE_VOXELS} voxel)`,
  };
}

/**
 * Throws InputError (code GRID_MISMATCH, naming `file`) unless `grid` is `reference`'s grid.
 * `what` says what the file is ('channel 1', 'the lung mask'), `referenceWhat` what the reference is
 * ("channel 0 (case_0000.nii.gz)").
 */
export function assertSameGrid(file: string, grid: Grid, reference: Grid, what: string, referenceWhat: string): void {
  const comparison = compareGrids(grid, reference, 'its');
  if (comparison.same) return;
  throw new InputError(`${what} does not lie on the grid of ${referenceWhat}: ${comparison.difference}`, { file, code: GRID_MISMATCH });
}
