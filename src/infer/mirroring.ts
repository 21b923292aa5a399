/**
 * Mirroring test-time augmentation (nnU-Net `_internal_maybe_mirror_and_predict`): the network sees
 * the window as is and flipped along every non-empty combination of the allowed spatial axes; each
 * output is flipped back and the logits are averaged (arithmetic mean). With all three axes that is
 * 8 forward passes per window. Written once as a generator of passes (passes.ts), so libtorch
 * and onnxruntime engines share it.
 */
import { addInPlace, cast, clone, flip, mulInPlace, scope, type Tensor } from '../tensor/index.js';
import { drivePasses, type PassGenerator } from './passes.js';

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
 * The mirror passes of x [B, C, z, y, x] as a generator (passes.ts): it yields `request(input)` for
 * each flipped input and receives that pass's logits [B, K, z, y, x] (any float dtype; accumulated
 * in float32), and returns their mean. Every tensor it creates or receives is disposed before it
 * returns, except the result (and x, which stays the caller's).
 */
export function* mirroredPasses<R>(x: Tensor, axes: readonly SpatialAxis[], request: (input: Tensor) => R): PassGenerator<R, Tensor> {
  const combinations = mirrorCombinations(axes);
  let total: Tensor | null = null;
  try {
    for (const combination of combinations) {
      const dims = combination.map((axis) => axis + 2);
      const input = dims.length > 0 ? scope(() => flip(x, dims)) : x;
      let output: Tensor;
      try {
        const logits = yield request(input);
        output = scope(() => {
          const asFloat = logits.dtype !== 'float32' ? cast(logits, 'float32') : logits;
          return dims.length > 0 ? flip(asFloat, dims) : asFloat;
        });
        if (logits !== output && logits !== x) logits.dispose();
      } finally {
        if (input !== x) input.dispose();
      }
      if (total === null) {
        // A network that returns its input unchanged must not have that input accumulated into.
        total = output === x ? clone(x) : output;
      } else {
        addInPlace(total, output);
        if (output !== x) output.dispose();
      }
    }
    if (combinations.length > 1) mulInPlace(total!, 1 / combinations.length);
    const result = total!;
    total = null;
    return result;
  } finally {
    total?.dispose();
  }
}

/**
 * The mean of `forward` over the mirror combinations of `axes` for x of shape [B, C, z, y, x]:
 * forward returns logits [B, K, z, y, x] (any float dtype; accumulated in float32). `axes` empty
 * means a single plain pass. Each pass's intermediates are released before the next one.
 */
export function predictMirrored(forward: (x: Tensor) => Tensor, x: Tensor, axes: readonly SpatialAxis[]): Tensor {
  return drivePasses(mirroredPasses(x, axes, (input) => input), forward);
}
