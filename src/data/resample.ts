/**
 * Resampling of images and label maps to a target spacing, as nnU-Net's default resampling does
 * (nnunetv2 preprocessing/resampling/default_resampling.py, NNUNET.md section 2):
 * - new shape = round(oldSpacing / newSpacing * shape) (Python's round: halves to even);
 * - images: skimage `resize(order 3, mode='edge', anti_aliasing=False)`, which clips the result to
 *   the input's [min, max]; trilinear (order 1) as an option;
 * - label maps: each label (sorted, -1 and 0 included) one-hot -> linear resize -> voxels >= 0.5 get
 *   that label, later labels overwriting earlier ones, voxels no label reaches stay 0;
 * - separate-z: when max/min of the ORIGINAL spacing > 3 (else of the TARGET spacing), along that
 *   single lowest-resolution axis: resize in-plane slice by slice, then interpolate along the axis
 *   with `orderZ` (0 = nearest) like `map_coordinates(mode='nearest')`; not when 2-3 axes tie.
 */
import type { Shape3 } from '../core/index.js';
import { resampleAxis, resizeArray, type InterpolationOrder, type NumericArray } from './resample_axis.js';
import { resizeLabelsLinear } from './resample_labels.js';

export type { InterpolationOrder, NumericArray } from './resample_axis.js';

export interface ResampleSettings {
  /** Interpolation order in-plane (or on all axes without separate-z). */
  order: InterpolationOrder;
  /** Interpolation order along the low-resolution axis with separate-z. */
  orderZ: InterpolationOrder;
  /** null: nnU-Net's rule decides; true/false forces it. */
  forceSeparateZ: boolean | null;
  /** Anisotropy ratio above which separate-z is used (nnU-Net ANISO_THRESHOLD = 3). */
  anisotropyThreshold: number;
}

export const DATA_RESAMPLING: Readonly<ResampleSettings> = Object.freeze({
  order: 3,
  orderZ: 0,
  forceSeparateZ: null,
  anisotropyThreshold: 3,
});

export const SEGMENTATION_RESAMPLING: Readonly<ResampleSettings> = Object.freeze({
  order: 1,
  orderZ: 0,
  forceSeparateZ: null,
  anisotropyThreshold: 3,
});

/** A 3D array with its shape: the part of a Volume resampling needs. */
export interface Array3<T extends NumericArray = NumericArray> {
  data: T;
  shape: Shape3;
}

/** Python 3 `round`: halves go to the even neighbour. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** nnU-Net `compute_new_shape`. */
export function computeNewShape(shape: Shape3, currentSpacing: Shape3, targetSpacing: Shape3): Shape3 {
  return [0, 1, 2].map((axis) =>
    Math.max(1, roundHalfEven((currentSpacing[axis]! / targetSpacing[axis]!) * shape[axis]!)),
  ) as Shape3;
}

function lowResolutionAxes(spacing: Shape3): number[] {
  const max = Math.max(...spacing);
  return [0, 1, 2].filter((axis) => max / spacing[axis]! === 1);
}

function isAnisotropic(spacing: Shape3, threshold: number): boolean {
  return Math.max(...spacing) / Math.min(...spacing) > threshold;
}

/** nnU-Net `determine_do_sep_z_and_axis`: the axis to treat separately, or null. */
export function separateZAxis(
  currentSpacing: Shape3,
  targetSpacing: Shape3,
  settings: Pick<ResampleSettings, 'forceSeparateZ' | 'anisotropyThreshold'>,
): 0 | 1 | 2 | null {
  let axes: number[] | null;
  if (settings.forceSeparateZ !== null) {
    axes = settings.forceSeparateZ ? lowResolutionAxes(currentSpacing) : null;
  } else if (isAnisotropic(currentSpacing, settings.anisotropyThreshold)) {
    axes = lowResolutionAxes(currentSpacing);
  } else if (isAnisotropic(targetSpacing, settings.anisotropyThreshold)) {
    axes = lowResolutionAxes(targetSpacing);
  } else {
    axes = null;
  }
  return axes !== null && axes.length === 1 ? (axes[0] as 0 | 1 | 2) : null;
}

function otherAxes(axis: 0 | 1 | 2): (0 | 1 | 2)[] {
  return ([2, 1, 0] as const).filter((a) => a !== axis);
}

/** Min and max of each slice along `axis`. */
function sliceRanges(data: NumericArray, shape: Shape3, axis: 0 | 1 | 2): { min: Float64Array; max: Float64Array } {
  const count = shape[axis];
  const min = new Float64Array(count).fill(Infinity);
  const max = new Float64Array(count).fill(-Infinity);
  const [, ny, nx] = shape;
  let index = 0;
  for (let z = 0; z < shape[0]; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, index++) {
        const s = axis === 0 ? z : axis === 1 ? y : x;
        const v = data[index]!;
        if (v < min[s]!) min[s] = v;
        if (v > max[s]!) max[s] = v;
      }
    }
  }
  return { min, max };
}

function clipSlices(data: Float32Array, shape: Shape3, axis: 0 | 1 | 2, min: Float64Array, max: Float64Array): void {
  const [, ny, nx] = shape;
  let index = 0;
  for (let z = 0; z < shape[0]; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, index++) {
        const s = axis === 0 ? z : axis === 1 ? y : x;
        const v = data[index]!;
        if (v < min[s]!) data[index] = min[s]!;
        else if (v > max[s]!) data[index] = max[s]!;
      }
    }
  }
}

function arrayRange(data: NumericArray): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

function sameShape(a: Shape3, b: Shape3): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}

