/**
 * Reorienting a mask onto its image's voxel grid when the two are stored in different axis orders
 * or directions (PleThora's effusion masks against the NSCLC-Radiomics CT). Both affines are
 * compared: image voxel -> world -> mask voxel must be a signed permutation of the axes with unit
 * scale (same spacing) and an offset that maps the image's field of view exactly onto the mask's
 * (within tolerances). Anything else (other spacing, another field of view, an oblique rotation)
 * cannot be matched by reordering voxels and is reported as the reason it failed.
 */
import type { Affine, Shape3, TypedArray } from '../../../core/index.js';

export interface AxisMapping {
  /** For image axis a (NIfTI order x, y, z): the mask axis it runs along. */
  maskAxis: [number, number, number];
  /** For image axis a: whether it runs along its mask axis in reverse. */
  flip: [boolean, boolean, boolean];
}

export interface MappingTolerance {
  /** Largest difference of a direction/spacing ratio entry from 0 or 1 (relative); default 0.01. */
  linear?: number;
  /** Largest offset mismatch of the grids, in mask voxels; default 0.25. */
  voxels?: number;
}

const AXIS_NAMES = ['x', 'y', 'z'] as const;

/** Inverse of an affine (rotation-scale part inverted by cofactors, translation undone). */
export function invertAffine(m: Affine): Affine {
  const a = m;
  const det =
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
    a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
    a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) throw new Error('affine is singular');
  const inv = [
    [(a[1][1] * a[2][2] - a[1][2] * a[2][1]) / det, (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / det, (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / det],
    [(a[1][2] * a[2][0] - a[1][0] * a[2][2]) / det, (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / det, (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / det],
    [(a[1][0] * a[2][1] - a[1][1] * a[2][0]) / det, (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / det, (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / det],
  ];
  const t = [a[0][3], a[1][3], a[2][3]];
  const row = (r: number): [number, number, number, number] => [
    inv[r]![0]!,
    inv[r]![1]!,
    inv[r]![2]!,
    -(inv[r]![0]! * t[0]! + inv[r]![1]! * t[1]! + inv[r]![2]! * t[2]!),
  ];
  return [row(0), row(1), row(2), [0, 0, 0, 1]];
}

function multiply(a: Affine, b: Affine): Affine {
  return [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((c) => [0, 1, 2, 3].reduce((sum, k) => sum + a[r]![k]! * b[k]![c]!, 0))) as Affine;
}

/** Shape [z, y, x] -> NIfTI dims [x, y, z]. */
function dimsOf(shape: Shape3): [number, number, number] {
  return [shape[2], shape[1], shape[0]];
}

/**
 * The axis permutation and flips that carry the mask grid onto the image grid, or a sentence saying
 * why there is none. Shapes are [z, y, x]; affines map NIfTI (x, y, z) voxels to world mm.
 */
export function findAxisMapping(
  imageAffine: Affine,
  imageShape: Shape3,
  maskAffine: Affine,
  maskShape: Shape3,
  tolerance: MappingTolerance = {},
): AxisMapping | string {
  const linearTolerance = tolerance.linear ?? 0.01;
  const voxelTolerance = tolerance.voxels ?? 0.25;
  let toMask: Affine;
  try {
    toMask = multiply(invertAffine(maskAffine), imageAffine);
  } catch {
    return 'the mask affine is singular';
  }
  const imageDims = dimsOf(imageShape);
  const maskDims = dimsOf(maskShape);
  const maskAxis: number[] = [];
  const flip: boolean[] = [];
  for (let a = 0; a < 3; a++) {
    const column = [0, 1, 2].map((b) => toMask[b]![a]!);
    const b = column.reduce((best, value, index) => (Math.abs(value) > Math.abs(column[best]!) ? index : best), 0);
    const ratio = Math.abs(column[b]!);
    const off = Math.max(...column.filter((_, index) => index !== b).map(Math.abs));
    if (off > linearTolerance * Math.max(1, ratio)) {
      return `the axes are not aligned (image axis ${AXIS_NAMES[a]} is oblique to the mask grid: ${column.map((v) => v.toFixed(3)).join(', ')})`;
    }
    if (Math.abs(ratio - 1) > linearTolerance) {
      return `the spacing differs (image axis ${AXIS_NAMES[a]} spans ${ratio.toFixed(4)} voxels of mask axis ${AXIS_NAMES[b]})`;
    }
    if (maskAxis.includes(b)) return `two image axes run along mask axis ${AXIS_NAMES[b]}`;
    maskAxis.push(b);
    flip.push(column[b]! < 0);
  }
  for (let a = 0; a < 3; a++) {
    const b = maskAxis[a]!;
    if (maskDims[b] !== imageDims[a]) {
      return `the field of view differs (image axis ${AXIS_NAMES[a]} has ${imageDims[a]} voxels, mask axis ${AXIS_NAMES[b]} has ${maskDims[b]})`;
    }
    const expectedOffset = flip[a] ? maskDims[b]! - 1 : 0;
    const offset = toMask[b]![3]!;
    if (Math.abs(offset - expectedOffset) > voxelTolerance) {
      return `the field of view differs (the grids are shifted by ${(offset - expectedOffset).toFixed(2)} voxels along mask axis ${AXIS_NAMES[b]})`;
    }
  }
  return { maskAxis: maskAxis as AxisMapping['maskAxis'], flip: flip as AxisMapping['flip'] };
}

export function isIdentityMapping(mapping: AxisMapping): boolean {
  return mapping.maskAxis.every((b, a) => b === a) && mapping.flip.every((f) => !f);
}

/** A readable form of a mapping, e.g. "image x <- mask -y, image y <- mask x, image z <- mask z". */
export function describeMapping(mapping: AxisMapping): string {
  return mapping.maskAxis.map((b, a) => `image ${AXIS_NAMES[a]} <- mask ${mapping.flip[a] ? '-' : ''}${AXIS_NAMES[b]}`).join(', ');
}

/**
 * The mask's voxels laid out on the image grid (`imageShape`, [z, y, x]) by `mapping`; the result
 * has the mask's typed-array type.
 */
export function reorientToImage<T extends TypedArray>(maskData: T, maskShape: Shape3, mapping: AxisMapping, imageShape: Shape3): T {
  const maskDims = dimsOf(maskShape);
  const strides = [1, maskDims[0], maskDims[0] * maskDims[1]];
  let base = 0;
  const step = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const b = mapping.maskAxis[a]!;
    step[a] = mapping.flip[a] ? -strides[b]! : strides[b]!;
    if (mapping.flip[a]) base += (maskDims[b]! - 1) * strides[b]!;
  }
  const [nz, ny, nx] = imageShape;
  const out = new (maskData.constructor as new (length: number) => T)(nz * ny * nx);
  const [stepX, stepY, stepZ] = step as [number, number, number];
  let index = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      let source = base + k * stepZ + j * stepY;
      for (let i = 0; i < nx; i++, source += stepX) out[index++] = maskData[source]!;
    }
  }
  return out;
}
