/**
 * nnU-Net's training loss: soft Dice (softmax, background excluded, smoothing 1e-5, batch Dice or
 * per-sample Dice as the plan says) plus cross-entropy, summed with deep-supervision weights 1/2^i
 * with the lowest resolution weighted 0 and the rest normalised to sum 1.
 *
 * Batch Dice (nnunetv2/training/loss/dice.py MemoryEfficientSoftDiceLoss): the intersection and
 * the sums are added over the batch before the ratio, one Dice per class; per-sample Dice takes
 * one ratio per sample and class, and the loss is the mean of them.
 *
 * The ignore label (nnunetv2/training/loss/compound_losses.py DC_and_CE_loss with ignore_label):
 * voxels whose target is the ignore label are left out of both terms. The CE ignores them
 * (ignore_index; mean over the other voxels, 0 when every voxel is ignored, where nnU-Net skips
 * the term), and the Dice multiplies prediction and one-hot target by the mask `target != ignore`
 * (loss_mask) after the ignore voxels' target is set to 0. The network has no channel for it.
 */
import {
  add,
  arange,
  cast,
  cat,
  full,
  clamp,
  crossEntropy,
  div,
  eq,
  interpolate,
  mean,
  mul,
  narrow,
  ne,
  neg,
  noGrad,
  reshape,
  softmax,
  squeeze,
  sum,
  type Tensor,
  where,
  zeros,
  type Device,
} from '../tensor/index.js';

/** Defaults for callers without a plan; training passes the plan's batchDice (train lossOptionsFromPlan). */
export const DICE_DEFAULTS = { smooth: 1e-5, batchDice: true, includeBackground: false } as const;

export interface DiceOptions {
  batchDice?: boolean;
  smooth?: number;
  includeBackground?: boolean;
}

/** One-hot float mask [B, C, ...] of an integer label map [B, 1, ...] (no gradient). */
export function oneHotChannels(target: Tensor, numClasses: number, dtype: 'float32' | 'bfloat16' | 'float16' = 'float32'): Tensor {
  return noGrad(() => {
    const classes = reshape(arange(0, numClasses, 1, { dtype: target.dtype, device: target.device }), [1, numClasses, ...target.shape.slice(2).map(() => 1)]);
    return cast(eq(target, classes), dtype);
  });
}

/**
 * Negative soft Dice (as nnU-Net's MemoryEfficientSoftDiceLoss: it returns -dc, so the loss goes to
 * -1). `lossMask` [B, 1, ...] (1 = counted, 0 = left out) multiplies prediction and target.
 */
export function softDiceLoss(logits: Tensor, target: Tensor, options: DiceOptions = {}, lossMask?: Tensor): Tensor {
  const smooth = options.smooth ?? DICE_DEFAULTS.smooth;
  const { intersect, sumPred, sumGt } = softDiceTerms(logits, target, options, lossMask);
  return neg(mean(diceRatio(intersect, sumPred, sumGt, smooth)));
}

/** The Dice's intersection and sums per class ([C'] with batch Dice, else [B, C']). */
function softDiceTerms(logits: Tensor, target: Tensor, options: DiceOptions, lossMask?: Tensor): { intersect: Tensor; sumPred: Tensor; sumGt: Tensor } {
  const batchDice = options.batchDice ?? DICE_DEFAULTS.batchDice;
  const includeBackground = options.includeBackground ?? DICE_DEFAULTS.includeBackground;
  const numClasses = logits.shape[1]!;
  const spatial = logits.shape.slice(2).map((_, i) => i + 2);
  let probabilities = softmax(logits, 1);
  let onehot = oneHotChannels(target, numClasses, 'float32');
  if (!includeBackground) {
    probabilities = narrow(probabilities, 1, 1, numClasses - 1);
    onehot = narrow(onehot, 1, 1, numClasses - 1);
  }
  if (lossMask !== undefined) onehot = noGrad(() => mul(onehot, lossMask));
  const maskedProbabilities = lossMask === undefined ? probabilities : mul(probabilities, lossMask);
  let intersect = sum(mul(maskedProbabilities, onehot), spatial);
  let sumPred = sum(maskedProbabilities, spatial);
  let sumGt = sum(onehot, spatial);
  if (batchDice) {
    intersect = sum(intersect, [0]);
    sumPred = sum(sumPred, [0]);
    sumGt = sum(sumGt, [0]);
  }
  return { intersect, sumPred, sumGt };
}

function diceRatio(intersect: Tensor, sumPred: Tensor, sumGt: Tensor, smooth: number): Tensor {
  return div(add(mul(intersect, 2), smooth), clamp(add(add(sumGt, sumPred), smooth), { min: 1e-8 }));
}

