/**
 * NIfTI geometry: header -> voxel-to-world affine (sform if sform_code > 0, else qform if
 * qform_code > 0, else nibabel's centred pixdim affine) and the spacing by the one rule of
 * voxelSpacing (pixdim unless the affine's voxel sizes disagree with it), and affine ->
 * qform/sform/pixdim fields for writing. Both directions follow nibabel's conventions so
 * that nibabel reads our files back with the same affine. The reader validates a header
 * (nifti-validate.ts) before any of this runs, so the fields used here are finite and usable.
 */
import type { Affine } from '../../core/index.js';
import type { NiftiGeometrySource, NiftiHeader } from './types.js';

export type Matrix3 = [[number, number, number], [number, number, number], [number, number, number]];

/**
 * Relative difference between the voxel sizes a header or volume states (pixdim) and its affine's
 * column norms up to which the stated sizes are the spacing (DESIGN.md decision 6). float32 storage
 * of an oblique sform moves its column norms by ~1e-8 relative; 1e-5 (10 nm on a 1 mm voxel) is far
 * above that and far below anything that changes a result.
 */
export const PIXDIM_AGREEMENT_TOLERANCE = 1e-5;

/**
 * The voxel sizes pixdim[1..3] that nibabel's affines use: the base (no-code) affine takes 1 for an
 * axis beyond dim[0], as nibabel's get_zooms() pads it; the qform takes pixdim[1..3] as stored.
 */
export function spatialZooms(h: NiftiHeader, source: 'qform' | 'pixdim' = 'pixdim'): [number, number, number] {
  return [0, 1, 2].map((axis) => (source === 'qform' || axis < h.dims.length ? h.pixdim[axis] ?? 1 : 1)) as [number, number, number];
}

/** Column norms of an affine's 3x3 part: the voxel sizes along x, y, z. */
export function affineZooms(affine: Affine): [number, number, number] {
  return [0, 1, 2].map((c) => Math.hypot(affine[0][c]!, affine[1][c]!, affine[2][c]!)) as [number, number, number];
}

/** A number for messages: six significant digits, no trailing zeros (0.699999988 -> 0.7). */
export function formatNumber(value: number): string {
  return Number.isFinite(value) ? String(Number(value.toPrecision(6))) : String(value);
}

