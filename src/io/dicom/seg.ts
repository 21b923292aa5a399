/**
 * A label mask on a DICOM series' grid (dicom-series.ts: k = slice along the normal, j = row,
 * i = column) as a DICOM Segmentation object (SOP Class 1.2.840.10008.5.1.4.1.1.66.4), BINARY,
 * encoded by dcmjs (its dictionary's VRs, length checks, sequences and file meta):
 *   - one segment per foreground label, named as in dataset.json, with a SNOMED CT category and type
 *     (SEGMENT_CODES; SegmentAlgorithmType AUTOMATIC, SegmentAlgorithmName lesionseg);
 *   - one frame per (segment, slice) that holds any of the segment's voxels (a segment with none
 *     keeps one empty frame, so every segment is present), each with its PlanePositionSequence
 *     (the source slice's ImagePositionPatient, as stored), SegmentIdentificationSequence and
 *     DerivationImageSequence/SourceImageSequence naming that slice's SOPInstanceUID (and, for an
 *     Enhanced CT source, its ReferencedFrameNumber in the one multi-frame instance);
 *   - the source's patient and study, its FrameOfReferenceUID, PlaneOrientationSequence and
 *     PixelMeasuresSequence shared, and ReferencedSeriesSequence listing every source instance once;
 * so OHIF, 3D Slicer and PACS viewers overlay it on the series it came from. Written atomically.
 *
 * dcmjs's own Segmentation derivation is not used: it starts from the source series normalized
 * into one multi-frame data set with its pixel data (every CT pixel read again in JS) and copies
 * attributes from it by heuristics; here each attribute is set from the checked headers instead.
 */
import { randomUUID } from 'node:crypto';
import dcmjs from 'dcmjs';
import { atomicWriteFile, dicomText, InputError, type TypedArray } from '../../core/index.js';
import type { DicomSeries } from './series.js';

export const SEGMENTATION_SOP_CLASS_UID = '1.2.840.10008.5.1.4.1.1.66.4';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** Our UID root: 2.25 (UUID-derived, ISO/IEC 9834-8), so no registered root is needed. */
const IMPLEMENTATION_CLASS_UID = '2.25.190426452958152049381384722390474358215';

export interface CodedConcept {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
}

const SCT = (CodeValue: string, CodeMeaning: string): CodedConcept => ({ CodeValue, CodingSchemeDesignator: 'SCT', CodeMeaning });
const MORPHOLOGICALLY_ALTERED = SCT('49755003', 'Morphologically Altered Structure');
const ANATOMICAL_STRUCTURE = SCT('123037004', 'Anatomical Structure');

/**
 * Category and type codes by label name (first match wins), from the SNOMED CT concepts DICOM's
 * segmentation contexts (CID 7150/7151/7160) use. Anything unmatched is a lesion.
 */
export const SEGMENT_CODES: readonly { pattern: RegExp; category: CodedConcept; type: CodedConcept }[] = [
  { pattern: /left.*lung|lung.*left/i, category: ANATOMICAL_STRUCTURE, type: SCT('44029006', 'Left lung') },
  { pattern: /right.*lung|lung.*right/i, category: ANATOMICAL_STRUCTURE, type: SCT('3341006', 'Right lung') },
  { pattern: /lung/i, category: ANATOMICAL_STRUCTURE, type: SCT('39607008', 'Lung') },
  { pattern: /effusion/i, category: MORPHOLOGICALLY_ALTERED, type: SCT('60046008', 'Pleural effusion') },
  { pattern: /tumou?r|gtv|cancer|neoplasm|nodule|mass/i, category: MORPHOLOGICALLY_ALTERED, type: SCT('108369006', 'Neoplasm') },
  { pattern: /.*/, category: MORPHOLOGICALLY_ALTERED, type: SCT('52988006', 'Lesion') },
];

export function segmentCodes(labelName: string): { category: CodedConcept; type: CodedConcept } {
  const entry = SEGMENT_CODES.find((candidate) => candidate.pattern.test(labelName))!;
  return { category: entry.category, type: entry.type };
}

export interface SegmentLabel {
  /** The voxel value in the mask. */
  value: number;
  /** dataset.json's name of the label (SegmentLabel). */
  name: string;
}

export interface DicomSegOptions {
  /** Software version written to SoftwareVersions. */
  softwareVersion: string;
  /** SeriesNumber of the SEG (default: the source's + 1000, or 1000). */
  seriesNumber?: number;
  seriesDescription?: string;
  /** UIDs of the new series and instance (default: fresh 2.25 UUID-derived UIDs). */
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  /** When the SEG was made (default now). */
  date?: Date;
}

/** A fresh UID under 2.25: the decimal of a random UUID. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString()}`;
}

/** DICOM DA and TM (UTC) of `date`. */
export function dicomDateTime(date: Date): { date: string; time: string } {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return {
    date: `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}`,
    time: `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`,
  };
}

