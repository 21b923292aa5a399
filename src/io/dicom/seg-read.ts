/**
 * A DICOM Segmentation read back onto its source series, by the standard's references and
 * positions and never by the frame order any writer (ours included) happens to use:
 *   - the file is parsed by dcmjs's reader (explicit or implicit VR little endian; not our writer's
 *     code path), its SOP class must be Segmentation, BINARY (1 bit) or FRACTIONAL (8 bits, a voxel
 *     is in where its value exceeds half of MaximumFractionalValue), frames stored uncompressed;
 *   - against the series: the same FrameOfReferenceUID, the series among ReferencedSeriesSequence's
 *     (when the SEG has one), the same Rows and Columns, and per frame (its Per-frame Functional
 *     Groups over the Shared ones, PS3.3 C.7.6.16) the same ImageOrientationPatient and PixelSpacing;
 *   - each frame is placed on slice k by its Derivation Image / Source Image reference
 *     (ReferencedSOPInstanceUID, and ReferencedFrameNumber for an Enhanced CT source), and its Plane
 *     Position (ImagePositionPatient) must lie on that slice's position; a frame without a usable
 *     source reference is placed by its position alone (the slice whose first pixel it is);
 *   - its segment is its SegmentIdentificationSequence's ReferencedSegmentNumber, which must be one
 *     of SegmentSequence's.
 * The result is a label mask on the series' grid (dicom-series.ts: k, row, column), voxel value =
 * segment number; where segments overlap the higher number is kept (so the mask does not depend on
 * the order of the frames) and the overlap is counted. Any mismatch is an InputError naming the SEG
 * (exit 2), before anything is converted or written.
 */
import * as fs from 'node:fs';
import dcmjs from 'dcmjs';
import { InputError, type InputErrorCode } from '../../core/index.js';
import { isDicomFile } from './header.js';
import { SEGMENTATION_SOP_CLASS_UID } from './seg.js';
import type { DicomSeries } from './series.js';

type Item = Record<string, unknown>;

/** Pixel data stored as it is (PS3.5 A.1, A.2): the syntaxes a SEG's frames can be read from without a decoder. */
const NATIVE_SYNTAXES = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);
/** Orientation cosines equal within this (as dicom-series.ts), pixel spacings within this fraction. */
const ORIENTATION_TOLERANCE = 1e-4;
const SPACING_TOLERANCE = 1e-4;
/** A frame's position must lie within this fraction of the smallest voxel edge of its slice (core's grid test: 0.01 voxel). */
const POSITION_TOLERANCE_VOXELS = 0.01;

export interface SegSegment {
  number: number;
  label: string;
}

/** A parsed SEG, not yet placed on a series. */
export interface ParsedDicomSeg {
  file: string;
  sopInstanceUid: string;
  frameOfReferenceUid: string;
  /** SeriesInstanceUIDs of ReferencedSeriesSequence (empty when the SEG has none). */
  referencedSeries: string[];
  segmentationType: 'BINARY' | 'FRACTIONAL';
  rows: number;
  columns: number;
  segments: SegSegment[];
  /** Each frame's functional groups, per-frame macros over the shared ones. */
  frames: Item[];
  pixels: Uint8Array;
  maximumFractionalValue: number;
  /** The whole naturalized data set (dcmjs keywords), for what else a reader needs (the SR copies the patient and study). */
  dataset: Item;
}

export interface SegOnSeries {
  /** [slices, rows, columns] of the series, value = segment number (0 outside every segment). */
  mask: Uint8Array;
  segments: SegSegment[];
  frames: number;
  /** Frames placed by their source image reference (position checked), and by position alone. */
  placedBySource: number;
  placedByPosition: number;
  /** Voxels in more than one segment, once per extra segment (the higher segment number kept). */
  overlapVoxels: number;
}

function items(value: unknown): Item[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]) as Item[];
}

function numbers(value: unknown): number[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return (Array.isArray(value) ? value : [value]).map(Number);
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  return String(Array.isArray(value) ? value[0] ?? '' : value).trim();
}

