/**
 * DICOM series in a folder: every DICOM Part 10 file under it (sub-folders included) grouped by
 * SeriesInstanceUID, one series chosen (the only one, or `--series UID`; several without a choice
 * are listed and refused: we do not guess), and its geometry checked from the headers alone before
 * anything is converted:
 *   - a CT image series (Modality CT, single-frame images or Enhanced CT frames, one sample per pixel) whose voxel tags
 *     (SOP class, transfer syntax, rescale, bits, PixelData's length) agree (dicom-voxels.ts);
 *   - every instance has position, orientation, pixel spacing, the same size, spacing, orientation
 *     (within 1e-4) and frame of reference;
 *   - no gantry tilt: GantryDetectorTilt 0 and slice positions that step along the slice normal;
 *   - slices sorted along the normal with no two at one position, no gap above 1.5x the median
 *     step (missing slices) and every step within 1% (+0.001 mm) of the median (uniform spacing).
 * The series' grid is the DICOM's own: NIfTI i = column, j = row, k = slice in order along the
 * normal (against it when the instance numbers run that way); its affine (RAS+, as NIfTI) is built
 * from ImagePositionPatient, ImageOrientationPatient and PixelSpacing, so a mask on it maps to the
 * source instances slice by slice.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, type Affine, type Shape3 } from '../../core/index.js';
import { isDicomFile, readDicomHeader, type DicomHeader } from './header.js';
import { lossyCompressionOf, type LossyCompression } from './lossy.js';
import { checkVoxelTags, decodedImageBytes } from './voxels.js';
import { enhancedCtFrames } from './enhanced.js';

export type Vec3 = [number, number, number];

/** What `predict` lists when a folder holds several series. */
export interface DicomSeriesSummary {
  seriesInstanceUid: string;
  seriesNumber: number | null;
  description: string;
  modality: string;
  instances: number;
}

export interface DicomInstance {
  file: string;
  sopInstanceUid: string;
  sopClassUid: string;
  /** (0002,0010): decides whether and how the instance is decoded before dcm2niix (dicom-decode.ts). */
  transferSyntaxUid: string;
  /** The frame of an Enhanced CT image (1-based) that is this slice; null for a single-frame image. */
  frame: number | null;
  instanceNumber: number | null;
  /** ImagePositionPatient (LPS mm): the centre of the first pixel. */
  position: Vec3;
  /** The same as stored (decimal strings), for derived objects to repeat exactly. */
  positionText: string[];
}

/** One checked CT series, instances sorted along the slice normal. */
export interface DicomSeries {
  folder: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  frameOfReferenceUid: string;
  seriesNumber: number | null;
  description: string;
  modality: string;
  instances: DicomInstance[];
  rows: number;
  columns: number;
  /** PixelSpacing: [between rows, between columns] mm. */
  pixelSpacingMm: [number, number];
  /** ImageOrientationPatient: row direction (along a row, column index growing), column direction (LPS). */
  orientation: [number, number, number, number, number, number];
  /** The median step between slice positions along the normal, mm. */
  sliceSpacingMm: number;
  sliceThicknessMm: number | null;
  /** NIfTI voxel (i = column, j = row, k = slice) -> RAS+ mm. */
  affine: Affine;
  /** [slices, rows, columns]: lesionseg's [z, y, x]. */
  shape: Shape3;
  /** Memory of the decoded volume (dicom-voxels.ts decodedImageBytes), known before it is decoded. */
  decodedBytes: number;
  /** The patient and study attributes of the first instance (text as stored), for derived objects. */
  attributes: DicomHeader['text'];
  /** Lossy compression any instance went through (dicom-lossy.ts), or null. */
  lossyCompression: LossyCompression | null;
}

export interface DicomScan {
  folder: string;
  /** Headers by SeriesInstanceUID, in the order the files were found. */
  series: Map<string, DicomHeader[]>;
  /** Files without a DICOM preamble, and DICOMDIR indexes, which are not images. */
  ignored: string[];
}

export interface DicomScanLimits {
  /** Most files looked at under the folder (default 100000). */
  maxFiles: number;
  /** Deepest sub-folder level searched (default 8). */
  maxDepth: number;
}

