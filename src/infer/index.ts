/**
 * infer: prediction with trained models, nnU-Net style. Pure parts (window steps and boxes,
 * padding, Gaussian importance map, mirror combinations, logits export to the input geometry),
 * the tensor-level sliding window, the checkpoint reader and the Predictor shell.
 */
export { slidingWindowSteps, slidingWindowBoxes, paddingToPatch, paddedShape, roundHalfEven, type WindowBox, type AxisPadding, type Triple } from './slidingWindow.js';
export { gaussianImportanceMap, GAUSSIAN_DEFAULTS } from './gaussian.js';
export { mirrorCombinations, mirroredPasses, predictMirrored, ALL_MIRROR_AXES, type SpatialAxis } from './mirroring.js';
export { ADAPTIVE_MIRROR_RULE, FULL_MIRROR_RULE, TTA_MODES, MirrorDecisions, mirrorRuleOf, topTwoMargins, type MirrorRule, type TtaMode } from './adaptiveMirroring.js';
export { type UniformWindows, findUniformWindows, uniformInput, uniformMirroredMean } from './uniformWindows.js';
export { drivePasses, drivePassesAsync, type PassGenerator } from './passes.js';
export { TorchEngine, isWindowEngine, ENGINE_KINDS, type EngineKind, type EngineFactory, type WindowEngine } from './engine.js';
export {
  slidingWindowPredict,
  slidingWindowPredictAsync,
  SLIDING_WINDOW_DEFAULTS,
  FAST_MODE,
  BACKGROUND_LOGIT,
  type WindowCounts,
  type AsyncLogitsFunction,
  type WindowPass,
  type SlidingWindowOptions,
  type InferencePrecision,
  type LogitsFunction,
} from './slidingWindowPredict.js';
export { exportPrediction, LOGITS_RESAMPLING, type ExportOptions, type ExportedPrediction } from './export.js';
// The model reader lives in src/checkpoint (the one door to every checkpoint kind); these are the
// names prediction's callers use.
export {
  readInferenceCheckpoint,
  buildInferenceNetwork,
  resolveCheckpoints,
  resolveNnunetCheckpoints,
  checkpointBase,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSIONS,
  FINAL_CHECKPOINT,
  type InferenceCheckpoint,
  type CheckpointChoice,
  type ReadCheckpointOptions,
  type SegmentationNetwork,
  type ModelFold,
} from '../checkpoint/index.js';
export { Predictor, type PredictorOptions, type PredictCaseOptions, type CasePrediction, type CaseStageSeconds, type CaseStagePeaks } from './predictor.js';
export { largestComponentAbove, normalizedCtThreshold, windowsTouchingMask, BODY_THRESHOLD_HU, BODY_MARGIN_VOXELS } from './bodyMask.js';
export { collectPredictionCases, probabilityFile, type PredictionCase } from './inputs.js';
export { PredictorEnsemble, loadModels, argmax, type LoadModelsOptions } from './ensemble.js';
export { readPostprocessing, resolvePostprocessingFile, postprocessingFilesIn, applyPostprocessing, largestComponents26, describePostprocessing, POSTPROCESSING_FILES, NNUNET_REMOVE_ALL_BUT_LARGEST, type Postprocessing, type PostprocessingStep } from './postprocessing.js';
export { sigmoidInPlace, writeRegion, regionsToSegmentation } from './regions.js';
export { predictFiles, formatCaseStages, type PredictFilesOptions, type PredictFilesResult, type PredictedCaseRecord } from './predictFiles.js';
export { OUTPUT_TYPES, isDicomInput, checkDicomTools, convertSeriesToWork, removeDicomWork, type OutputType } from './dicomInput.js';
export { openInputVolumes, type InputKind, type InputSource, type InputVolumes, type RetrievedSeries } from './inputVolume.js';
export { choosePacsSeries, predictPacsSeries, retrievePacsSeries, studySeries, PACS_OUTPUT_TYPES, type PacsSeries, type PacsPredictionResult } from './pacsInput.js';
export { PacsJournal, MAX_ATTEMPTS, type JournalEntry } from './pacsJournal.js';
export { watchPacs, watchPass, dicomDate, type WatchOptions, type PassSummary } from './pacsWatch.js';
export { modelLabels, requireModelLabels, NamedLabelModel, type ModelLabels, type NamedLabelModelOptions } from './labelModel.js';
export { previousStageLabelMap } from './configurations.js';
export { lowresPreviousStage, LOWRES_CONFIGURATION, type LowresPreviousStage, type CascadeTrainingInputOptions } from './previousStageInputs.js';