/** The source's DS text split into values, exactly as stored (so positions compare as strings). */
function dsValues(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split('\\').map((v) => v.trim());
}

/** Bits of `frames` (each rows x columns, 0/1) packed as the standard asks: pixel n is bit n % 8 of byte n / 8, frames back to back. */
export function packBits(frames: readonly Uint8Array[], pixelsPerFrame: number): Uint8Array {
  const totalBits = frames.length * pixelsPerFrame;
  const bytes = new Uint8Array(Math.ceil(totalBits / 8) + (Math.ceil(totalBits / 8) % 2)); // even length
  let bit = 0;
  for (const frame of frames) {
    for (let p = 0; p < pixelsPerFrame; p++, bit++) {
      if (frame[p] !== 0) bytes[bit >> 3]! |= 1 << (bit & 7);
    }
  }
  return bytes;
}

/** The naturalized SEG data set (dcmjs keywords) of `mask` on `series`. */
export function buildDicomSeg(series: DicomSeries, mask: TypedArray, labels: readonly SegmentLabel[], options: DicomSegOptions): Record<string, unknown> {
  const [slices, rows, columns] = series.shape;
  const pixelsPerFrame = rows * columns;
  if (mask.length !== slices * pixelsPerFrame) throw new RangeError(`the mask has ${mask.length} voxels, the series ${slices}x${rows}x${columns}`);
  if (labels.length === 0) throw new InputError('the model has no foreground label to write as a segment', { code: 'no-segments' });
  const source = series.attributes;
  const made = dicomDateTime(options.date ?? new Date());
  const dimensionOrganizationUid = newUid();
  const sourceImage = (k: number) => ({
    ReferencedSOPClassUID: series.instances[k]!.sopClassUid,
    ReferencedSOPInstanceUID: series.instances[k]!.sopInstanceUid,
  });
  // An Enhanced CT slice is one frame of its instance: the Image SOP Instance Reference Macro (PS3.3
  // Table 10-3) names it by ReferencedFrameNumber, required when the instance is multi-frame.
  const sourceFrame = (k: number) => {
    const frame = series.instances[k]!.frame;
    return { ...sourceImage(k), ...(frame !== null ? { ReferencedFrameNumber: frame } : {}) };
  };
  // The Common Instance Reference (C.12.2) lists each instance once: a multi-frame source is one item.
  const listed = new Set<string>();
  const referencedInstances = series.instances.flatMap((instance, k) => (listed.has(instance.sopInstanceUid) ? [] : (listed.add(instance.sopInstanceUid), [sourceImage(k)])));
  const frames: Uint8Array[] = [];
  const perFrame: Record<string, unknown>[] = [];
  for (const [segmentIndex, label] of labels.entries()) {
    const segmentNumber = segmentIndex + 1;
    const framesBefore = frames.length;
    for (let k = 0; k < slices; k++) {
      const frame = new Uint8Array(pixelsPerFrame);
      let any = false;
      const offset = k * pixelsPerFrame;
      for (let p = 0; p < pixelsPerFrame; p++) {
        if (Number(mask[offset + p]!) === label.value) {
          frame[p] = 1;
          any = true;
        }
      }
      const lastSliceOfEmptySegment = k === slices - 1 && frames.length === framesBefore;
      if (!any && !lastSliceOfEmptySegment) continue;
      frames.push(frame);
      perFrame.push({
        FrameContentSequence: [{ DimensionIndexValues: [segmentNumber, k + 1] }],
        PlanePositionSequence: [{ ImagePositionPatient: series.instances[k]!.positionText }],
        SegmentIdentificationSequence: [{ ReferencedSegmentNumber: segmentNumber }],
        DerivationImageSequence: [{
          SourceImageSequence: [{
            ...sourceFrame(k),
            // Each frame lies on its source slice's pixels (PS3.3 C.7.6.1.1.4.1): readers index frames by source instance.
            SpatialLocationsPreserved: 'YES',
            PurposeOfReferenceCodeSequence: [{ CodeValue: '121322', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Source image for image processing operation' }],
          }],
          DerivationCodeSequence: [{ CodeValue: '113076', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Segmentation' }],
        }],
      });
    }
  }
  const pixelData = packBits(frames, pixelsPerFrame);
  const spacingText = dsValues(source.PixelSpacing);
  return {
    SpecificCharacterSet: 'ISO_IR 192',
    ImageType: ['DERIVED', 'PRIMARY'],
    InstanceCreationDate: made.date,
    InstanceCreationTime: made.time,
    SOPClassUID: SEGMENTATION_SOP_CLASS_UID,
    SOPInstanceUID: options.sopInstanceUid ?? newUid(),
    StudyDate: source.StudyDate ?? '',
    SeriesDate: made.date,
    ContentDate: made.date,
    StudyTime: source.StudyTime ?? '',
    SeriesTime: made.time,
    ContentTime: made.time,
    AccessionNumber: source.AccessionNumber ?? '',
    Modality: 'SEG',
    Manufacturer: 'lesionseg',
    ReferringPhysicianName: source.ReferringPhysicianName ?? '',
    StudyDescription: source.StudyDescription ?? '',
    SeriesDescription: dicomText(options.seriesDescription ?? 'lesionseg segmentation', 'LO'),
    ManufacturerModelName: 'lesionseg',
    ReferencedSeriesSequence: [{
      SeriesInstanceUID: series.seriesInstanceUid,
      ReferencedInstanceSequence: referencedInstances,
    }],
    PatientName: source.PatientName ?? '',
    PatientID: source.PatientID ?? '',
    PatientBirthDate: source.PatientBirthDate ?? '',
    PatientSex: source.PatientSex ?? '',
    DeviceSerialNumber: '1',
    SoftwareVersions: dicomText(options.softwareVersion, 'LO'),
    StudyInstanceUID: series.studyInstanceUid,
    SeriesInstanceUID: options.seriesInstanceUid ?? newUid(),
    StudyID: source.StudyID ?? '',
    SeriesNumber: options.seriesNumber ?? (series.seriesNumber !== null ? series.seriesNumber + 1000 : 1000),
    InstanceNumber: 1,
    FrameOfReferenceUID: series.frameOfReferenceUid,
    PositionReferenceIndicator: '',
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrganizationUid }],
    DimensionOrganizationType: '3D',
    DimensionIndexSequence: [
      { DimensionOrganizationUID: dimensionOrganizationUid, DimensionIndexPointer: 0x0062000b, FunctionalGroupPointer: 0x0062000a, DimensionDescriptionLabel: 'ReferencedSegmentNumber' },
      { DimensionOrganizationUID: dimensionOrganizationUid, DimensionIndexPointer: 0x00200032, FunctionalGroupPointer: 0x00209113, DimensionDescriptionLabel: 'ImagePositionPatient' },
    ],
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    NumberOfFrames: frames.length,
    Rows: rows,
    Columns: columns,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    // PS3.3 C.8.20.2.2: derived from lossy-compressed images, the SEG says so, with their ratio and method.
    ...(series.lossyCompression === null
      ? { LossyImageCompression: '00' }
      : { LossyImageCompression: '01', LossyImageCompressionRatio: series.lossyCompression.ratio, LossyImageCompressionMethod: series.lossyCompression.method }),
    ContentLabel: 'LESIONSEG',
    ContentDescription: 'lesionseg prediction',
    // The operator's name (type 2), unknown here: empty; the algorithm is named in each segment.
    ContentCreatorName: '',
    SegmentationType: 'BINARY',
    SegmentSequence: labels.map((label, index) => {
      const codes = segmentCodes(label.name);
      return {
        SegmentNumber: index + 1,
        // LO: a backslash would split the name into two values (PS3.5 6.2); dicomText makes it one.
        SegmentLabel: dicomText(label.name, 'LO'),
        SegmentAlgorithmType: 'AUTOMATIC',
        SegmentAlgorithmName: 'lesionseg',
        SegmentedPropertyCategoryCodeSequence: [codes.category],
        SegmentedPropertyTypeCodeSequence: [codes.type],
      };
    }),
    SharedFunctionalGroupsSequence: [{
      PlaneOrientationSequence: [{ ImageOrientationPatient: dsValues(source.ImageOrientationPatient) }],
      PixelMeasuresSequence: [{
        PixelSpacing: spacingText,
        SliceThickness: source.SliceThickness !== undefined ? dsValues(source.SliceThickness)![0] : series.sliceSpacingMm.toFixed(6),
        SpacingBetweenSlices: series.sliceSpacingMm.toFixed(6),
      }],
    }],
    PerFrameFunctionalGroupsSequence: perFrame,
    PixelData: pixelData.buffer,
    _vrMap: { PixelData: 'OB' },
  };
}

/** The SEG file's bytes (DICOM Part 10, explicit VR little endian). */
export function encodeDicomSeg(dataset: Record<string, unknown>): Uint8Array {
  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const version = new Uint8Array([0, 1]);
  const meta = DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: version.buffer,
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: 'lesionseg',
  });
  const dict = new DicomDict(meta);
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return new Uint8Array(dict.write({ allowInvalidVRLength: false }));
}

/** Write `mask` (on `series`' grid) as a DICOM SEG to `file`, atomically; returns the number of frames. */
export async function writeDicomSeg(file: string, series: DicomSeries, mask: TypedArray, labels: readonly SegmentLabel[], options: DicomSegOptions): Promise<{ frames: number; segments: number }> {
  const dataset = buildDicomSeg(series, mask, labels, options);
  await atomicWriteFile(file, encodeDicomSeg(dataset));
  return { frames: dataset.NumberOfFrames as number, segments: labels.length };
}