const SCAN_DEFAULTS: DicomScanLimits = { maxFiles: 100_000, maxDepth: 8 };
const MEDIA_STORAGE_DIRECTORY = '1.2.840.10008.1.3.10';
/** Relative step tolerance of uniform spacing, and its floor in mm (positions are rounded decimal strings). */
const SPACING_RELATIVE_TOLERANCE = 0.01;
const SPACING_ABSOLUTE_TOLERANCE_MM = 0.001;
const GAP_FACTOR = 1.5;
const ORIENTATION_TOLERANCE = 1e-4;

/** Files under `folder`, sorted, hidden ones left out. */
function filesUnder(folder: string, limits: DicomScanLimits): string[] {
  const files: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (depth < limits.maxDepth) walk(full, depth + 1);
      } else if (entry.isFile()) {
        files.push(full);
        if (files.length > limits.maxFiles) throw new InputError(`holds more than ${limits.maxFiles} files; give the folder of one series`, { file: folder, code: 'dicom-too-many-files' });
      }
    }
  };
  walk(folder, 0);
  return files;
}

/** True when `folder` holds at least one DICOM Part 10 file (searched as scanDicomFolder does, stopping at the first). */
export function holdsDicom(folder: string): boolean {
  try {
    return filesUnder(folder, SCAN_DEFAULTS).some(isDicomFile);
  } catch {
    return false;
  }
}

/** Read the header of every DICOM file under `folder` and group them by series. */
export function scanDicomFolder(folder: string, limits: Partial<DicomScanLimits> = {}): DicomScan {
  const bounds = { ...SCAN_DEFAULTS, ...limits };
  const series = new Map<string, DicomHeader[]>();
  const ignored: string[] = [];
  for (const file of filesUnder(folder, bounds)) {
    if (!isDicomFile(file)) {
      ignored.push(file);
      continue;
    }
    const header = readDicomHeader(file);
    if (header.mediaStorageSopClassUid === MEDIA_STORAGE_DIRECTORY) {
      ignored.push(file);
      continue;
    }
    const uid = header.text.SeriesInstanceUID;
    if (uid === undefined || uid === '') throw new InputError('has no SeriesInstanceUID (0020,000E)', { file, code: 'dicom-missing-tag' });
    const list = series.get(uid) ?? [];
    list.push(header);
    series.set(uid, list);
  }
  if (series.size === 0) throw new InputError('holds no DICOM files (none has the DICM preamble)', { file: folder, code: 'dicom-none' });
  return { folder, series, ignored };
}

export function summarizeSeries(scan: DicomScan): DicomSeriesSummary[] {
  return [...scan.series].map(([uid, headers]) => {
    const first = headers[0]!;
    return {
      seriesInstanceUid: uid,
      seriesNumber: first.numbers.SeriesNumber?.[0] ?? null,
      description: first.text.SeriesDescription ?? '',
      modality: first.text.Modality ?? '',
      instances: headers.length,
    };
  }).sort((a, b) => (a.seriesNumber ?? Infinity) - (b.seriesNumber ?? Infinity) || a.seriesInstanceUid.localeCompare(b.seriesInstanceUid));
}

/** One line per series: UID, number, description, modality, instance count. */
export function formatSeriesList(summaries: readonly DicomSeriesSummary[]): string {
  return summaries
    .map((s) => `${s.seriesInstanceUid} (series ${s.seriesNumber ?? '-'}, ${JSON.stringify(s.description)}, ${s.modality || 'no modality'}, ${s.instances} instance${s.instances === 1 ? '' : 's'})`)
    .join('; ');
}

/**
 * The series `seriesUid` names, or the only one; several without a choice are listed and refused.
 * `onlyModality` (import: a TCIA patient folder holds its CT beside RTSTRUCT and SEG series) lets
 * the one series of that modality be chosen among others.
 */
export function chooseSeries(scan: DicomScan, seriesUid: string | undefined, option = '--series', onlyModality?: string): DicomHeader[] {
  const summaries = summarizeSeries(scan);
  if (seriesUid !== undefined) {
    const chosen = scan.series.get(seriesUid);
    if (chosen === undefined) {
      throw new InputError(`holds no series ${seriesUid} (${option}); its series: ${formatSeriesList(summaries)}`, { file: scan.folder, code: 'dicom-unknown-series' });
    }
    return chosen;
  }
  const ofModality = [...scan.series.values()].filter((headers) => headers[0]!.text.Modality === onlyModality);
  if (onlyModality !== undefined && ofModality.length === 1) return ofModality[0]!;
  if (scan.series.size > 1) {
    throw new InputError(`holds ${scan.series.size} DICOM series; choose one with ${option} UID: ${formatSeriesList(summaries)}`, { file: scan.folder, code: 'dicom-several-series' });
  }
  return [...scan.series.values()][0]!;
}

