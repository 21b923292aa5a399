/**
 * Checks of a decoded NIfTI header, run before any voxel is read, so that a malformed header is
 * refused instead of read as something plausible: voxel sizes, the geometry nibabel would use
 * (sform, else qform), vox_offset and the scaling fields, and the memory one image may take
 * ('too-large'). Each problem has its own code (HeaderProblemCode), which `check` reports; reading
 * throws one NiftiHeaderError (code 'bad-header') listing every problem. Non-finite voxels are
 * checked after reading, by validate-voxels.ts.
 */
import { InputError } from '../../core/index.js';
import { DATATYPES, NiftiHeaderError, type HeaderProblem, type NiftiHeader } from './types.js';
import { formatNumber, singularityProblem, type Matrix3 } from './affine.js';
import { scaledValueBytes, scaling, scalingProblems } from './scaling.js';

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

const AXES = ['x', 'y', 'z'] as const;

/**
 * pixdim[1..dim[0]] must be voxel sizes; so must pixdim[1..3] of a 1D or 2D image whose geometry is
 * the qform (nibabel's qform uses all three).
 */
function pixdimProblems(h: NiftiHeader): HeaderProblem[] {
  const problems: HeaderProblem[] = [];
  const axes = h.sformCode <= 0 && h.qformCode > 0 ? 3 : Math.min(3, h.dims.length);
  for (let axis = 0; axis < axes; axis++) {
    const value = h.pixdim[axis]!;
    if (!(Number.isFinite(value) && value > 0)) {
      problems.push({ code: 'bad-pixdim', message: `pixdim[${axis + 1}] is ${formatNumber(value)} (voxel sizes must be finite and > 0)` });
    }
  }
  return problems;
}

function sformProblems(h: NiftiHeader): HeaderProblem[] {
  const rows = [h.srowX, h.srowY, h.srowZ];
  const problems: HeaderProblem[] = [];
  rows.forEach((row, r) => {
    row.forEach((value, c) => {
      if (!Number.isFinite(value)) problems.push({ code: 'non-finite-sform', message: `srow_${AXES[r]}[${c}] is ${value} (sform_code ${h.sformCode} makes the sform the geometry; its entries must be finite)` });
    });
  });
  if (problems.length > 0) return problems;
  const singular = singularityProblem(rows.map((row) => row.slice(0, 3)) as Matrix3);
  if (singular !== undefined) problems.push({ code: 'singular-sform', message: `the sform (sform_code ${h.sformCode}) is singular: ${singular}` });
  return problems;
}

function qformProblems(h: NiftiHeader): HeaderProblem[] {
  const problems: HeaderProblem[] = [];
  const why = `(qform_code ${h.qformCode} and sform_code ${h.sformCode} make the qform the geometry; it must be finite)`;
  h.quatern.forEach((value, index) => {
    if (!Number.isFinite(value)) problems.push({ code: 'non-finite-qform', message: `quatern_${'bcd'[index]} is ${value} ${why}` });
  });
  h.qoffset.forEach((value, index) => {
    if (!Number.isFinite(value)) problems.push({ code: 'non-finite-qform', message: `qoffset_${AXES[index]} is ${value} ${why}` });
  });
  // nibabel reads 0 as 1 (it fixes the header on load); nifti1_io agrees. For any other value
  // nibabel reads 1 and nifti1_io reads the sign, so the two disagree and we refuse.
  if (h.qfac !== 1 && h.qfac !== -1 && h.qfac !== 0) {
    problems.push({ code: 'bad-qfac', message: `pixdim[0] (qfac) is ${formatNumber(h.qfac)} (must be 1 or -1, or 0 read as 1)` });
  }
  if (problems.length === 0) {
    const [b, c, d] = h.quatern;
    const squared = b * b + c * c + d * d;
    if (1 - squared < -QUATERNION_THRESHOLD) {
      problems.push({ code: 'bad-quaternion', message: `quatern_b, quatern_c, quatern_d (${[b, c, d].map(formatNumber).join(', ')}) have b^2 + c^2 + d^2 = ${formatNumber(squared)} > 1 (not a rotation)` });
    }
  }
  return problems;
}

function voxOffsetProblems(h: NiftiHeader): HeaderProblem[] {
  const value = h.voxOffset;
  if (Number.isSafeInteger(value) && value >= 0) return [];
  return [{ code: 'bad-vox-offset', message: `vox_offset is ${formatNumber(value)} (must be a whole number of bytes >= 0)` }];
}

/** Every reason the header cannot be read as it stands, each with its code and a message naming the field and value. */
export function headerProblems(h: NiftiHeader): HeaderProblem[] {
  return [
    ...pixdimProblems(h),
    ...(h.sformCode > 0 ? sformProblems(h) : h.qformCode > 0 ? qformProblems(h) : []),
    ...voxOffsetProblems(h),
    ...scalingProblems(h).map((message): HeaderProblem => ({ code: 'bad-scaling', message })),
  ];
}

/** Throws one NiftiHeaderError (code 'bad-header', naming `file`) listing every problem of the header. */
export function validateNiftiHeader(h: NiftiHeader, file: string): void {
  const problems = headerProblems(h);
  if (problems.length > 0) throw new NiftiHeaderError(problems, file);
}

/**
 * THE rule for which images are volumes, used by every command (through readNifti, or on headers
 * alone): a 1D, 2D or 3D image, or one whose axes beyond the third are all 1, is a volume; a 2D
 * image [x, y] is read as one slice [1, y, x], as nnU-Net reads 2D images. Anything else (a 4D
 * series) is refused with code 'not-3d'.
 */
export function assertVolume(h: NiftiHeader, file: string): void {
  if (h.dims.slice(3).some((n) => n !== 1)) {
    throw new InputError(`image is ${h.dims.length}D [${h.dims.join(', ')}]; only 3D images are supported`, { file, code: 'not-3d' });
  }
}

/** The volume's shape [z, y, x] of a header: dims reversed, 1 for an axis beyond dim[0]. */
export function volumeShape(h: NiftiHeader): [number, number, number] {
  return [h.dims[2] ?? 1, h.dims[1] ?? 1, h.dims[0] ?? 1];
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