/** Read and check `file` as a DICOM Segmentation (nothing about any series yet). */
export function parseDicomSeg(file: string): ParsedDicomSeg {
  if (!fs.existsSync(file)) throw new InputError('DICOM SEG not found', { file, code: 'not-found' });
  if (!isDicomFile(file)) throw new InputError('is not a DICOM file (no DICM preamble): a DICOM SEG (.dcm) is expected', { file, code: 'not-dicom' });
  const bytes = fs.readFileSync(file);
  let meta: Item;
  let dataset: Item;
  // dcmjs logs every implicit VR PixelData as "Invalid vr type ox - using OW" (right for a SEG's bits): not for the user.
  const validationLog = dcmjs.log.getLogger('validation.dcmjs');
  const level = validationLog.getLevel();
  validationLog.setLevel('silent');
  try {
    const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    meta = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.meta) as Item;
    dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict) as Item;
  } catch (cause) {
    throw new InputError(`cannot be parsed as DICOM: ${(cause as Error).message}`, { file, code: 'dicom-malformed', cause });
  } finally {
    validationLog.setLevel(level);
  }
  const refuse = (message: string, code: InputErrorCode = 'dicom-bad-tag'): never => {
    throw new InputError(message, { file, code });
  };
  const sopClass = text(dataset.SOPClassUID);
  if (sopClass !== SEGMENTATION_SOP_CLASS_UID) refuse(`is SOP class ${sopClass || '(none)'}, not a DICOM Segmentation (${SEGMENTATION_SOP_CLASS_UID})`, 'not-dicom');
  const syntax = text(meta.TransferSyntaxUID);
  if (!NATIVE_SYNTAXES.has(syntax)) refuse(`stores its frames in transfer syntax ${syntax || '(none)'}; lesionseg reads a SEG in explicit or implicit VR little endian (decompress it first, e.g. dcmtk's dcmdrle or dcmconv +te)`, 'dicom-transfer-syntax');
  const type = text(dataset.SegmentationType);
  if (type !== 'BINARY' && type !== 'FRACTIONAL') refuse(`has SegmentationType ${type || '(none)'}; BINARY and FRACTIONAL are read`);
  const [rows, columns, frameCount, bitsAllocated] = ['Rows', 'Columns', 'NumberOfFrames', 'BitsAllocated'].map((keyword) => {
    const value = numbers(dataset[keyword])?.[0];
    if (value === undefined || !Number.isInteger(value) || value < 1) refuse(`has no usable ${keyword}: ${String(dataset[keyword] ?? '(none)')}`, 'dicom-missing-tag');
    return value!;
  }) as [number, number, number, number];
  if (bitsAllocated !== (type === 'BINARY' ? 1 : 8)) refuse(`is ${type} with BitsAllocated ${bitsAllocated} (PS3.3 C.8.20.2 asks ${type === 'BINARY' ? 1 : 8})`);
  const pixelData = dataset.PixelData;
  const fragments = Array.isArray(pixelData) ? pixelData : [pixelData];
  if (fragments.length !== 1 || !(fragments[0] instanceof ArrayBuffer)) refuse('has no native PixelData (7FE0,0010)', 'dicom-no-pixels');
  const pixels = new Uint8Array(fragments[0] as ArrayBuffer);
  const neededBytes = Math.ceil((frameCount * rows * columns * bitsAllocated) / 8);
  if (pixels.length < neededBytes) refuse(`holds ${pixels.length} bytes of PixelData; ${frameCount} frames of ${rows}x${columns} at ${bitsAllocated} bit need ${neededBytes}`, 'dicom-bad-pixel-data');

  const segments = items(dataset.SegmentSequence).map((segment, index) => {
    const number = numbers(segment.SegmentNumber)?.[0];
    if (number === undefined || !Number.isInteger(number) || number < 1 || number > 255) refuse(`SegmentSequence item ${index + 1} has SegmentNumber ${String(segment.SegmentNumber ?? '(none)')}; 1 to 255 are read`);
    return { number: number!, label: text(segment.SegmentLabel) || `segment ${number}` };
  });
  if (segments.length === 0) refuse('has an empty SegmentSequence (0062,0002)', 'dicom-missing-tag');
  const shared = items(dataset.SharedFunctionalGroupsSequence)[0] ?? {};
  const perFrame = items(dataset.PerFrameFunctionalGroupsSequence);
  if (perFrame.length !== frameCount) refuse(`has NumberOfFrames ${frameCount} but ${perFrame.length} PerFrameFunctionalGroupsSequence (5200,9230) items`, 'dicom-missing-tag');
  const frames = perFrame.map((own) => ({ ...shared, ...own }));
  const maximumFractionalValue = type === 'FRACTIONAL' ? numbers(dataset.MaximumFractionalValue)?.[0] ?? 255 : 1;
  return {
    file,
    sopInstanceUid: text(dataset.SOPInstanceUID),
    frameOfReferenceUid: text(dataset.FrameOfReferenceUID),
    referencedSeries: items(dataset.ReferencedSeriesSequence).map((item) => text(item.SeriesInstanceUID)).filter((uid) => uid !== ''),
    segmentationType: type as 'BINARY' | 'FRACTIONAL',
    rows,
    columns,
    segments,
    frames,
    pixels,
    maximumFractionalValue,
    dataset,
  };
}

function distance(a: readonly number[], b: readonly number[]): number {
  return Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);
}