/** Resize one image channel to `newShape` (see the file comment). Always returns a new float32 array. */
export function resampleVolumeToShape(
  volume: Array3,
  newShape: Shape3,
  currentSpacing: Shape3,
  targetSpacing: Shape3,
  settings: Partial<ResampleSettings> = {},
): Array3<Float32Array> {
  const s = { ...DATA_RESAMPLING, ...settings };
  const shape = volume.shape;
  if (sameShape(shape, newShape)) return { data: Float32Array.from(volume.data), shape: [...shape] };
  const axis = separateZAxis(currentSpacing, targetSpacing, s);
  if (axis === null) {
    const data = resizeArray(volume.data, shape, newShape, s.order);
    if (s.order > 0) {
      const [min, max] = arrayRange(volume.data);
      for (let i = 0; i < data.length; i++) data[i] = Math.min(Math.max(data[i]!, min), max);
    }
    return { data, shape: [...newShape] };
  }
  // In-plane, slice by slice (skimage clips each slice to its own range), then along the axis.
  const inPlaneShape: Shape3 = [...newShape];
  inPlaneShape[axis] = shape[axis];
  let data = resizeArray(volume.data, shape, inPlaneShape, s.order, otherAxes(axis));
  if (s.order > 0) {
    const { min, max } = sliceRanges(volume.data, shape, axis);
    clipSlices(data, inPlaneShape, axis, min, max);
  }
  if (inPlaneShape[axis] !== newShape[axis]) data = resampleAxis(data, inPlaneShape, axis, newShape[axis], s.orderZ);
  return { data, shape: [...newShape] };
}

/** Resample one image channel from `currentSpacing` to `targetSpacing`. */
export function resampleVolume(
  volume: Array3,
  currentSpacing: Shape3,
  targetSpacing: Shape3,
  settings: Partial<ResampleSettings> = {},
): Array3<Float32Array> {
  const newShape = computeNewShape(volume.shape, currentSpacing, targetSpacing);
  return resampleVolumeToShape(volume, newShape, currentSpacing, targetSpacing, settings);
}

function sortedLabels(data: NumericArray): number[] {
  const seen = new Set<number>();
  for (let i = 0; i < data.length; i++) seen.add(data[i]!);
  return [...seen].sort((a, b) => a - b);
}

/** batchgenerators `resize_segmentation` on the axes whose size changes. */
function resizeLabels(data: NumericArray, shape: Shape3, newShape: Shape3, order: InterpolationOrder): Int8Array {
  if (order === 1) return resizeLabelsLinear(data, shape, newShape);
  const output = new Int8Array(newShape[0] * newShape[1] * newShape[2]);
  if (order === 0) {
    const resized = resizeArray(data, shape, newShape, 0);
    for (let i = 0; i < output.length; i++) output[i] = resized[i]!;
    return output;
  }
  // Cubic one-hot (not used by nnU-Net's defaults): separable passes, ties may round differently.
  const oneHot = new Uint8Array(data.length);
  for (const label of sortedLabels(data)) {
    for (let i = 0; i < data.length; i++) oneHot[i] = data[i] === label ? 1 : 0;
    const resized = resizeArray(oneHot, shape, newShape, order);
    for (let i = 0; i < output.length; i++) if (resized[i]! >= 0.5) output[i] = label;
  }
  return output;
}

/** Resize a label map (int8 values, -1 marks outside the nonzero region) to `newShape`. */
export function resampleSegmentationToShape(
  segmentation: Array3,
  newShape: Shape3,
  currentSpacing: Shape3,
  targetSpacing: Shape3,
  settings: Partial<ResampleSettings> = {},
): Array3<Int8Array> {
  const s = { ...SEGMENTATION_RESAMPLING, ...settings };
  const shape = segmentation.shape;
  if (sameShape(shape, newShape)) return { data: Int8Array.from(segmentation.data), shape: [...shape] };
  const axis = separateZAxis(currentSpacing, targetSpacing, s);
  if (axis === null) {
    return { data: resizeLabels(segmentation.data, shape, newShape, s.order), shape: [...newShape] };
  }
  const inPlaneShape: Shape3 = [...newShape];
  inPlaneShape[axis] = shape[axis];
  const inPlane = resizeLabels(segmentation.data, shape, inPlaneShape, s.order);
  if (inPlaneShape[axis] === newShape[axis]) return { data: inPlane, shape: [...newShape] };
  const output = new Int8Array(newShape[0] * newShape[1] * newShape[2]);
  if (s.orderZ === 0) {
    const resized = resampleAxis(inPlane, inPlaneShape, axis, newShape[axis], 0);
    for (let i = 0; i < output.length; i++) output[i] = resized[i]!;
  } else if (s.orderZ === 1) {
    // nnU-Net: per label, np.round(map_coordinates(one-hot)) > 0.5, i.e. strictly above one half.
    output.set(resizeLabelsLinear(inPlane, inPlaneShape, newShape, 0.5, true));
  } else {
    throw new RangeError('resampleSegmentation: orderZ must be 0 or 1');
  }
  return { data: output, shape: [...newShape] };
}

/** Resample a label map from `currentSpacing` to `targetSpacing`. */
export function resampleSegmentation(
  segmentation: Array3,
  currentSpacing: Shape3,
  targetSpacing: Shape3,
  settings: Partial<ResampleSettings> = {},
): Array3<Int8Array> {
  const newShape = computeNewShape(segmentation.shape, currentSpacing, targetSpacing);
  return resampleSegmentationToShape(segmentation, newShape, currentSpacing, targetSpacing, settings);
}
