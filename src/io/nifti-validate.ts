/**
 * Checks of a decoded NIfTI header, run before any voxel is read, so that a malformed header is
 * refused instead of read as something plausible: voxel sizes, the geometry nibabel would use
 * (sform, else qform), vox_offset and the scaling fields (all as InputError code 'bad-header',
 * every problem in one message), and the memory one image may take ('too-large'). Non-finite
 * voxels are checked after reading, by validate-voxels.ts.
 */
import { InputError } from '../core/index.js';
import { DATATYPES, type NiftiHeader } from './nifti-types.js';
import { determinant, formatNumber, type Matrix3 } from './nifti-affine.js';
import { scaledValueBytes, scaling, scalingProblems } from './nifti-scaling.js';

/**
 * Default limit on the memory one image's voxels may take (stored bytes plus the scaled copy).
 * A fixed number rather than a share of this machine's RAM, so that `check` on a laptop and `train`
 * on a server give one file the same verdict. 8 GiB holds the largest CT we know of
 * (1024 x 1024 x 2000 int16 = 4 GiB); anything larger is far more likely a wrong header or a
 * decompression bomb, and preprocessing and prediction hold several float32 copies of an image
 * (a 2 GiB image took predict to 9.6 GB), so a larger one would fail later anyway.
 */
export const DEFAULT_MAX_IMAGE_BYTES = 8 * 2 ** 30;

/**
 * nibabel's Nifti1Header.quaternion_threshold: b^2 + c^2 + d^2 may exceed 1 by 3 float32 epsilons
 * (rounding of stored float32 components), and no more.
 */
const QUATERNION_THRESHOLD = 3 * 2 ** -23;

/**
 * |det| / (product of column norms) below which an sform's 3x3 part counts as singular. That ratio
 * is the volume of the parallelepiped spanned by the unit columns (1 for orthogonal axes, about
 * sin(angle) for two nearly parallel ones); float32 rounding of a truly singular matrix leaves
 * about 1e-7, and a real scanner's shear never comes near 1e-6.
 */
const SINGULAR_TOLERANCE = 1e-6;

const AXES = ['x', 'y', 'z'] as const;

function pixdimProblems(h: NiftiHeader): string[] {
  const problems: string[] = [];
  for (let axis = 0; axis < Math.min(3, h.pixdim.length); axis++) {
    const value = h.pixdim[axis]!;
    if (!(Number.isFinite(value) && value > 0)) {
      problems.push(`pixdim[${axis + 1}] is ${formatNumber(value)} (voxel sizes must be finite and > 0)`);
    }
  }
  return problems;
}

function sformProblems(h: NiftiHeader): string[] {
  const rows = [h.srowX, h.srowY, h.srowZ];
  const problems: string[] = [];
  rows.forEach((row, r) => {
    row.forEach((value, c) => {
      if (!Number.isFinite(value)) problems.push(`srow_${AXES[r]}[${c}] is ${value} (sform_code ${h.sformCode} makes the sform the geometry; its entries must be finite)`);
    });
  });
  if (problems.length > 0) return problems;
  const matrix = rows.map((row) => row.slice(0, 3)) as Matrix3;
  const norms = [0, 1, 2].map((c) => Math.hypot(matrix[0][c]!, matrix[1][c]!, matrix[2][c]!));
  const det = determinant(matrix);
  const product = norms[0]! * norms[1]! * norms[2]!;
  if (product === 0 || Math.abs(det) < SINGULAR_TOLERANCE * product) {
    problems.push(
      `the sform (sform_code ${h.sformCode}) is singular: its 3x3 part [${matrix.map((row) => `[${row.map(formatNumber).join(', ')}]`).join(', ')}] ` +
        `has determinant ${formatNumber(det)}, so it maps no voxel grid to the world`,
    );
  }
  return problems;
}

