/**
 * Mirroring test-time augmentation (nnU-Net `_internal_maybe_mirror_and_predict`): the network sees
 * the window as is and flipped along every non-empty combination of the allowed spatial axes; each
 * output is flipped back and the logits are averaged (arithmetic mean). With all three axes that is
 * 8 forward passes per window. Written once as a generator of passes (passes.ts), so libtorch
 * and onnxruntime engines share it.
 */
import { addInPlace, cast, cat, clone, copyInPlace, flip, fromArray, indexSelect, mulInPlace, narrow, scope, type Tensor } from '../tensor/index.js';
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
 * in float32), and returns their mean: the un-mirrored pass first, then addMirroredPasses. Every
 * tensor it creates or receives is disposed before it returns, except the result (and x, which
 * stays the caller's).
 */
export function* mirroredPasses<R>(x: Tensor, axes: readonly SpatialAxis[], request: (input: Tensor) => R): PassGenerator<R, Tensor> {
  let total: Tensor | null = null;
  try {
    // The un-mirrored pass (mirrorCombinations' first is the identity).
    const identity = yield request(x);
    total = unmirroredTotal(identity, x);
    if (mirrorCombinations(axes).length > 1) yield* addMirroredPasses(x, total, axes, request, null);
    const result = total;
    total = null;
    return result;
  } finally {
    total?.dispose();
  }
}

/**
 * The un-mirrored pass's logits of x as the float32 total the mirrored passes add into; `identity`
 * is disposed when it is not the result (a network that returns its input gets a copy).
 */
export function unmirroredTotal(identity: Tensor, x: Tensor): Tensor {
  let total = scope(() => (identity.dtype !== 'float32' ? cast(identity, 'float32') : identity));
  if (identity !== total && identity !== x) identity.dispose();
  // A network that returns its input unchanged must not have that input accumulated into.
  if (total === x) total = clone(x);
  return total;
}

/**
 * Turns `total` (the un-mirrored logits of x [B, C, z, y, x], float32 [B, K, z, y, x], from
 * unmirroredTotal) in place into the mean of the passes over every mirror combination of `axes` for
 * the windows `rows` (batch indices, increasing; null: every window); the other windows keep it.
 * Every window selected is the same arithmetic, in the same order, as null; the selected windows'
 * mirrored passes are stacked into forwards of up to B windows. It disposes what it creates.
 */
export function* addMirroredPasses<R>(x: Tensor, total: Tensor, axes: readonly SpatialAxis[], request: (input: Tensor) => R, rows: readonly number[] | null): PassGenerator<R, void> {
  const combinations = mirrorCombinations(axes);
  if (combinations.length === 1 || (rows !== null && rows.length === 0)) return;
  const held: Tensor[] = [];
  try {
    const batch = x.shape[0]!;
    const partial = rows !== null && rows.length < batch;
    const index = partial ? held[held.push(fromArray(Int32Array.from(rows), [rows.length], { device: x.device, dtype: 'int64' })) - 1]! : null;
    const inputs = index !== null ? held[held.push(indexSelect(x, 0, index)) - 1]! : x;
    const sum = index !== null ? held[held.push(indexSelect(total, 0, index)) - 1]! : total;
    // The mirrored passes, several combinations stacked into one forward while it holds at most
    // `batch` windows (a lone selected window of a batch of 2 runs its 7 passes as 4 forwards of 2,
    // not 7 of 1); each one's logits are added in combination order, as one pass per combination does.
    const windows = inputs.shape[0]!;
    const perForward = Math.max(1, Math.floor(batch / windows));
    const mirrored = combinations.slice(1);
    for (let first = 0; first < mirrored.length; first += perForward) {
      const chunk = mirrored.slice(first, first + perForward).map((combination) => combination.map((axis) => axis + 2));
      const input = scope(() => (chunk.length === 1 ? flip(inputs, chunk[0]!) : cat(chunk.map((dims) => flip(inputs, dims)), 0)));
      try {
        const logits = yield request(input);
        try {
          chunk.forEach((dims, j) => scope(() => {
            const part = chunk.length === 1 ? logits : narrow(logits, 0, j * windows, windows);
            addInPlace(sum, flip(part.dtype !== 'float32' ? cast(part, 'float32') : part, dims));
          }));
        } finally {
          if (logits !== input) logits.dispose();
        }
      } finally {
        input.dispose();
      }
    }
    mulInPlace(sum, 1 / combinations.length);
    if (index !== null) rows!.forEach((row, i) => scope(() => copyInPlace(narrow(total, 0, row, 1), narrow(sum, 0, i, 1))));
  } finally {
    for (const tensor of held) tensor.dispose();
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
