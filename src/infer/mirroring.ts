/**
 * Mirroring test-time augmentation (nnU-Net `_internal_maybe_mirror_and_predict`): the network sees
 * the window as is and flipped along every non-empty combination of the allowed spatial axes; each
 * output is flipped back and the logits are averaged (arithmetic mean). With all three axes that is
 * 8 forward passes per window.
 */
import { addInPlace, cast, clone, flip, mulInPlace, scope, type Tensor } from '../tensor/index.js';

/** Spatial axes of a [z, y, x] volume: 0 = z, 1 = y, 2 = x. */
export type SpatialAxis = 0 | 1 | 2;

export const ALL_MIRROR_AXES: readonly SpatialAxis[] = Object.freeze([0, 1, 2]);

/**
 * Every combination of `axes` to flip, the identity (empty list) first, then the combinations of
 * one axis, two axes, ... each in lexicographic order (itertools.combinations order).
 */
export function mirrorCombinations(axes: readonly SpatialAxis[]): SpatialAxis[][] {
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  for (const axis of sorted) if (axis !== 0 && axis !== 1 && axis !== 2) throw new RangeError(`mirror axis ${String(axis)} is not 0, 1 or 2`);
  const result: SpatialAxis[][] = [[]];
  const choose = (size: number, from: number, picked: SpatialAxis[]): void => {
    if (picked.length === size) {
      result.push([...picked]);
      return;
    }
    for (let i = from; i < sorted.length; i++) choose(size, i + 1, [...picked, sorted[i]!]);
  };
  for (let size = 1; size <= sorted.length; size++) choose(size, 0, []);
  return result;
}

/**
 * The mean of `forward` over the mirror combinations of `axes` for x of shape [B, C, z, y, x]:
 * forward returns logits [B, K, z, y, x] (any float dtype; accumulated in float32). `axes` empty
 * means a single plain pass. Each pass's intermediates are released before the next one.
 */
export function predictMirrored(forward: (x: Tensor) => Tensor, x: Tensor, axes: readonly SpatialAxis[]): Tensor {
  const combinations = mirrorCombinations(axes);
  let total: Tensor | null = null;
  for (const combination of combinations) {
    const dims = combination.map((axis) => axis + 2);
    const output = scope(() => {
      const input = dims.length > 0 ? flip(x, dims) : x;
      let logits = forward(input);
      if (logits.dtype !== 'float32') logits = cast(logits, 'float32');
      return dims.length > 0 ? flip(logits, dims) : logits;
    });
    if (total === null) {
      // A network that returns its input unchanged must not have that input accumulated into.
      total = output === x ? clone(x) : output;
    } else {
      addInPlace(total, output);
      output.dispose();
    }
  }
  if (combinations.length > 1) mulInPlace(total!, 1 / combinations.length);
  return total!;
}
