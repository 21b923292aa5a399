/**
 * Windows whose input holds one value per channel (issue 24): a CT's air outside the body, clipped
 * by the CT normalisation to the lower bound of the foreground's intensities (nnU-Net's
 * CTNormalization clips to the 0.5th percentile), is one constant over every window wholly in it:
 * about a fifth of a chest CT's windows. The network maps the same input to the same logits, so one
 * forward pass of that input serves every such window, and its mirrored passes are its own logits
 * flipped (flipping a constant input leaves it unchanged). The blended result is the one every
 * window run gives, for any model (nnU-Net's included), up to the last bits that the batch size
 * already changes (oneDNN picks its kernels by batch). The windows found here still take part in
 * everything else (blending, the adaptive rule's decisions); only their forward passes are shared.
 */
import { addInPlace, amax, amin, cat, clone, flip, full, mulInPlace, narrow, scope, type Tensor } from '../tensor/index.js';
import { mirrorCombinations, type SpatialAxis } from './mirroring.js';
import type { Triple, WindowBox } from './slidingWindow.js';

export interface UniformWindows {
  /** Per window (the order of `boxes`): the index into `values` of its input, or -1 when it is not uniform. */
  kind: Int32Array;
  /** The distinct uniform inputs, one value per channel each. */
  values: number[][];
}

/**
 * Which windows of `padded` [C, z, y, x] hold one value per channel. A NaN anywhere makes a
 * window non-uniform (NaN equals nothing), so it runs as any other.
 */
export function findUniformWindows(padded: Tensor, boxes: readonly WindowBox[], patch: Triple): UniformWindows {
  const kind = new Int32Array(boxes.length).fill(-1);
  const values: number[][] = [];
  const known = new Map<string, number>();
  boxes.forEach((box, i) => {
    const [low, high] = scope(() => {
      let view = padded;
      for (let axis = 0; axis < 3; axis++) view = narrow(view, axis + 1, box.start[axis]!, patch[axis]!);
      return [amin(view, [1, 2, 3]).toFloat32Array(), amax(view, [1, 2, 3]).toFloat32Array()];
    });
    if (!low!.every((v, c) => v === high![c])) return;
    const key = Array.from(low!, String).join(',');
    let index = known.get(key);
    if (index === undefined) {
      index = values.push(Array.from(low!)) - 1;
      known.set(key, index);
    }
    kind[i] = index;
  });
  return { kind, values };
}

/** The input [batch, C, z, y, x] holding `values[c]` in channel c, of `like`'s dtype and device. */
export function uniformInput(values: readonly number[], batch: number, patch: Triple, like: Tensor): Tensor {
  return scope(() => cat(values.map((v) => full([batch, 1, ...patch], v, { dtype: like.dtype, device: like.device })), 1));
}

/**
 * The mean over the mirror combinations of `axes` of `logits` [1, K, z, y, x] flipped: what the
 * mirrored passes of a uniform window add up to, in addMirroredPasses' order (the un-mirrored
 * logits, then each combination's added, then the division).
 */
export function uniformMirroredMean(logits: Tensor, axes: readonly SpatialAxis[]): Tensor {
  const combinations = mirrorCombinations(axes);
  const total = clone(logits);
  for (const combination of combinations.slice(1)) scope(() => addInPlace(total, flip(logits, combination.map((axis) => axis + 2))));
  mulInPlace(total, 1 / combinations.length);
  return total;
}