/** Rotation matrix of the unit quaternion whose vector part is (b, c, d), w >= 0. */
function quaternionToMatrix(b: number, c: number, d: number): Matrix3 {
  const w2 = 1 - (b * b + c * c + d * d);
  // Stored as float32: allow rounding just below zero (then the rotation is 180 degrees).
  const w = w2 < 0 ? 0 : Math.sqrt(w2);
  const norm = w * w + b * b + c * c + d * d;
  if (norm < 2.220446049250313e-16) return [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const s = 2 / norm;
  const [X, Y, Z] = [b * s, c * s, d * s];
  const [wX, wY, wZ] = [w * X, w * Y, w * Z];
  const [xX, xY, xZ] = [b * X, b * Y, b * Z];
  const [yY, yZ, zZ] = [c * Y, c * Z, d * Z];
  return [
    [1 - (yY + zZ), xY - wZ, xZ + wY],
    [xY + wZ, 1 - (xX + zZ), yZ - wX],
    [xZ - wY, yZ + wX, 1 - (xX + yY)],
  ];
}

/** The qform affine: rotation from the quaternion, times diag(pixdim) with qfac on z, plus qoffset. */
export function qformAffine(h: NiftiHeader): Affine {
  const rotation = quaternionToMatrix(h.quatern[0], h.quatern[1], h.quatern[2]);
  const zooms = spatialZooms(h, 'qform');
  if (h.qfac === -1) zooms[2] = -zooms[2]; // 0 reads as 1, as nibabel fixes it; validation refuses others
  const row = (r: number): [number, number, number, number] => [
    rotation[r]![0] * zooms[0],
    rotation[r]![1] * zooms[1],
    rotation[r]![2] * zooms[2],
    h.qoffset[r]!,
  ];
  return [row(0), row(1), row(2), [0, 0, 0, 1]];
}

export function sformAffine(h: NiftiHeader): Affine {
  return [[...h.srowX], [...h.srowY], [...h.srowZ], [0, 0, 0, 1]];
}

/** nibabel's fallback when neither code is set: voxel sizes with x flipped, centred on the volume. */
function baseAffine(h: NiftiHeader): Affine {
  const zooms = spatialZooms(h);
  const shape = [0, 1, 2].map((axis) => h.dims[axis] ?? 1);
  const scale = [-zooms[0], zooms[1], zooms[2]];
  const row = (r: number): [number, number, number, number] => {
    const out: [number, number, number, number] = [0, 0, 0, -((shape[r]! - 1) / 2) * scale[r]!];
    out[r] = scale[r]!;
    return out;
  };
  return [row(0), row(1), row(2), [0, 0, 0, 1]];
}

/** Voxel (i, j, k) -> world affine, chosen as nibabel's get_best_affine does. */
export function affineFromHeader(h: NiftiHeader): Affine {
  return geometryFromHeader(h).affine;
}

export interface HeaderGeometry {
  affine: Affine;
  source: NiftiGeometrySource;
  /** Voxel sizes (mm) along x, y, z, by the rule of voxelSpacing. */
  spacingXyz: [number, number, number];
  /** Why the spacing is not pixdim, when it is not. */
  note?: string;
}

export interface VoxelSpacing {
  /** Voxel sizes (mm) along x, y, z. */
  spacingXyz: [number, number, number];
  /** Set when the stated sizes and the affine's disagree and the affine's were taken. */
  note?: string;
}

const listOf = (values: readonly number[]): string => `[${values.map(formatNumber).join(', ')}]`;

/**
 * THE rule for a grid's spacing, used by reading (headers), writing (volumes) and so by every
 * metric, plan, resampling and volume in mL: the stated voxel sizes (pixdim, what nibabel's
 * get_zooms() and SimpleITK's GetSpacing() give) when they agree with the affine's column norms to
 * a relative PIXDIM_AGREEMENT_TOLERANCE on every axis, else the affine's column norms with a note
 * (the affine places the voxels, as nibabel's img.affine does). An axis with no stated size (beyond
 * a 1D or 2D header's dim[0]) takes the affine's. `affineName` names the affine in the note.
 */
export function voxelSpacing(statedXyz: readonly (number | undefined)[], affine: Affine, affineName: string): VoxelSpacing {
  const norms = affineZooms(affine);
  const stated = [0, 1, 2].map((axis) => statedXyz[axis]);
  const disagrees = stated.some((value, axis) => value !== undefined && !(Math.abs(value - norms[axis]!) <= PIXDIM_AGREEMENT_TOLERANCE * norms[axis]!));
  if (disagrees) {
    const shown = stated.filter((value): value is number => value !== undefined);
    const note = `pixdim ${listOf(shown)} differs from the ${affineName}'s voxel sizes ${listOf(norms.slice(0, shown.length))} by more than ${PIXDIM_AGREEMENT_TOLERANCE} relative; the ${affineName}'s are used, as nibabel's affine places the voxels`;
    return { spacingXyz: norms, note };
  }
  return { spacingXyz: stated.map((value, axis) => value ?? norms[axis]!) as [number, number, number] };
}

/** pixdim[1..3] as the header states them: undefined for an axis beyond dim[0]. */
function statedPixdim(h: NiftiHeader): (number | undefined)[] {
  return [0, 1, 2].map((axis) => (axis < h.dims.length ? h.pixdim[axis] : undefined));
}

/**
 * The affine nibabel chooses (sform if sform_code > 0, else qform if qform_code > 0, else the
 * centred pixdim affine) and the spacing voxelSpacing gives for it: pixdim, as nibabel's
 * get_zooms() reads it, unless the sform's voxel sizes disagree with it.
 */
export function geometryFromHeader(h: NiftiHeader): HeaderGeometry {
  const source: NiftiGeometrySource = h.sformCode > 0 ? 'sform' : h.qformCode > 0 ? 'qform' : 'pixdim';
  const affine = source === 'sform' ? sformAffine(h) : source === 'qform' ? qformAffine(h) : baseAffine(h);
  const { spacingXyz, note } = voxelSpacing(statedPixdim(h), affine, source === 'pixdim' ? 'pixdim affine' : source);
  return { affine, source, spacingXyz, ...(note !== undefined ? { note } : {}) };
}

/** Spacing [sz, sy, sx] (array order) of a header, by geometryFromHeader's rule. */
export function headerSpacing(h: NiftiHeader): [number, number, number] {
  const [sx, sy, sz] = geometryFromHeader(h).spacingXyz;
  return [sz, sy, sx];
}

export function determinant(m: Matrix3): number {
  return (
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
    m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
  );
}

/**
 * |det| / (product of column norms) below which a 3x3 part counts as singular. That ratio is the
 * volume of the parallelepiped spanned by the unit columns (1 for orthogonal axes, about
 * sin(angle) for two nearly parallel ones); float32 rounding of a truly singular matrix leaves
 * about 1e-7, and a real scanner's shear never comes near 1e-6.
 */
export const SINGULAR_TOLERANCE = 1e-6;

/**
 * Why a 3x3 matrix maps no voxel grid to the world (a zero column or a determinant below
 * SINGULAR_TOLERANCE of its column norms' product), or undefined when it does. The reader's sform
 * check and the writer's affine check both use it.
 */
export function singularityProblem(m: Matrix3): string | undefined {
  const norms = [0, 1, 2].map((c) => Math.hypot(m[0][c]!, m[1][c]!, m[2][c]!));
  const det = determinant(m);
  const product = norms[0]! * norms[1]! * norms[2]!;
  if (product !== 0 && Math.abs(det) >= SINGULAR_TOLERANCE * product) return undefined;
  return `its 3x3 part [${m.map((row) => `[${row.map(formatNumber).join(', ')}]`).join(', ')}] has determinant ${formatNumber(det)}, so it maps no voxel grid to the world`;
}

/** Inverse transpose of a 3x3 matrix. */
function inverseTranspose(m: Matrix3): Matrix3 {
  const det = determinant(m);
  const cofactor = (r: number, c: number): number => {
    const rows = [0, 1, 2].filter((x) => x !== r);
    const cols = [0, 1, 2].filter((x) => x !== c);
    const minor =
      m[rows[0]!]![cols[0]!]! * m[rows[1]!]![cols[1]!]! - m[rows[0]!]![cols[1]!]! * m[rows[1]!]![cols[0]!]!;
    return ((r + c) % 2 === 0 ? 1 : -1) * minor;
  };
  return [0, 1, 2].map((r) => [0, 1, 2].map((c) => cofactor(r, c) / det)) as Matrix3;
}

/**
 * The orthogonal matrix closest to `m` (its polar factor), which is what a quaternion can hold.
 * Newton's iteration X <- (X + X^-T) / 2 converges quadratically for any non-singular matrix.
 */
function nearestOrthogonal(m: Matrix3): Matrix3 {
  let x = m.map((row) => [...row]) as Matrix3;
  for (let iteration = 0; iteration < 100; iteration++) {
    const inv = inverseTranspose(x);
    const next = x.map((row, r) => row.map((value, c) => (value + inv[r]![c]!) / 2)) as Matrix3;
    const change = Math.max(...next.flatMap((row, r) => row.map((value, c) => Math.abs(value - x[r]![c]!))));
    x = next;
    if (change < 1e-15) break;
  }
  return x;
}

/** Quaternion (w, x, y, z) with w >= 0 of a proper rotation matrix (Shepperd's method). */
function matrixToQuaternion(r: Matrix3): [number, number, number, number] {
  const trace = r[0][0] + r[1][1] + r[2][2];
  let q: [number, number, number, number];
  if (trace > 0) {
    const s = 2 * Math.sqrt(trace + 1);
    q = [s / 4, (r[2][1] - r[1][2]) / s, (r[0][2] - r[2][0]) / s, (r[1][0] - r[0][1]) / s];
  } else if (r[0][0] > r[1][1] && r[0][0] > r[2][2]) {
    const s = 2 * Math.sqrt(1 + r[0][0] - r[1][1] - r[2][2]);
    q = [(r[2][1] - r[1][2]) / s, s / 4, (r[0][1] + r[1][0]) / s, (r[0][2] + r[2][0]) / s];
  } else if (r[1][1] > r[2][2]) {
    const s = 2 * Math.sqrt(1 + r[1][1] - r[0][0] - r[2][2]);
    q = [(r[0][2] - r[2][0]) / s, (r[0][1] + r[1][0]) / s, s / 4, (r[1][2] + r[2][1]) / s];
  } else {
    const s = 2 * Math.sqrt(1 + r[2][2] - r[0][0] - r[1][1]);
    q = [(r[1][0] - r[0][1]) / s, (r[0][2] + r[2][0]) / s, (r[1][2] + r[2][1]) / s, s / 4];
  }
  return q[0] < 0 ? (q.map((v) => -v) as [number, number, number, number]) : q;
}

export interface GeometryFields {
  quatern: [number, number, number];
  qoffset: [number, number, number];
  qfac: number;
  /** pixdim[1..3]: the column norms of the affine. */
  zooms: [number, number, number];
  srowX: [number, number, number, number];
  srowY: [number, number, number, number];
  srowZ: [number, number, number, number];
}

/**
 * Header geometry for an affine, as nibabel's set_qform/set_sform compute it: zooms are the column
 * norms, qfac = -1 flips the third column of a left-handed rotation, shears are dropped from the
 * qform (nearest orthogonal matrix), and the sform holds the affine's first three rows as given.
 */
export function geometryFromAffine(affine: Affine): GeometryFields {
  const zooms = affineZooms(affine);
  const rotation = [0, 1, 2].map((r) => [0, 1, 2].map((c) => affine[r]![c]! / (zooms[c] || 1))) as Matrix3;
  let qfac = 1;
  const det = determinant(rotation);
  if (det <= 0) {
    qfac = -1;
    for (const row of rotation) row[2] = -row[2];
  }
  // A singular affine has no rotation to store: keep the identity quaternion (the sform holds it).
  const quaternion: [number, number, number, number] =
    Math.abs(det) > 1e-12 ? matrixToQuaternion(nearestOrthogonal(rotation)) : [1, 0, 0, 0];
  return {
    quatern: [quaternion[1], quaternion[2], quaternion[3]],
    qoffset: [affine[0][3], affine[1][3], affine[2][3]],
    qfac,
    zooms,
    srowX: [...affine[0]],
    srowY: [...affine[1]],
    srowZ: [...affine[2]],
  };
}
