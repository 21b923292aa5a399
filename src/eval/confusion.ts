/**
 * Voxel-overlap metrics from the confusion counts of two binary masks.
 *
 * Every ratio whose denominator is 0 is NaN (MONAI's convention for confusion-matrix metrics;
 * scikit-learn would return 0 with a warning): NaN values are left out of means and counted.
 * - DSC = 2TP / (2TP + FP + FN): NaN when both masks are empty (the library's
 *   compute_dice_coefficient does the same); 0 when exactly one is empty.
 * - Sensitivity = TP / (TP + FN): NaN without reference foreground.
 * - Precision = TP / (TP + FP): NaN without predicted foreground.
 * - Specificity = TN / (TN + FP): NaN without reference background.
 * - Accuracy = (TP + TN) / N.
 * - F1 per case = 2 * precision * sensitivity / (precision + sensitivity) = DSC for binary masks
 *   (it is computed from the counts, so it is NaN exactly when DSC is).
 *
 * An ignore mask (the voxels whose reference is the dataset's ignore label) removes its voxels
 * from every count, TN included, as nnU-Net's compute_tp_fp_fn_tn does
 * (nnunetv2/evaluation/evaluate_predictions.py).
 */
import { checkMaskPair, type BinaryMask } from './mask.js';

export interface ConfusionCounts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

/**
 * Counts of true/false positives/negatives; any non-zero voxel is foreground. Voxels set in
 * `ignore` count nowhere.
 */
export function confusion(pred: BinaryMask, ref: BinaryMask, ignore?: BinaryMask): ConfusionCounts {
  checkMaskPair(pred, ref, 'confusion');
  if (ignore !== undefined) checkMaskPair(pred, ignore, 'confusion (ignore mask)');
  const p = pred.data;
  const r = ref.data;
  const skip = ignore?.data;
  let tp = 0;
  let predCount = 0;
  let refCount = 0;
  let counted = 0;
  for (let i = 0; i < p.length; i++) {
    if (skip !== undefined && skip[i] !== 0) continue;
    counted++;
    const a = p[i] !== 0 ? 1 : 0;
    const b = r[i] !== 0 ? 1 : 0;
    predCount += a;
    refCount += b;
    tp += a & b;
  }
  const fp = predCount - tp;
  const fn = refCount - tp;
  return { tp, fp, fn, tn: counted - tp - fp - fn };
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? NaN : numerator / denominator;
}

export function diceFromCounts(c: ConfusionCounts): number {
  return ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn);
}
export function sensitivityFromCounts(c: ConfusionCounts): number {
  return ratio(c.tp, c.tp + c.fn);
}
export function precisionFromCounts(c: ConfusionCounts): number {
  return ratio(c.tp, c.tp + c.fp);
}
export function specificityFromCounts(c: ConfusionCounts): number {
  return ratio(c.tn, c.tn + c.fp);
}
export function accuracyFromCounts(c: ConfusionCounts): number {
  return ratio(c.tp + c.tn, c.tp + c.fp + c.fn + c.tn);
}
/** Per-case F1 from the counts: equal to DSC (not the paper's "F1 of the means", see summary.ts). */
export function f1FromCounts(c: ConfusionCounts): number {
  return diceFromCounts(c);
}

/** Volumetric Dice of two masks (NaN when both are empty). */
export function dice(pred: BinaryMask, ref: BinaryMask): number {
  return diceFromCounts(confusion(pred, ref));
}
