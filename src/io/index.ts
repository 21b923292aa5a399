/**
 * io: files on the host, as typed arrays. NIfTI-1/2 images, safetensors checkpoints, .npy arrays,
 * nnU-Net v2 raw datasets (dataset.json + imagesTr/labelsTr) and their checks. Imports only core.
 */
export type { NiftiDatatype, NiftiHeader, NiftiImage } from './nifti-types.js';
export { readNifti, readNiftiHeader } from './nifti-read.js';
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
export { readDatasetJson, writeDatasetJson, validateDatasetJson, type DatasetJson } from './dataset-json.js';
export { listRawCases, type RawCase } from './raw-dataset.js';
export { checkDataset, type CheckDatasetOptions, type CheckDatasetResult } from './check-dataset.js';
export * from './importers/index.js';
export * from './split.js';
