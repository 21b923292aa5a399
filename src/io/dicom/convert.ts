/**
 * A checked DICOM series (dicom-series.ts) into a NIfTI on the series' own grid, through Debian's
 * dcm2niix (JS decoders returned garbage on JPEG-lossless):
 *
 *   dcm2niix -z n -b n -f series -o WORK/out WORK/in
 *
 * WORK/in holds only the series' instances: links to the uncompressed ones, and copies of every
 * other one decoded to explicit VR little endian by a packaged decoder (dicom-decode.ts: dcmtk's
 * libjpeg for lossy JPEG, where dcm2niix's own decoder disagrees). Messages name the user's files,
 * never the work folder's.
 *
 * dcm2niix writes its NIfTI in its own voxel order (rows flipped, slices in the order it sorts
 * them) with an LPS->RAS-correct affine. That affine is checked against the one built from the
 * DICOM tags (ImagePositionPatient, ImageOrientationPatient, PixelSpacing): the two grids must be
 * the same voxel centres up to an axis permutation and flips, by core's one same-grid test (every
 * voxel centre within 0.01 voxel; the largest distance in mm is returned); then the voxels are laid out on the tags' grid (i = column,
 * j = row, k = slice along the normal) and written with the tags' affine, so a mask predicted on it
 * maps back onto the source instances one slice each (dicom-seg.ts).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compareGrids, GRID_MISMATCH, InputError, LesionsegError, type Affine, type Grid, type Shape3, type TypedArray } from '../../core/index.js';
import { readNifti } from '../nifti/read.js';
import { writeNifti } from '../nifti/write.js';
import { findAxisMapping, reorientToImage, describeMapping, isIdentityMapping, type AxisMapping } from '../dataset/importers/reorient.js';
import type { DicomSeries } from './series.js';
import { decodeInstance, decoderFor } from './decode.js';

export interface ConvertedSeries {
  /** The NIfTI on the series' grid (`<name>.nii` in the work folder). */
  file: string;
  /** Largest corner distance between dcm2niix's grid and the tags' grid, mm. */
  geometryDifferenceMm: number;
  /** How dcm2niix's axes were laid onto the tags' grid. */
  reorientation: string;
}

export interface ConvertOptions {
  /** The dcm2niix executable (default `dcm2niix` on the PATH). */
  dcm2niix?: string;
  /** Seconds dcm2niix may take (default 600). */
  timeoutSeconds?: number;
  /** Instances decoded at once (default 4). */
  decodeConcurrency?: number;
  /** Let dcm2niix decode compressed instances itself (only to measure its decoder against ours; predict never does). */
  dcm2niixDecodes?: boolean;
}

/** Link or decode each instance into `inputDir` as NNNNN.dcm; returns work file -> the user's file. */
async function stageInstances(series: DicomSeries, inputDir: string, concurrency: number, dcm2niixDecodes: boolean): Promise<Map<string, string>> {
  const staged = new Map<string, string>();
  const pending = series.instances.map((instance, index) => ({ instance, target: path.join(inputDir, `${String(index).padStart(5, '0')}.dcm`) }));
  // An Enhanced CT file holds every frame: it is staged once.
  const seen = new Set<string>();
  for (let index = pending.length - 1; index >= 0; index--) {
    const file = path.resolve(pending[index]!.instance.file);
    if (seen.has(file)) pending.splice(index, 1);
    seen.add(file);
  }
  for (const { instance, target } of pending) staged.set(target, path.resolve(instance.file));
  const worker = async (): Promise<void> => {
    try {
      for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
        const decoder = decoderFor({ file: next.instance.file, transferSyntaxUid: next.instance.transferSyntaxUid });
        if (decoder === null || dcm2niixDecodes) fs.symlinkSync(path.resolve(next.instance.file), next.target);
        else await decodeInstance(next.instance.file, next.instance.transferSyntaxUid, decoder, next.target);
      }
    } catch (error) {
      pending.length = 0; // the other workers stop after their current instance
      throw error;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return staged;
}

function runDcm2niix(executable: string, args: string[], timeoutSeconds: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(executable, args, { timeout: timeoutSeconds * 1000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve(`${stdout}${stderr}`);
        return;
      }
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new LesionsegError('missing-tool', `${executable} not found: DICOM input needs Debian's dcm2niix (apt-get install dcm2niix; scripts/setup.sh installs it)`));
        return;
      }
      const lastLines = `${stdout}${stderr}`.trim().split('\n').slice(-3).join(' / ');
      reject(new LesionsegError('dcm2niix', `${executable} failed (${error.killed ? `killed after ${timeoutSeconds} s` : `exit ${String(error.code)}`}): ${lastLines}`));
    });
  });
}

/** Whether dcm2niix runs (before any long work); a LesionsegError saying how to install it otherwise. */
export async function assertDcm2niix(executable = 'dcm2niix'): Promise<void> {
  await runDcm2niix(executable, ['-v'], 30).catch((error: unknown) => {
    // `dcm2niix -v` exits 0 on current versions, 3 on some older ones: only a missing executable matters.
    if (error instanceof LesionsegError && error.code === 'missing-tool') throw error;
  });
}

/**
 * dcm2niix's grid in the tags' voxel order: its affine composed with the index map that `mapping`
 * defines (tags' axis a runs along dcm2niix's axis maskAxis[a], reversed when flip[a]), and its
 * spacing permuted alike, so that core's compareGrids can set it against the tags' grid.
 */
