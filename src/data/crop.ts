/**
 * Crop to the nonzero region, as nnU-Net does before planning and preprocessing
 * (nnunetv2 preprocessing/cropping/cropping.py, NNUNET.md section 2): the mask is "any channel
 * != 0" with its holes filled (scipy `binary_fill_holes`: background not 6-connected to the volume
 * border), the crop is the mask's bounding box (the whole volume when the mask is empty), and
 * label voxels that are 0 and outside the mask become -1, the "outside" marker.
 */
import type { Shape3 } from '../core/index.js';
import type { NumericArray } from './resample_axis.js';

/** Half-open [start, end) per axis, in [z, y, x] order (nnU-Net `bbox_used_for_cropping`). */
export type BoundingBox = [[number, number], [number, number], [number, number]];

/** The label value given to background voxels outside the nonzero mask. */
export const OUTSIDE_LABEL = -1;

/** Fill the holes of a binary mask in place: background not 6-connected to the border becomes 1. */
export function fillHoles(mask: Uint8Array, shape: Shape3): Uint8Array {
  const [nz, ny, nx] = shape;
  const plane = ny * nx;
  const total = nz * plane;
  // 0 = foreground or not yet reached background, 1 = background reached from the border.
  const reached = new Uint8Array(total);
  let queue = new Int32Array(Math.min(total, 1 << 20));
  let head = 0;
  let size = 0;
  const push = (index: number): void => {
    if (mask[index] !== 0 || reached[index] !== 0) return;
    reached[index] = 1;
    if (size === queue.length) {
      // Grow the ring buffer, unrolling it so head is at 0.
      const grown = new Int32Array(Math.min(total, queue.length * 2));
      for (let k = 0; k < size; k++) grown[k] = queue[(head + k) % queue.length]!;
      queue = grown;
      head = 0;
    }
    queue[(head + size) % queue.length] = index;
    size++;
  };
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        if (z === 0 || z === nz - 1 || y === 0 || y === ny - 1 || x === 0 || x === nx - 1) push(z * plane + y * nx + x);
      }
    }
  }
  while (size > 0) {
    const index = queue[head]!;
    head = (head + 1) % queue.length;
    size--;
    const z = Math.floor(index / plane);
    const rest = index - z * plane;
    const y = Math.floor(rest / nx);
    const x = rest - y * nx;
    if (z > 0) push(index - plane);
    if (z < nz - 1) push(index + plane);
    if (y > 0) push(index - nx);
    if (y < ny - 1) push(index + nx);
    if (x > 0) push(index - 1);
    if (x < nx - 1) push(index + 1);
  }
  for (let i = 0; i < total; i++) mask[i] = reached[i] === 0 ? 1 : 0;
  return mask;
}

/** nnU-Net `create_nonzero_mask`: any channel != 0, holes filled. */
export function nonzeroMask(channels: readonly NumericArray[], shape: Shape3): Uint8Array {
  const total = shape[0] * shape[1] * shape[2];
  const mask = new Uint8Array(total);
  for (const channel of channels) {
    for (let i = 0; i < total; i++) if (channel[i] !== 0) mask[i] = 1;
  }
  return fillHoles(mask, shape);
}

/** Bounding box of the mask's nonzero voxels; the whole volume when it has none. */
export function boundingBox(mask: NumericArray, shape: Shape3): BoundingBox {
  const [nz, ny, nx] = shape;
  const low = [nz, ny, nx];
  const high = [-1, -1, -1];
  let index = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, index++) {
        if (mask[index] === 0) continue;
        if (z < low[0]!) low[0] = z;
        if (z > high[0]!) high[0] = z;
        if (y < low[1]!) low[1] = y;
        if (y > high[1]!) high[1] = y;
        if (x < low[2]!) low[2] = x;
        if (x > high[2]!) high[2] = x;
      }
    }
  }
  if (high[0] === -1) return [[0, nz], [0, ny], [0, nx]];
  return [
    [low[0]!, high[0]! + 1],
    [low[1]!, high[1]! + 1],
    [low[2]!, high[2]! + 1],
  ];
}

export function boxShape(box: BoundingBox): Shape3 {
  return [box[0][1] - box[0][0], box[1][1] - box[1][0], box[2][1] - box[2][0]];
}

/** Copy the box out of a [z, y, x] array into a new array made by `create`. */
export function cropArray<T extends NumericArray & { [index: number]: number }>(
  source: NumericArray,
  shape: Shape3,
  box: BoundingBox,
  create: (length: number) => T,
): T {
  const [, ny, nx] = shape;
  const [cz, cy, cx] = boxShape(box);
  const output = create(cz * cy * cx);
  let to = 0;
  for (let z = box[0][0]; z < box[0][1]; z++) {
    for (let y = box[1][0]; y < box[1][1]; y++) {
      const from = (z * ny + y) * nx + box[2][0];
      for (let x = 0; x < cx; x++) output[to++] = source[from + x]!;
    }
  }
  return output;
}

export interface CropResult {
  /** The cropped channels as float32 (nnU-Net casts images to float32 first). */
  channels: Float32Array[];
  /** The cropped label map with -1 outside the mask; made of 0 / -1 when no label was given. */
  segmentation: Int8Array;
  /** The cropped nonzero mask (1 inside). */
  mask: Uint8Array;
  shape: Shape3;
  bbox: BoundingBox;
}

/** nnU-Net `crop_to_nonzero` for the channels of one case and its label map (or null). */
export function cropToNonzero(
  channels: readonly NumericArray[],
  shape: Shape3,
  segmentation: NumericArray | null,
): CropResult {
  const fullMask = nonzeroMask(channels, shape);
  const bbox = boundingBox(fullMask, shape);
  const croppedShape = boxShape(bbox);
  const mask = cropArray(fullMask, shape, bbox, (n) => new Uint8Array(n));
  const croppedChannels = channels.map((channel) => cropArray(channel, shape, bbox, (n) => new Float32Array(n)));
  const seg =
    segmentation === null
      ? new Int8Array(mask.length)
      : cropArray(segmentation, shape, bbox, (n) => new Int8Array(n));
  for (let i = 0; i < seg.length; i++) if (mask[i] === 0 && seg[i] === 0) seg[i] = OUTSIDE_LABEL;
  return { channels: croppedChannels, segmentation: seg, mask, shape: croppedShape, bbox };
}
