/**
 * io: files on the host, as typed arrays. NIfTI-1/2 images, safetensors checkpoints, .npy arrays,
 * nnU-Net v2 raw datasets (dataset.json + imagesTr/labelsTr) and their checks. Imports only core.
 */
export type { NiftiDatatype, NiftiGeometrySource, NiftiHeader, NiftiImage } from './nifti-types.js';
export { readNifti, readNiftiHeader, type ReadNiftiOptions } from './nifti-read.js';
export { DEFAULT_MAX_IMAGE_BYTES, checkImageSize, headerProblems, validateNiftiHeader } from './nifti-validate.js';
export { writeNifti, type WriteNiftiOptions } from './nifti-write.js';
export { affineFromHeader } from './nifti-affine.js';
export {
  readSafetensors,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsFile,
} from './safetensors.js';
export { readNpy, writeNpy, type NpyArray } from './npy.js';
export {
  readDatasetJson,
  writeDatasetJson,
  validateDatasetJson,
  ignoreLabelOf,
  segmentationClassCount,
  IGNORE_LABEL_NAME,
  type DatasetJson,
} from './dataset-json.js';
export { listRawCases, type RawCase } from './raw-dataset.js';
export { checkDataset, type CheckDatasetOptions, type CheckDatasetResult } from './check-dataset.js';
export * from './importers/index.js';
export * from './split.js';
export { nonFiniteCount, nonFiniteMessage, assertFiniteVoxels, firstNonIntegerVoxel, assertIntegerLabels, type NonFiniteCount } from './validate-voxels.js';