/** Cross-entropy of logits [B, C, ...] against a label map [B, 1, ...] (mean over voxels). */
export function labelCrossEntropy(logits: Tensor, target: Tensor, ignoreIndex?: number): Tensor {
  const labels = squeeze(cast(target, 'int64'), 1);
  return crossEntropy(logits, labels, ignoreIndex === undefined ? { reduction: 'mean' } : { reduction: 'mean', ignoreIndex });
}

export interface DiceCeOptions extends DiceOptions {
  weightCe?: number;
  weightDice?: number;
  /** The dataset's ignore label: its voxels count in neither term (see the file comment). */
  ignoreLabel?: number;
  /**
   * Data-parallel training: the sum over ranks of a vector of this rank's partial sums, whose
   * gradient flows back into this rank's vector unchanged (train's crossRankSum). With it the loss
   * is the loss of the global batch: CE sums and voxel counts and the Dice's intersections and sums
   * (batch Dice) or per-sample Dice values and their count go through it before any ratio.
   */
  crossRank?: (local: Tensor) => Tensor;
}

/** nnU-Net's DC_and_CE_loss: weightCe * CE + weightDice * (-Dice), ignore-label voxels left out. */
export function diceCeLoss(logits: Tensor, target: Tensor, options: DiceCeOptions = {}): Tensor {
  const weightCe = options.weightCe ?? 1;
  const weightDice = options.weightDice ?? 1;
  if (options.crossRank !== undefined) return crossRankDiceCeLoss(logits, target, options, options.crossRank);
  if (options.ignoreLabel === undefined) {
    const ce = labelCrossEntropy(logits, target);
    const dice = softDiceLoss(logits, target, options);
    return add(mul(ce, weightCe), mul(dice, weightDice));
  }
  const ignoreLabel = options.ignoreLabel;
  const { mask, diceTarget, annotated } = noGrad(() => {
    const kept = ne(target, ignoreLabel);
    return { mask: cast(kept, 'float32'), diceTarget: where(kept, target, 0), annotated: sum(cast(kept, 'float32')) };
  });
  // Sum over the annotated voxels / their count: the mean CE, and 0 (not 0/0) when none is annotated.
  const ceSum = crossEntropy(logits, squeeze(cast(target, 'int64'), 1), { reduction: 'sum', ignoreIndex: ignoreLabel });
  const ce = div(ceSum, clamp(annotated, { min: 1 }));
  const dice = softDiceLoss(logits, diceTarget, options, mask);
  return add(mul(ce, weightCe), mul(dice, weightDice));
}

/**
 * diceCeLoss over the ranks' batches together: every mean and every Dice ratio is taken of sums
 * reduced across ranks (one reduction per call), so each rank's value is the global batch's loss
 * and the gradients of the ranks add up to the global batch's gradient.
 */
function crossRankDiceCeLoss(logits: Tensor, target: Tensor, options: DiceCeOptions, crossRank: (local: Tensor) => Tensor): Tensor {
  const smooth = options.smooth ?? DICE_DEFAULTS.smooth;
  const batchDice = options.batchDice ?? DICE_DEFAULTS.batchDice;
  const ignoreLabel = options.ignoreLabel;
  const { mask, diceTarget, annotated } = noGrad(() => {
    if (ignoreLabel === undefined) return { mask: undefined, diceTarget: target, annotated: full([1], target.shape.reduce((a, b) => a * b, 1), { device: target.device }) };
    const kept = ne(target, ignoreLabel);
    return { mask: cast(kept, 'float32'), diceTarget: where(kept, target, 0), annotated: reshape(sum(cast(kept, 'float32')), [1]) };
  });
  const labels = squeeze(cast(target, 'int64'), 1);
  const ceSum = crossEntropy(logits, labels, ignoreLabel === undefined ? { reduction: 'sum' } : { reduction: 'sum', ignoreIndex: ignoreLabel });
  const terms = softDiceTerms(logits, diceTarget, options, mask);
  const f32 = (x: Tensor): Tensor => cast(reshape(x, [-1]), 'float32');
  if (batchDice) return lossOfGlobalSums(crossRank(cat([f32(ceSum), annotated, f32(terms.intersect), f32(terms.sumPred), f32(terms.sumGt)], 0)), options);
  const perSample = diceRatio(terms.intersect, terms.sumPred, terms.sumGt, smooth);
  const count = full([1], perSample.shape.reduce((a, b) => a * b, 1), { device: target.device });
  return lossOfGlobalSums(crossRank(cat([f32(ceSum), annotated, f32(sum(perSample)), count], 0)), options);
}

