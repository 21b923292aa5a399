/**
 * io: files and services on the host, as typed arrays, one folder per format:
 * - nifti/: NIfTI-1/2 images (header, affine and spacing, scaling, validation, reading, writing);
 * - dicom/: DICOM series (header reader, character sets, decoders, Enhanced CT, conversion through
 *   dcm2niix), SEG (writing and reading back) and SR (TID 1500), and dicom/dicomweb/: the DICOMweb
 *   client (QIDO-RS, WADO-RS, STOW-RS);
 * - torch/: PyTorch .pth checkpoints (zip + a pickle read under an allowlist, never executed; and
 *   written: stored zip, protocol-2 pickle) and safetensors;
 * - dataset/: nnU-Net v2 raw datasets (dataset.json + imagesTr/labelsTr) and their checks, split
 *   files, .npy arrays, nnU-Net model folders and plans, and the public datasets' importers.
 * Every other layer imports io through this file. Imports only core.
 */
export type { HeaderProblem, HeaderProblemCode, NiftiDatatype, NiftiGeometrySource, NiftiHeader, NiftiImage } from './nifti/types.js';
export { NiftiHeaderError } from './nifti/types.js';
export { readNifti, readNiftiHeader, type ReadNiftiOptions } from './nifti/read.js';
export { DEFAULT_MAX_IMAGE_BYTES, assertVolume, checkImageSize, headerProblems, validateNiftiHeader, volumeShape } from './nifti/validate.js';
export { writeNifti, type WriteNiftiOptions } from './nifti/write.js';
export { affineFromHeader, headerSpacing, PIXDIM_AGREEMENT_TOLERANCE, voxelSpacing } from './nifti/affine.js';
export { gridFromHeader } from './nifti/grid.js';
export { readDicomHeader, isDicomFile, DICOM_TAGS, DICOM_READ_DEFAULTS, TRANSFER_SYNTAX, type DicomHeader, type DicomKeyword, type DicomReadLimits } from './dicom/header.js';
export {
  scanDicomFolder,
  summarizeSeries,
  formatSeriesList,
  chooseSeries,
  checkDicomSeries,
  readDicomSeries,
  holdsDicom,
  type DicomScan,
  type DicomSeries,
  type DicomSeriesSummary,
  type DicomInstance,
} from './dicom/series.js';
export { assertDcm2niix, convertDicomSeries, type ConvertedSeries, type ConvertOptions } from './dicom/convert.js';
export { assertDecoders, decoderFor, transferSyntaxName, TRANSFER_SYNTAXES, type Decoder } from './dicom/decode.js';
export { checkDicomImageSize, CT_IMAGE_STORAGE } from './dicom/voxels.js';
export { parseDicomSeg, segOnSeries, type ParsedDicomSeg, type SegOnSeries, type SegSegment } from './dicom/seg-read.js';
export { writeDicomSeg, buildDicomSeg, encodeDicomSeg, segmentCodes, packBits, newUid, SEGMENT_CODES, SEGMENTATION_SOP_CLASS_UID, type SegmentLabel, type DicomSegOptions, type CodedConcept } from './dicom/seg.js';
export { writeDicomSr, buildDicomSr, readSegReference, decimalString, COMPREHENSIVE_3D_SR_SOP_CLASS_UID, DEVICE_OBSERVER_UID, type SrReport, type SrGroup, type SrMeasurement, type SegReference, type DicomSrOptions } from './dicom/sr.js';
export { CODES as SR_CODES, LUNG_SITES, LOBE_SITES, PRIVATE_SCHEME, type Site } from './dicom/sr-codes.js';
export * from './dicom/dicomweb/index.js';
export {
  readSafetensors,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsFile,
} from './torch/safetensors.js';
export { readNpy, writeNpy, type NpyArray } from './dataset/npy.js';
export {
  readDatasetJson,
  writeDatasetJson,
  validateDatasetJson,
  ignoreLabelOf,
  segmentationClassCount,
  nnunetRegionsOf,
  type NnunetRegions,
  IGNORE_LABEL_NAME,
  type DatasetJson,
} from './dataset/dataset-json.js';
export { listRawCases, type RawCase } from './dataset/raw-dataset.js';
export { checkDataset, type CheckDatasetResult } from './dataset/check-dataset.js';
export { type NnunetConfigurationJson, NnunetConfigurationSchema, type NnunetPlansJson, NnunetPlansSchema } from './dataset/nnunet-plans-schema.js';
export * from './dataset/importers/index.js';
export * from './dataset/split.js';
export { nonFiniteCount, nonFiniteMessage, assertFiniteVoxels, firstNonIntegerVoxel, assertIntegerLabels, type NonFiniteCount } from './validate-voxels.js';
export { ZipArchive, ZIP_DEFAULTS, type ZipEntry, type ZipLimits } from './torch/zip.js';
export {
  unpickle,
  PyDict,
  PyGlobal,
  pyGet,
  pySequence,
  pyToJson,
  pyTypeName,
  UNPICKLE_DEFAULTS,
  type PyValue,
  type PyKey,
  type PyExtension,
  type PyGlobalHandler,
  type UnpickleLimits,
  type UnpickleOptions,
} from './torch/pickle.js';
export { readPth, stateDictEntries, isPthTensor, PTH_GLOBALS, type PthFile, type PthTensor, type PthStorage, type PthLimits, type TorchDevice } from './torch/pth.js';
export { storedZipChunks, type ZipWriteEntry, type ZipWriteOptions } from './torch/zip-write.js';
export { pickle, pickleTensor, pyFloat, pyTuple, pyOrderedDict, PickleFloat, PickleOrderedDict, STORAGE_CLASS, type PickleValue, type PickleTensor, type PickleStorage } from './torch/pickle-write.js';
export { PthBuilder, PTH_ARCHIVE_NAME } from './torch/pth-write.js';
export {
  isNnunetModelFolder,
  nnunetModelFolderOf,
  readNnunetModelFolder,
  readNnunetCheckpoint,
  nnunetCheckpointFile,
  canonicalTwin,
  type NnunetModelFolder,
  type NnunetCheckpoint,
  type NnunetCheckpointName,
  type NnunetFold,
  type NnunetSgdState,
} from './dataset/nnunet-model.js';
