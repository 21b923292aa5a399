/**
 * Voxel checks every command that computes on an image runs (STYLE rule 16): no NaN or infinite
 * intensities (they turn every softmax of a window into NaN, and then the mask into background),
 * and only integer values in a label map or a predicted mask (a 0.5 would compare unequal to every
 * label and be read as background). The counts and messages match `lesionseg check`'s issues
 * 'non-finite' and 'bad-label', so that a file `check` refuses is refused the same way by
 * predict, evaluate, plan, preprocess and train.
 */
import { InputError, type TypedArray } from '../core/index.js';

export interface NonFiniteCount {
  nan: number;
  infinite: number;
}

/** NaN and +-Infinity voxels of `data` (integer arrays have none). */
export function nonFiniteCount(data: TypedArray): NonFiniteCount {
  let nan = 0;
  let infinite = 0;
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return { nan, infinite };
  for (let i = 0; i < data.length; i++) {
    const value = data[i]!;
    if (value !== value) nan++;
    else if (value === Infinity || value === -Infinity) infinite++;
  }
  return { nan, infinite };
}

/** The message `check` gives a file with non-finite voxels: '2 NaN and 1 infinite voxels'. */
export function nonFiniteMessage(count: NonFiniteCount): string {
  return `${count.nan} NaN and ${count.infinite} infinite voxels`;
}

/** Throws InputError (code 'non-finite', naming `file`) when `data` holds NaN or infinite voxels. */
export function assertFiniteVoxels(data: TypedArray, file: string): void {
  const count = nonFiniteCount(data);
  if (count.nan + count.infinite > 0) {
    throw new InputError(`${nonFiniteMessage(count)}: the image must hold finite intensities (see lesionseg info)`, { file, code: 'non-finite' });
  }
}

/** The first voxel whose value is not an integer (NaN and infinities included), or undefined. */
export function firstNonIntegerVoxel(data: TypedArray): { index: number; value: number } | undefined {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return undefined;
  for (let i = 0; i < data.length; i++) {
    const value = data[i]!;
    if (!Number.isInteger(value)) return { index: i, value };
  }
  return undefined;
}

/**
 * Throws InputError (code 'bad-label', naming `file` and the first offending value and
 * voxel) unless every voxel of the label map `data` is an integer. `what` says what the file is.
 */
export function assertIntegerLabels(data: TypedArray, file: string, what = 'label map'): void {
  const found = firstNonIntegerVoxel(data);
  if (found !== undefined) {
    throw new InputError(`${what} holds non-integer values (first ${found.value} at voxel ${found.index}): labels must be integers`, { file, code: 'bad-label' });
  }
}
