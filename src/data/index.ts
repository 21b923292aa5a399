/**
 * data: nnU-Net-style fingerprint, experiment planning (plans file) and preprocessing (crop,
 * normalise, resample, cache). Imports core and io; works on host typed arrays.
 */
export { computeFingerprint, fingerprintCase, summarizeFingerprint, datasetInfo, FingerprintPool } from './fingerprint.js';
export type { DatasetFingerprint, DatasetInfo, CaseFingerprint, CaseFacts, FingerprintOptions } from './fingerprint.js';
export { intensityProperties, percentile, median } from './fingerprint_stats.js';
export {
  planExperiment,
  planConfiguration,
  determineTargetSpacing,
  determineTranspose,
  ANISOTROPY_THRESHOLD,
} from './planning.js';
export type { ConfigurationInput, ConfigurationResult } from './planning.js';
export { planDatasets, type PlanDatasetsOptions } from './planning_datasets.js';
export { PRESETS, PRESET_NAMES, getPreset, type PlanPreset, type PresetName, type PatchRule, type BatchRule } from './planning_presets.js';
export { loadPlan, savePlan, validatePlan, PLAN_VERSION, CONFIGURATION_NAMES, DEFAULT_CONFIGURATION, type ConfigurationName } from './planning_schema.js';
export { configurationName, planConfigurationNames, selectConfiguration } from './planning_configurations.js';
export type {
  Plan,
  PlanDataset,
  PlanConfiguration,
  NetworkPlan,
  ChannelNormalizationPlan,
  FingerprintSummary,
} from './planning_schema.js';
export { poolAndConvProps, convFeatureMapSize, featuresPerStage, padShape, type Topology, type Triple } from './planning_topology.js';
export { unetConfigFromPlan, type UNetConfigFromPlan } from './planning_unet.js';
export { caseTargetSpacing, preprocessCase, sampleClassLocations, transposeArray } from './preprocess.js';
export type { PreprocessedCase, CaseProperties, PreprocessCaseOptions, PreprocessSeconds } from './preprocess.js';
export { preprocessDataset, checkPreprocessing, type PreprocessDatasetOptions, type PreprocessDatasetResult } from './preprocess_dataset.js';
export { checkDatasets, ensureChecked, assertPlanCovers, assertCacheFits, DEFAULT_CACHE_OPTIONS, type CheckedDataset, type DatasetInput, type CacheOptions } from './validate_datasets.js';
export { casePaths, isCaseComplete, planDigest, type CachedCaseProperties } from './preprocess_case_io.js';
export {
  resampleVolume,
  resampleVolumeToShape,
  resampleSegmentation,
  resampleSegmentationToShape,
  computeNewShape,
  separateZAxis,
  DATA_RESAMPLING,
  SEGMENTATION_RESAMPLING,
} from './resample.js';
export type { ResampleSettings, Array3, InterpolationOrder } from './resample.js';
export { cropToNonzero, nonzeroMask, fillHoles, boundingBox, OUTSIDE_LABEL, type BoundingBox, type CropResult } from './crop.js';
export {
  ctNormalize,
  zscoreNormalize,
  rescaleTo01,
  rgbTo01,
  normalizeChannel,
  normalizationForChannel,
  type NormalizationScheme,
  type IntensityProperties,
} from './normalize.js';
export * from './sampling/index.js';
export { withPreviousStage, previousStageChannelCount, previousStageFile } from './previous_stage.js';
export { planFromNnunet, type NnunetNetwork, type NnunetPlanResult } from './nnunet_plans.js';