function convertedOnTagsAxes(converted: { affine: Affine; spacing: Shape3; shape: Shape3 }, mapping: AxisMapping): Grid {
  const dims = [converted.shape[2], converted.shape[1], converted.shape[0]];
  const affine = converted.affine.map((row) => [...row]) as Affine;
  const spacingXyz: number[] = [0, 0, 0];
  for (let row = 0; row < 3; row++) {
    const source = converted.affine[row]!;
    let offset = source[3];
    for (let a = 0; a < 3; a++) {
      const b = mapping.maskAxis[a]!;
      affine[row]![a] = mapping.flip[a] ? -source[b]! : source[b]!;
      if (mapping.flip[a]) offset += source[b]! * (dims[b]! - 1);
    }
    affine[row]![3] = offset;
  }
  for (let a = 0; a < 3; a++) spacingXyz[a] = converted.spacing[2 - mapping.maskAxis[a]!]!;
  return { shape: [dims[mapping.maskAxis[2]]!, dims[mapping.maskAxis[1]]!, dims[mapping.maskAxis[0]]!], spacing: [spacingXyz[2]!, spacingXyz[1]!, spacingXyz[0]!], affine };
}

/** Integral values that fit int16 stay int16 (as CT is stored); anything else is written as float32. */
function storedType(data: TypedArray): 'int16' | 'float32' {
  for (let index = 0; index < data.length; index++) {
    const value = Number(data[index]!);
    if (!Number.isInteger(value) || value < -32768 || value > 32767) return 'float32';
  }
  return 'int16';
}

/**
 * Convert `series` with dcm2niix in `workDir` (created; the caller removes it) into `<name>.nii`
 * on the tags' grid. Refuses (InputError naming the series folder) a conversion that splits the
 * series or whose geometry does not match the tags.
 */
export async function convertDicomSeries(series: DicomSeries, workDir: string, name: string, options: ConvertOptions = {}): Promise<ConvertedSeries> {
  const executable = options.dcm2niix ?? 'dcm2niix';
  const inputDir = path.join(workDir, 'dicom');
  const outputDir = path.join(workDir, 'dcm2niix');
  fs.mkdirSync(inputDir, { recursive: true });
  fs.mkdirSync(outputDir, { recursive: true });
  // Only this series' files, so that dcm2niix sees no other series of the folder.
  const staged = await stageInstances(series, inputDir, options.decodeConcurrency ?? 4, options.dcm2niixDecodes === true);
  await runDcm2niix(executable, ['-z', 'n', '-b', 'n', '-f', 'series', '-o', outputDir, inputDir], options.timeoutSeconds ?? 600).catch((error: unknown) => {
    if (!(error instanceof LesionsegError)) throw error;
    // Name the user's files, not the work folder's links and decoded copies.
    let message = error.message;
    for (const [work, user] of staged) message = message.replaceAll(work, user);
    throw new LesionsegError(error.code, message.replaceAll(inputDir, series.folder));
  });
  const written = fs.readdirSync(outputDir).filter((file) => /\.nii$/i.test(file)).sort();
  const what = `series ${series.seriesInstanceUid}`;
  if (written.length !== 1) {
    throw new InputError(`dcm2niix made ${written.length} volumes of ${what} (${written.join(', ') || 'none'}), one was expected; it splits series whose images differ (echoes, phases, sizes)`, { file: series.folder, code: 'dicom-conversion' });
  }
  const converted = await readNifti(path.join(outputDir, written[0]!));
  if (converted.header.dims.slice(3).some((n) => n !== 1)) {
    throw new InputError(`dcm2niix made a ${converted.header.dims.length}D volume of ${what}; a 3D CT was expected`, { file: series.folder, code: 'dicom-conversion' });
  }
  const mapping = findAxisMapping(series.affine, series.shape, converted.affine, converted.shape, { linear: 1e-3, voxels: 0.01 });
  if (typeof mapping === 'string') {
    throw new InputError(`dcm2niix's geometry of ${what} does not match its ImagePositionPatient/ImageOrientationPatient/PixelSpacing: ${mapping}`, { file: series.folder, code: GRID_MISMATCH });
  }
  const spacing: Shape3 = [series.sliceSpacingMm, series.pixelSpacingMm[0], series.pixelSpacingMm[1]];
  const tagsGrid: Grid = { shape: series.shape, spacing, affine: series.affine };
  const comparison = compareGrids(convertedOnTagsAxes(converted, mapping), tagsGrid, "the tags'");
  if (!comparison.same) {
    throw new InputError(`dcm2niix's volume of ${what} does not lie on the grid of its ImagePositionPatient/ImageOrientationPatient/PixelSpacing: ${comparison.difference}`, { file: series.folder, code: GRID_MISMATCH });
  }
  const data = isIdentityMapping(mapping) ? converted.data : reorientToImage(converted.data, converted.shape, mapping, series.shape);
  const file = path.join(workDir, `${name}.nii`);
  await writeNifti(file, { data, shape: series.shape, spacing, affine: series.affine }, { datatype: storedType(data) });
  return { file, geometryDifferenceMm: comparison.displacementMm, reorientation: describeMapping(mapping).replaceAll('image', 'tags').replaceAll('mask', 'dcm2niix') };
}