function dot(a: Vec3, b: Vec3): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function subtract(a: Vec3, b: Vec3): Vec3 {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

function norm(a: Vec3): number {
  return Math.sqrt(dot(a, a));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function fixed(value: number, digits = 3): string {
  return String(Number(value.toFixed(digits)));
}

/** A number attribute with `count` values, or an InputError naming the file and the tag. */
function numbersOf(header: DicomHeader, keyword: 'ImagePositionPatient' | 'ImageOrientationPatient' | 'PixelSpacing', count: number, tag: string): number[] {
  const values = header.numbers[keyword];
  if (values === undefined) throw new InputError(`has no ${keyword} ${tag}: the slices cannot be placed in space`, { file: header.file, code: 'dicom-missing-tag' });
  if (values.length !== count || values.some((v) => !Number.isFinite(v))) {
    throw new InputError(`${keyword} ${tag} holds ${values.length} value(s) [${values.join(', ')}], ${count} finite numbers are needed`, { file: header.file, code: 'dicom-bad-tag' });
  }
  return values;
}

/** Check a series' headers (see the file comment) and build its grid; every refusal names the folder or the file. */
export function checkDicomSeries(folder: string, instanceHeaders: readonly DicomHeader[]): DicomSeries {
  // Enhanced CT: one header per frame from here on (dicom-enhanced.ts); single-frame images as they are.
  const headers = instanceHeaders.flatMap(enhancedCtFrames);
  const first = headers[0]!;
  const seriesUid = first.text.SeriesInstanceUID!;
  const what = `series ${seriesUid}`;
  const modality = first.text.Modality ?? '';
  const mixedModality = headers.find((h) => (h.text.Modality ?? '') !== modality);
  if (mixedModality !== undefined) throw new InputError(`${what} mixes modalities ${modality} (${first.file}) and ${mixedModality.text.Modality} (${mixedModality.file})`, { file: folder, code: 'dicom-mixed-series' });
  if (modality !== 'CT') {
    throw new InputError(`${what} is modality ${modality === '' ? '(none)' : modality}, not CT: the models segment CT (Hounsfield units)`, { file: folder, code: 'dicom-not-ct' });
  }
  for (const header of headers) {
    if (!header.hasPixelData) throw new InputError('is a CT instance without PixelData (7FE0,0010)', { file: header.file, code: 'dicom-no-pixels' });
    const frames = header.numbers.NumberOfFrames?.[0] ?? 1;
    if (frames !== 1 && header.frame === null) throw new InputError(`is a multi-frame image (NumberOfFrames ${frames}); lesionseg reads series of single-frame CT images and Enhanced CT images`, { file: header.file, code: 'dicom-multiframe' });
    const samples = header.numbers.SamplesPerPixel?.[0] ?? 1;
    if (samples !== 1) throw new InputError(`has ${samples} samples per pixel; a CT image has 1`, { file: header.file, code: 'dicom-bad-tag' });
    for (const keyword of ['SOPInstanceUID', 'SOPClassUID', 'StudyInstanceUID'] as const) {
      if (!header.text[keyword]) throw new InputError(`has no ${keyword}`, { file: header.file, code: 'dicom-missing-tag' });
    }
    if (header.numbers.Rows === undefined || header.numbers.Columns === undefined) throw new InputError('has no Rows/Columns (0028,0010/0011)', { file: header.file, code: 'dicom-missing-tag' });
    checkVoxelTags(header);
  }
  const duplicateUid = headers.find((h, index) => headers.findIndex((o) => o.text.SOPInstanceUID === h.text.SOPInstanceUID && o.frame === h.frame) !== index);
  if (duplicateUid !== undefined) throw new InputError(`${what}: SOPInstanceUID ${duplicateUid.text.SOPInstanceUID} occurs twice (${duplicateUid.file} is a copy)`, { file: folder, code: 'dicom-duplicate-instance' });

  const rows = first.numbers.Rows![0]!;
  const columns = first.numbers.Columns![0]!;
  const spacing = numbersOf(first, 'PixelSpacing', 2, '(0028,0030)') as [number, number];
  if (!(spacing[0] > 0 && spacing[1] > 0)) throw new InputError(`PixelSpacing (0028,0030) is [${spacing.join(', ')}], spacings must be positive`, { file: first.file, code: 'dicom-bad-tag' });
  const orientation = numbersOf(first, 'ImageOrientationPatient', 6, '(0020,0037)') as DicomSeries['orientation'];
  const rowDirection = orientation.slice(0, 3) as Vec3;
  const columnDirection = orientation.slice(3, 6) as Vec3;
  if (Math.abs(norm(rowDirection) - 1) > 1e-3 || Math.abs(norm(columnDirection) - 1) > 1e-3 || Math.abs(dot(rowDirection, columnDirection)) > 1e-3) {
    throw new InputError(`ImageOrientationPatient (0020,0037) [${orientation.join(', ')}] is not two orthogonal unit vectors`, { file: first.file, code: 'dicom-bad-tag' });
  }
  const frame = first.text.FrameOfReferenceUID ?? '';
  for (const header of headers) {
    if (header.numbers.Rows![0] !== rows || header.numbers.Columns![0] !== columns) {
      throw new InputError(`${what} mixes image sizes: ${rows}x${columns} (${first.file}) and ${header.numbers.Rows![0]}x${header.numbers.Columns![0]} (${header.file})`, { file: folder, code: 'dicom-mixed-series' });
    }
    const own = numbersOf(header, 'PixelSpacing', 2, '(0028,0030)');
    if (own.some((v, i) => Math.abs(v - spacing[i]!) > 1e-4 * spacing[i]!)) {
      throw new InputError(`${what} mixes pixel spacings [${spacing.join(', ')}] (${first.file}) and [${own.join(', ')}] (${header.file})`, { file: folder, code: 'dicom-mixed-series' });
    }
    const ownOrientation = numbersOf(header, 'ImageOrientationPatient', 6, '(0020,0037)');
    if (ownOrientation.some((v, i) => Math.abs(v - orientation[i]!) > ORIENTATION_TOLERANCE)) {
      throw new InputError(`${what} mixes orientations: ImageOrientationPatient [${orientation.join(', ')}] (${first.file}) and [${ownOrientation.join(', ')}] (${header.file})`, { file: folder, code: 'dicom-mixed-orientation' });
    }
    if ((header.text.FrameOfReferenceUID ?? '') !== frame) {
      throw new InputError(`${what} mixes frames of reference ${frame || '(none)'} (${first.file}) and ${header.text.FrameOfReferenceUID ?? '(none)'} (${header.file})`, { file: folder, code: 'dicom-mixed-series' });
    }
    const tilt = header.numbers.GantryDetectorTilt?.[0] ?? 0;
    if (Math.abs(tilt) > 0.01) {
      throw new InputError(`was acquired with a tilted gantry (GantryDetectorTilt ${tilt} degrees): its slices are sheared, which lesionseg does not resample; correct the tilt first (e.g. dcm2niix's tilt-corrected output)`, { file: header.file, code: 'dicom-gantry-tilt' });
    }
  }
  if (frame === '') throw new InputError(`${what} has no FrameOfReferenceUID (0020,0052)`, { file: first.file, code: 'dicom-missing-tag' });
  if (headers.length < 2) throw new InputError(`${what} has a single image: a 3D model needs a volume of several slices`, { file: folder, code: 'dicom-single-slice' });

  const normal = cross(rowDirection, columnDirection);
  const instances: DicomInstance[] = headers.map((header) => ({
    file: header.file,
    sopInstanceUid: header.text.SOPInstanceUID!,
    sopClassUid: header.text.SOPClassUID!,
    transferSyntaxUid: header.transferSyntaxUid,
    frame: header.frame,
    instanceNumber: header.numbers.InstanceNumber?.[0] ?? null,
    position: numbersOf(header, 'ImagePositionPatient', 3, '(0020,0032)') as Vec3,
    positionText: header.text.ImagePositionPatient!.split('\\').map((value) => value.trim()),
  }));
  instances.sort((a, b) => dot(a.position, normal) - dot(b.position, normal));
  // k runs along the normal, unless the instance numbers (an Enhanced CT's frame numbers) run the other way: then k follows them (the scanner's order).
  const order = (instance: DicomInstance): number | null => instance.frame ?? instance.instanceNumber;
  const [lowest, highest] = [order(instances[0]!), order(instances[instances.length - 1]!)];
  const reversed = lowest !== null && highest !== null && lowest > highest;
  if (reversed) instances.reverse();
  const axis = reversed ? (normal.map((n) => -n) as Vec3) : normal;
  const name = (instance: DicomInstance): string => `${path.basename(instance.file)}${instance.frame !== null ? ` (frame ${instance.frame})` : instance.instanceNumber !== null ? ` (instance ${instance.instanceNumber})` : ''}`;
  const steps = instances.slice(1).map((instance, index) => dot(subtract(instance.position, instances[index]!.position), axis));
  const stepMedian = median(steps);
  const tolerance = SPACING_RELATIVE_TOLERANCE * stepMedian + SPACING_ABSOLUTE_TOLERANCE_MM;
  for (const [index, step] of steps.entries()) {
    const [before, after] = [instances[index]!, instances[index + 1]!];
    if (step < tolerance) {
      throw new InputError(`${what} has two slices at one position (${fixed(step, 4)} mm apart along the normal): ${name(before)} and ${name(after)}; a folder with several acquisitions needs them split`, { file: folder, code: 'dicom-duplicate-position' });
    }
    const offNormal = norm(subtract(subtract(after.position, before.position), axis.map((n) => n * step) as Vec3));
    if (offNormal > SPACING_ABSOLUTE_TOLERANCE_MM * 10 + 1e-3 * step) {
      throw new InputError(`${what} is sheared: from ${name(before)} to ${name(after)} the position moves ${fixed(offNormal)} mm across the slice plane (a tilted gantry gives this); lesionseg does not resample sheared series`, { file: folder, code: 'dicom-gantry-tilt' });
    }
  }
  for (const [index, step] of steps.entries()) {
    const [before, after] = [instances[index]!, instances[index + 1]!];
    if (step > GAP_FACTOR * stepMedian) {
      throw new InputError(`${what} is missing slices: ${fixed(step)} mm between ${name(before)} and ${name(after)}, ${fixed(step / stepMedian, 2)}x the median spacing ${fixed(stepMedian)} mm (about ${Math.round(step / stepMedian) - 1} slice(s) absent)`, { file: folder, code: 'dicom-missing-slices' });
    }
  }
  for (const [index, step] of steps.entries()) {
    const [before, after] = [instances[index]!, instances[index + 1]!];
    if (Math.abs(step - stepMedian) > tolerance) {
      throw new InputError(`${what} has non-uniform slice spacing: ${fixed(step)} mm between ${name(before)} and ${name(after)}, the median is ${fixed(stepMedian)} mm (a uniform grid allows ${fixed(tolerance, 4)} mm of difference)`, { file: folder, code: 'dicom-nonuniform-spacing' });
    }
  }

  const count = instances.length;
  const firstPosition = instances[0]!.position;
  const sliceVector = subtract(instances[count - 1]!.position, firstPosition).map((v) => v / (count - 1)) as Vec3;
  // LPS (DICOM) -> RAS+ (NIfTI): negate x and y.
  const sign = [-1, -1, 1];
  const affine = [0, 1, 2].map((r) => [
    sign[r]! * rowDirection[r]! * spacing[1],
    sign[r]! * columnDirection[r]! * spacing[0],
    sign[r]! * sliceVector[r]!,
    sign[r]! * firstPosition[r]!,
  ]) as [Affine[0], Affine[1], Affine[2]];
  const thickness = first.numbers.SliceThickness?.[0];
  return {
    folder,
    seriesInstanceUid: seriesUid,
    studyInstanceUid: first.text.StudyInstanceUID ?? '',
    frameOfReferenceUid: frame,
    seriesNumber: first.numbers.SeriesNumber?.[0] ?? null,
    description: first.text.SeriesDescription ?? '',
    modality,
    instances,
    rows,
    columns,
    pixelSpacingMm: spacing,
    orientation,
    sliceSpacingMm: stepMedian,
    sliceThicknessMm: thickness !== undefined && thickness > 0 ? thickness : null,
    affine: [...affine, [0, 0, 0, 1]],
    shape: [count, rows, columns],
    decodedBytes: decodedImageBytes(headers, rows, columns),
    attributes: first.text,
    lossyCompression: lossyCompressionOf(headers),
  };
}

/** Scan `folder`, choose its series (`seriesUid` or the only one) and check it. */
export function readDicomSeries(folder: string, seriesUid?: string, option = '--series', onlyModality?: string): DicomSeries {
  const scan = scanDicomFolder(folder);
  return checkDicomSeries(folder, chooseSeries(scan, seriesUid, option, onlyModality));
}
