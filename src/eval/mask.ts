/**
 * Binary masks as the metrics take them, and the checks every metric runs on its inputs.
 *
 * A mask is a Uint8Array in array order [z, y, x] (x fastest, as core's Volume); any non-zero
 * value is foreground, as the reference library treats its boolean masks. A
 * `Volume<Uint8Array>` from io satisfies `BinaryMask`.
 */
import { InputError, type Shape3 } from '../core/index.js';

export interface BinaryMask {
  data: Uint8Array;
  /** [z, y, x]; data.length === z * y * x. */
  shape: readonly [number, number, number];
}

/** Copies a shape tuple, so later code can rely on a mutable Shape3. */
export function shapeOf(mask: BinaryMask): Shape3 {
  return [mask.shape[0], mask.shape[1], mask.shape[2]];
}

/** Throws InputError unless pred and ref have one valid shape that their data fills. */
export function checkMaskPair(pred: BinaryMask, ref: BinaryMask, context = 'masks'): void {
  for (const [name, mask] of [['pred', pred], ['ref', ref]] as const) {
    const shape = mask.shape;
    if (shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new InputError(`${context}: ${name} shape must be three positive integers [z, y, x], got [${shape.join(', ')}]`);
    }
    if (mask.data.length !== shape[0] * shape[1] * shape[2]) {
      throw new InputError(`${context}: ${name} has ${mask.data.length} voxels but shape [${shape.join(', ')}]`);
    }
  }
  if (pred.shape.some((d, axis) => d !== ref.shape[axis])) {
    throw new InputError(`${context}: pred shape [${pred.shape.join(', ')}] differs from ref shape [${ref.shape.join(', ')}]`);
  }
}

/** Throws InputError unless spacing is three positive finite numbers (mm). */
export function checkSpacing(spacingMm: readonly number[], context = 'spacing'): Shape3 {
  if (spacingMm.length !== 3 || !spacingMm.every((s) => Number.isFinite(s) && s > 0)) {
    throw new InputError(`${context}: spacing must be three positive finite mm values [sz, sy, sx], got [${spacingMm.join(', ')}]`);
  }
  return [spacingMm[0]!, spacingMm[1]!, spacingMm[2]!];
}

/**
 * Volume of one voxel in mL: the product of the spacing (mm, any axis order; the reader's spacing,
 * pixdim by DESIGN decision 6) / 1000. Every volume in mL (metrics, involvement, summaries) uses it.
 */
export function voxelVolumeMl(spacingMm: readonly number[], context = 'voxel volume'): number {
  const [s0, s1, s2] = checkSpacing(spacingMm, context);
  return (s0 * s1 * s2) / 1000;
}

/** The mask of one label of a label map: 1 where labels === label, else 0. */
export function maskOfLabel(labels: ArrayLike<number>, label: number): Uint8Array {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = labels[i] === label ? 1 : 0;
  return out;
}