/** Place `seg`'s frames on `series` (see the file comment); every mismatch refused naming the SEG. */
export function segOnSeries(seg: ParsedDicomSeg, series: DicomSeries): SegOnSeries {
  const mismatch = (message: string): never => {
    throw new InputError(`${message}: it does not belong on series ${series.seriesInstanceUid} of ${series.folder}`, { file: seg.file, code: 'dicom-seg-mismatch' });
  };
  if (seg.frameOfReferenceUid !== series.frameOfReferenceUid) mismatch(`has FrameOfReferenceUID ${seg.frameOfReferenceUid || '(none)'}, the series ${series.frameOfReferenceUid}`);
  if (seg.referencedSeries.length > 0 && !seg.referencedSeries.includes(series.seriesInstanceUid)) mismatch(`references series ${seg.referencedSeries.join(', ')} (ReferencedSeriesSequence)`);
  if (seg.rows !== series.rows || seg.columns !== series.columns) mismatch(`has ${seg.rows}x${seg.columns} frames, the series ${series.rows}x${series.columns} images`);

  const [slices, rows, columns] = series.shape;
  const pixelsPerFrame = rows * columns;
  const toleranceMm = POSITION_TOLERANCE_VOXELS * Math.min(series.pixelSpacingMm[0], series.pixelSpacingMm[1], series.sliceSpacingMm);
  const bySource = new Map(series.instances.map((instance, k) => [`${instance.sopInstanceUid}/${instance.frame ?? ''}`, k]));
  const numbersKnown = new Set(seg.segments.map((segment) => segment.number));
  const mask = new Uint8Array(slices * pixelsPerFrame);
  let [placedBySource, placedByPosition, overlapVoxels] = [0, 0, 0];
  const threshold = seg.maximumFractionalValue / 2;

  for (const [index, group] of seg.frames.entries()) {
    const name = `frame ${index + 1}`;
    const orientation = numbers(items(group.PlaneOrientationSequence)[0]?.ImageOrientationPatient);
    if (orientation === undefined || orientation.length !== 6) throw new InputError(`${name} has no ImageOrientationPatient (PlaneOrientationSequence, shared or per frame)`, { file: seg.file, code: 'dicom-missing-tag' });
    if (orientation.some((value, i) => Math.abs(value - series.orientation[i]!) > ORIENTATION_TOLERANCE)) mismatch(`${name} has ImageOrientationPatient [${orientation.join(', ')}], the series [${series.orientation.join(', ')}]`);
    const spacing = numbers(items(group.PixelMeasuresSequence)[0]?.PixelSpacing);
    if (spacing !== undefined && spacing.some((value, i) => Math.abs(value - series.pixelSpacingMm[i]!) > SPACING_TOLERANCE * series.pixelSpacingMm[i]!)) mismatch(`${name} has PixelSpacing [${spacing.join(', ')}], the series [${series.pixelSpacingMm.join(', ')}]`);
    const segment = numbers(items(group.SegmentIdentificationSequence)[0]?.ReferencedSegmentNumber)?.[0];
    if (segment === undefined) throw new InputError(`${name} has no ReferencedSegmentNumber (SegmentIdentificationSequence)`, { file: seg.file, code: 'dicom-missing-tag' });
    if (!numbersKnown.has(segment)) throw new InputError(`${name} names segment ${segment}, which SegmentSequence does not hold (${[...numbersKnown].join(', ')})`, { file: seg.file, code: 'dicom-bad-tag' });
    const position = numbers(items(group.PlanePositionSequence)[0]?.ImagePositionPatient);

    let k: number | undefined;
    for (const source of items(group.DerivationImageSequence).flatMap((derivation) => items(derivation.SourceImageSequence))) {
      const frame = numbers(source.ReferencedFrameNumber)?.[0];
      const uid = text(source.ReferencedSOPInstanceUID);
      // A single-frame image may be referenced as its frame 1.
      k = bySource.get(`${uid}/${frame ?? ''}`) ?? (frame === 1 ? bySource.get(`${uid}/`) : undefined);
      if (k !== undefined) break;
    }
    if (k !== undefined) {
      const instance = series.instances[k]!;
      if (position !== undefined && distance(position, instance.position) > toleranceMm) {
        mismatch(`${name}'s ImagePositionPatient [${position.join(', ')}] lies ${distance(position, instance.position).toFixed(3)} mm from its source image ${instance.sopInstanceUid}${instance.frame !== null ? ` frame ${instance.frame}` : ''} at [${instance.position.join(', ')}]`);
      }
      placedBySource++;
    } else {
      if (position === undefined || position.length !== 3) throw new InputError(`${name} has neither a source image of the series (DerivationImageSequence) nor an ImagePositionPatient (PlanePositionSequence): it cannot be placed`, { file: seg.file, code: 'dicom-missing-tag' });
      const nearest = series.instances.reduce((best, instance, j) => (distance(position, instance.position) < distance(position, series.instances[best]!.position) ? j : best), 0);
      const off = distance(position, series.instances[nearest]!.position);
      if (off > toleranceMm) mismatch(`${name}'s ImagePositionPatient [${position.join(', ')}] is no slice's position (the nearest is ${off.toFixed(3)} mm away)`);
      k = nearest;
      placedByPosition++;
    }

    const frameStart = index * pixelsPerFrame;
    const maskStart = k * pixelsPerFrame;
    for (let p = 0; p < pixelsPerFrame; p++) {
      const inside = seg.segmentationType === 'BINARY'
        ? (seg.pixels[(frameStart + p) >> 3]! >> ((frameStart + p) & 7)) & 1
        : seg.pixels[frameStart + p]! > threshold;
      if (!inside) continue;
      const before = mask[maskStart + p]!;
      if (before !== 0 && before !== segment) overlapVoxels++;
      if (segment > before) mask[maskStart + p] = segment;
    }
  }
  return { mask, segments: seg.segments, frames: seg.frames.length, placedBySource, placedByPosition, overlapVoxels };
}

