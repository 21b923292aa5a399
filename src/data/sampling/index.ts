/**
 * data/sampling: nnU-Net's patch sampling (foreground oversampling, enlarged patches), its default
 * data augmentation as replayable sample/apply transforms, and the prefetching batch loader that
 * the trainer reads HostBatches from.
 */
export type { HostBatch, BatchLoader, LoaderOptions, BatchSpec, BatchRecord, SampleRecord, PreviousStageInput } from './batch_types.js';
export { createBatchLoader } from './loader.js';
export { batchSpecFromOptions, drawBatch, renderBatch, makeBatch, cropSample, augmentMeta, rankBatchShare, batchChannels } from './batch.js';
export { CaseStore, loadCase, DEFAULT_CACHE_BYTES, type LoadedCase } from './case_store.js';
export {
  augmentationGeometry,
  enlargedPatchSize,
  isDummy2d,
  DUMMY_2D_THRESHOLD,
  PATCH_SIZE_SCALE_RANGE,
  type AugmentationGeometry,
} from './patch_size.js';
export {
  choosePatch,
  cropAndPad,
  isForcedForeground,
  needToPad,
  presentLabels,
  pythonRound,
  type ClassLocations,
  type PatchChoice,
} from './patch_sampler.js';
export { sampleAugmentation, applyAugmentation, finalizeSample, type AugmentationParams } from './augment_pipeline.js';
export { sampleBgContrast, type PatchSample, type AugmentMeta, type ApplyContext, type Transform } from './augment_types.js';
export { spatialTransform, sampleSpatial, applySpatial, affineMatrix, distinctLabels, winningLabels, SPATIAL_DEFAULTS, type SpatialParams } from './spatial_transform.js';
export {
  gaussianNoise,
  brightness,
  contrast,
  gamma,
  invertedGamma,
  fillStandardNormal,
  type NoiseParams,
  type ChannelFactor,
  type GammaParams,
} from './intensity_transforms.js';
export { gaussianBlur, lowResolution, mirror, gaussianKernel1d, type BlurParams, type LowResolutionParams, type MirrorParams } from './filter_transforms.js';
export {
  sampleCascadeAugmentation,
  applyCascadeAugmentation,
  ballRows,
  dilate,
  binaryOperator,
  connectedComponents,
  CASCADE_AUGMENTATION,
  BINARY_OPERATORS,
  type BinaryOperator,
  type CascadeAugmentationParams,
  type StructuringRows,
} from './cascade_transforms.js';
