/**
 * What nnU-Net's configurations other than 3d_fullres change in prediction (nnunetv2
 * inference/predict_from_raw_data.py, data_iterators.py; read, not translated):
 * - `2d` (plan spatialDims 2): the network is 2D, built as the 3D one with kernel depth 1
 *   (src/models nnunetSpatialDims), and its windows are one slice deep: nnU-Net's predictor tiles
 *   each slice of the preprocessed volume with the 2D patch and step, and weights with the 2D
 *   Gaussian, which is what our 3D sliding window does with patch [1, y, x] and a z step of one
 *   slice (axisStepFractions). Its mirror axes are the slice's (y, x), mapped when the checkpoint
 *   is read.
 * - `3d_cascade_fullres` (plan previousStage): the previous stage (3d_lowres) predicts the case
 *   first, its mask in the input geometry is preprocessed with the cascade's plan as a
 *   segmentation (transpose, crop with -1 outside the image's nonzero region, resampled as
 *   nnU-Net resamples labels) and becomes one channel per foreground label after the image
 *   channels (preprocessAfterPreviousStage; data's withPreviousStage, which training shares, is
 *   nnU-Net's convert_labelmap_to_one_hot, -1 and background give 0). The Predictor holds the
 *   previous stage and calls these.
 */
import type { Volume } from '../core/index.js';
import { preprocessCase, previousStageChannelCount, withPreviousStage, type Plan, type PlanConfiguration, type PreprocessedCase } from '../data/index.js';
import type { Triple } from './slidingWindow.js';

/** The step fraction per axis [z, y, x]: a 2D configuration steps one slice at a time along z (its patch is 1 deep). */
export function axisStepFractions(configuration: Pick<PlanConfiguration, 'spatialDims'>, stepFraction: number): Triple {
  return configuration.spatialDims === 2 ? [1, stepFraction, stepFraction] : [stepFraction, stepFraction, stepFraction];
}

/** Extra input channels of a configuration: a cascade stage takes one per foreground label of its `numClasses` (incl. background). */
export function previousStageChannels(configuration: Pick<PlanConfiguration, 'previousStage'>, numClasses: number): number {
  return previousStageChannelCount(configuration.previousStage, numClasses);
}

/**
 * `images` preprocessed with the cascade's `plan` together with the previous stage's mask in the
 * input geometry as their label map (`seg`, -1 outside the nonzero region): the cascade's extra
 * input before the one-hot, in prediction and for training (previousStageInputs.ts).
 */
export function previousStageLabelMap(images: readonly Volume[], previousMask: Volume, plan: Plan, caseId: string): PreprocessedCase {
  return preprocessCase(images, previousMask, plan, { caseId, foregroundLabels: [] });
}

/**
 * A cascade stage's input: `images` preprocessed with `plan` together with `previousMask` (the
 * previous stage's mask in the input geometry) as their label map, so that it is transposed,
 * cropped and resampled as nnU-Net's run_case treats `seg_from_prev_stage_file`, then one-hot
 * after the image channels. No class locations are sampled (prediction does not need them).
 */
export function preprocessAfterPreviousStage(images: readonly Volume[], previousMask: Volume, plan: Plan, caseId: string, numClasses: number): PreprocessedCase {
  const preprocessed = previousStageLabelMap(images, previousMask, plan, caseId);
  return { ...preprocessed, ...withPreviousStage(preprocessed.data, preprocessed.shape, preprocessed.seg!, numClasses) };
}
