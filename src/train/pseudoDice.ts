/**
 * nnU-Net's pseudo Dice on validation patches: argmax of the full-resolution logits, true and
 * false positives and false negatives per foreground class summed over all validation batches,
 * Dice 2TP / (2TP + FP + FN) per class, the mean over classes that have a defined Dice, and an
 * exponential moving average (0.9 old + 0.1 new, first value as is) to pick the best checkpoint.
 * Voxels whose reference is the ignore label count nowhere (nnU-Net's validation_step masks them).
 */

export interface ClassCounts {
  /** Per foreground class 1..C-1 (index 0 is class 1). */
  tp: number[];
  fp: number[];
  fn: number[];
}

export function emptyCounts(numClasses: number): ClassCounts {
  const zeros = (): number[] => Array.from({ length: numClasses - 1 }, () => 0);
  return { tp: zeros(), fp: zeros(), fn: zeros() };
}

/**
 * Add the counts of one prediction / reference pair (class ids, same length) into `counts`,
 * leaving out the voxels whose reference is `ignoreLabel`.
 */
export function accumulateCounts(
  counts: ClassCounts,
  prediction: ArrayLike<number | bigint>,
  reference: ArrayLike<number | bigint>,
  ignoreLabel?: number,
): ClassCounts {
  if (prediction.length !== reference.length) throw new Error(`prediction has ${prediction.length} voxels, reference ${reference.length}`);
  const numForeground = counts.tp.length;
  const tp = new Float64Array(numForeground + 1);
  const predicted = new Float64Array(numForeground + 1);
  const actual = new Float64Array(numForeground + 1);
  for (let i = 0; i < prediction.length; i++) {
    const p = Number(prediction[i]);
    const r = Number(reference[i]);
    if (r === ignoreLabel) continue;
    if (p === r) tp[p]!++;
    predicted[p]!++;
    actual[r]!++;
  }
  for (let c = 1; c <= numForeground; c++) {
    counts.tp[c - 1]! += tp[c]!;
    counts.fp[c - 1]! += predicted[c]! - tp[c]!;
    counts.fn[c - 1]! += actual[c]! - tp[c]!;
  }
  return counts;
}

/** Dice per foreground class (NaN where a class is absent from both prediction and reference). */
export function diceFromCounts(counts: ClassCounts): number[] {
  return counts.tp.map((tp, i) => {
    const denominator = 2 * tp + counts.fp[i]! + counts.fn[i]!;
    return denominator === 0 ? NaN : (2 * tp) / denominator;
  });
}

/** Mean over the defined values (NaN when none is). */
export function nanMean(values: readonly number[]): number {
  const defined = values.filter((v) => !Number.isNaN(v));
  return defined.length === 0 ? NaN : defined.reduce((a, b) => a + b, 0) / defined.length;
}

export const EMA_DEFAULTS = { keep: 0.9 } as const;

/**
 * The next EMA of the pseudo Dice. An undefined value (NaN: no foreground anywhere) leaves the EMA
 * as it was, where nnU-Net would turn it into NaN for the rest of the run.
 */
export function updateEma(previous: number | null, value: number, keep: number = EMA_DEFAULTS.keep): number | null {
  if (Number.isNaN(value)) return previous;
  return previous === null ? value : keep * previous + (1 - keep) * value;
}
