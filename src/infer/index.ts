/**
 * infer: prediction with trained models, nnU-Net style. Pure parts (window steps and boxes,
 * padding, Gaussian importance map, mirror combinations, logits export to the input geometry),
 * the tensor-level sliding window, the checkpoint reader and the Predictor shell.
 */
export { slidingWindowSteps, slidingWindowBoxes, paddingToPatch, paddedShape, roundHalfEven, type WindowBox, type AxisPadding, type Triple } from './slidingWindow.js';
export { gaussianImportanceMap, GAUSSIAN_DEFAULTS } from './gaussian.js';
export { mirrorCombinations, predictMirrored, ALL_MIRROR_AXES, type SpatialAxis } from './mirroring.js';
export {
  slidingWindowPredict,
  SLIDING_WINDOW_DEFAULTS,
  type SlidingWindowOptions,
  type InferencePrecision,
  type LogitsFunction,
} from './slidingWindowPredict.js';
export { exportPrediction, LOGITS_RESAMPLING, type ExportOptions, type ExportedPrediction } from './export.js';
export {
  readInferenceCheckpoint,
  buildInferenceNetwork,
  resolveCheckpoints,
  checkpointBase,
  INFERENCE_ARCHITECTURES,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSIONS,
  FINAL_CHECKPOINT,
  type InferenceCheckpoint,
  type InferenceArchitecture,
  type CheckpointChoice,
  type ReadCheckpointOptions,
  type SegmentationNetwork,
} from './checkpoint.js';
export { resolveNnunetCheckpoints, readNnunetInferenceCheckpoint, type ModelFold } from './nnunetCheckpoint.js';
export { Predictor, type PredictorOptions, type PredictCaseOptions, type CasePrediction } from './predictor.js';
export { collectPredictionCases, probabilityFile, type PredictionCase } from './inputs.js';
export { predictFiles, type PredictFilesOptions, type PredictFilesResult, type PredictedCaseRecord } from './predictFiles.js';