/**
 * The Dice+CE of the reduced sums: [CE sum, counted voxels, then intersections, prediction sums
 * and target sums per class (batch Dice) or the sum and count of per-sample Dice values].
 */
function lossOfGlobalSums(global: Tensor, options: DiceCeOptions): Tensor {
  const weightCe = options.weightCe ?? 1;
  const weightDice = options.weightDice ?? 1;
  const smooth = options.smooth ?? DICE_DEFAULTS.smooth;
  const ce = div(narrow(global, 0, 0, 1), clamp(narrow(global, 0, 1, 1), { min: 1 }));
  let dice: Tensor;
  if (options.batchDice ?? DICE_DEFAULTS.batchDice) {
    const classes = (global.shape[0]! - 2) / 3;
    dice = mean(diceRatio(narrow(global, 0, 2, classes), narrow(global, 0, 2 + classes, classes), narrow(global, 0, 2 + 2 * classes, classes), smooth));
  } else {
    dice = div(narrow(global, 0, 2, 1), narrow(global, 0, 3, 1));
  }
  return reshape(add(mul(ce, weightCe), mul(neg(dice), weightDice)), []);
}

/**
 * A data-parallel rank's part in diceCeLoss when it has no sample for the loss (a multi-task
 * batch whose task has samples on other ranks only): the same cross-rank reduction, with zeros,
 * so that every rank takes part in the same reductions in the same order; returns the loss of
 * the other ranks' samples (a value without gradient here).
 */
export function crossRankIdle(numClasses: number, options: DiceCeOptions, device: Device): Tensor {
  if (options.crossRank === undefined) throw new Error('crossRankIdle needs options.crossRank');
  const batchDice = options.batchDice ?? DICE_DEFAULTS.batchDice;
  const classes = (options.includeBackground ?? DICE_DEFAULTS.includeBackground) ? numClasses : numClasses - 1;
  return lossOfGlobalSums(options.crossRank(zeros([batchDice ? 2 + 3 * classes : 4], { device })), options);
}

/** Deep-supervision weights for n outputs: 1/2^i, the last set to 0, normalised to sum 1. */
export function deepSupervisionWeights(numOutputs: number): number[] {
  const weights = Array.from({ length: numOutputs }, (_, i) => 1 / 2 ** i);
  if (numOutputs > 1) weights[numOutputs - 1] = 0;
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / total);
}

/**
 * Target shapes of each deep-supervision output: output i has the patch divided by the product of
 * the strides of stages 1..i (nnU-Net rounds shape * scale).
 */
export function deepSupervisionShapes(patchSize: readonly number[], strides: readonly (readonly number[])[], numOutputs: number): number[][] {
  const shapes: number[][] = [];
  const scale = patchSize.map(() => 1);
  for (let i = 0; i < numOutputs; i++) {
    if (i > 0) strides[i]!.forEach((s, axis) => (scale[axis] = scale[axis]! / s));
    shapes.push(patchSize.map((size, axis) => Math.round(size * scale[axis]!)));
  }
  return shapes;
}

/**
 * The label map [B, 1, ...] down-sampled (nearest-exact) to each deep-supervision shape, as
 * batchgeneratorsv2's DownsampleSegForDSTransform does: every low-resolution voxel takes the value
 * of one source voxel, so an ignore-label voxel stays the ignore label and each level's loss masks
 * its own ignore voxels.
 */
export function deepSupervisionTargets(target: Tensor, strides: readonly (readonly number[])[], numOutputs: number): Tensor[] {
  const shapes = deepSupervisionShapes(target.shape.slice(2), strides, numOutputs);
  return noGrad(() =>
    shapes.map((shape, i) => (i === 0 ? target : cast(interpolate(cast(target, 'float32'), { size: shape, mode: 'nearest-exact' }), target.dtype))),
  );
}

/** Weighted sum of a loss over deep-supervision outputs; outputs with weight 0 are not evaluated (as nnU-Net). */
export function deepSupervisionLoss(
  outputs: readonly Tensor[],
  targets: readonly Tensor[],
  loss: (logits: Tensor, target: Tensor) => Tensor,
  weights: readonly number[] = deepSupervisionWeights(outputs.length),
): Tensor {
  if (outputs.length !== targets.length || outputs.length !== weights.length) {
    throw new Error(`deep supervision: ${outputs.length} outputs, ${targets.length} targets, ${weights.length} weights`);
  }
  let total: Tensor | null = null;
  for (let i = 0; i < outputs.length; i++) {
    if (weights[i] === 0) continue;
    const term = mul(loss(outputs[i]!, targets[i]!), weights[i]!);
    total = total === null ? term : add(total, term);
  }
  if (total === null) throw new Error('deep supervision: every weight is 0');
  return total;
}