function qformProblems(h: NiftiHeader): string[] {
  const problems: string[] = [];
  const why = `(qform_code ${h.qformCode} and sform_code ${h.sformCode} make the qform the geometry; it must be finite)`;
  h.quatern.forEach((value, index) => {
    if (!Number.isFinite(value)) problems.push(`quatern_${'bcd'[index]} is ${value} ${why}`);
  });
  h.qoffset.forEach((value, index) => {
    if (!Number.isFinite(value)) problems.push(`qoffset_${AXES[index]} is ${value} ${why}`);
  });
  // nibabel reads 0 as 1 (it fixes the header on load); nifti1_io agrees. For any other value
  // nibabel reads 1 and nifti1_io reads the sign, so the two disagree and we refuse.
  if (h.qfac !== 1 && h.qfac !== -1 && h.qfac !== 0) {
    problems.push(`pixdim[0] (qfac) is ${formatNumber(h.qfac)} (must be 1 or -1, or 0 read as 1)`);
  }
  if (problems.length === 0) {
    const [b, c, d] = h.quatern;
    const squared = b * b + c * c + d * d;
    if (1 - squared < -QUATERNION_THRESHOLD) {
      problems.push(`quatern_b, quatern_c, quatern_d (${[b, c, d].map(formatNumber).join(', ')}) have b^2 + c^2 + d^2 = ${formatNumber(squared)} > 1 (not a rotation)`);
    }
  }
  return problems;
}

function voxOffsetProblems(h: NiftiHeader): string[] {
  const value = h.voxOffset;
  if (Number.isSafeInteger(value) && value >= 0) return [];
  return [`vox_offset is ${formatNumber(value)} (must be a whole number of bytes >= 0)`];
}

/** Every reason the header cannot be read as it stands, as messages naming the field and value. */
export function headerProblems(h: NiftiHeader): string[] {
  return [
    ...pixdimProblems(h),
    ...(h.sformCode > 0 ? sformProblems(h) : h.qformCode > 0 ? qformProblems(h) : []),
    ...voxOffsetProblems(h),
    ...scalingProblems(h),
  ];
}

/** Throws one InputError (code 'bad-header', naming `file`) listing every problem of the header. */
export function validateNiftiHeader(h: NiftiHeader, file: string): void {
  const problems = headerProblems(h);
  if (problems.length > 0) throw new InputError(problems.join('; '), { file, code: 'bad-header' });
}

/** Bytes the voxel data takes once read: the stored values, plus the scaled copy when scaling applies. */
export function decodedByteLength(h: NiftiHeader): number {
  const voxels = h.dims.reduce((product, n) => product * n, 1);
  const stored = voxels * DATATYPES[h.datatype].bytes;
  return scaling(h) ? stored + voxels * scaledValueBytes(h.datatype) : stored;
}

/** A byte count for messages: bytes below 1 MiB, else MiB or GiB to three significant digits. */
function formatBytes(bytes: number): string {
  if (bytes < 2 ** 20) return `${bytes} bytes`;
  return bytes < 2 ** 30 ? `${Number((bytes / 2 ** 20).toPrecision(3))} MiB` : `${Number((bytes / 2 ** 30).toPrecision(3))} GiB`;
}

/**
 * Refuse, before anything is allocated, an image whose header declares more voxel data than
 * `maxBytes` (InputError code 'too-large', naming the limit and how to raise it).
 */
export function checkImageSize(h: NiftiHeader, file: string, maxBytes: number = DEFAULT_MAX_IMAGE_BYTES): void {
  if (!(maxBytes > 0)) {
    throw new InputError(`maxBytes ${maxBytes} is not a positive number of bytes`, { file, code: 'bad-arguments' });
  }
  const needed = decodedByteLength(h);
  if (needed <= maxBytes) return;
  const scaled = scaling(h) ? `, scaled to float${scaledValueBytes(h.datatype) * 8},` : '';
  throw new InputError(
    `dims [${h.dims.join(', ')}] of ${h.datatype}${scaled} need ${formatBytes(needed)} of memory, over the limit of ` +
      `${formatBytes(maxBytes)} per image (predict --max-image-gib raises it)`,
    { file, code: 'too-large' },
  );
}
