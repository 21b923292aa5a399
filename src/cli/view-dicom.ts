/**
 * `lesionseg view SERIES_FOLDER [FILE.seg.dcm | MASK.nii.gz ...] --out PAGE.html [--series UID]`:
 * the viewer page of a DICOM series with DICOM SEGs read back onto it, so that the picture shows
 * where the SEG's own geometry puts each frame (io dicom-seg-read.ts: by source image reference or
 * position, never by frame order), not where the mask it was written from was.
 *
 * Everything is checked before the series is converted: each SEG is parsed and checked (SOP
 * class, type, pixel data); the series is the one `--series` names, else the one the SEGs
 * reference among the folder's (several series otherwise are listed and refused, as predict does),
 * else the only one; its headers are checked as predict checks them, and each SEG against it
 * (frame of reference, referenced series, size, orientation, spacing, every frame on a slice:
 * dicom-seg-mismatch, exit 2). Then dcm2niix (and the decoders the syntaxes need) converts the
 * series onto the tags' grid in a temporary folder, each SEG's mask is written there on the same
 * grid, and the page is built from those files by view's one page writer.
 */
import * as path from 'node:path';
import { InputError, type Shape3 } from '../core/index.js';
import { checkDicomTools, convertSeriesToWork, removeDicomWork } from '../infer/index.js';
import { checkDicomSeries, chooseSeries, isDicomFile, parseDicomSeg, scanDicomFolder, segOnSeries, writeNifti } from '../io/index.js';
import type { ViewerInput } from './view-commands.js';

/** A mask argument that is a DICOM file (a SEG) rather than a NIfTI label map. */
export function isSegArgument(file: string): boolean {
  return /\.dcm$/i.test(file) || (!/\.nii(\.gz)?$/i.test(file) && isDicomFile(file));
}

export interface DicomViewInput {
  input: ViewerInput;
  /** The temporary folder holding the converted CT and the SEGs' masks; the caller removes it (infer's removeDicomWork). */
  workDir: string;
}

/** Check the series and its SEGs (see the file comment), then convert (as predict does); the caller writes the page and removes workDir. */
export async function prepareDicomView(folder: string, masks: readonly string[], seriesUid: string | undefined): Promise<DicomViewInput> {
  const segFiles = masks.filter(isSegArgument);
  const segs = segFiles.map(parseDicomSeg);
  const scan = scanDicomFolder(folder);
  const referenced = [...new Set(segs.flatMap((seg) => seg.referencedSeries))].filter((uid) => scan.series.has(uid));
  const chosen = seriesUid ?? (scan.series.size > 1 && referenced.length === 1 ? referenced[0] : undefined);
  const series = checkDicomSeries(folder, chooseSeries(scan, chosen));
  const placed = segs.map((seg) => segOnSeries(seg, series));
  await checkDicomTools(series);

  const { workDir, converted } = await convertSeriesToWork(series, 'ct');
  try {
    const spacing: Shape3 = [series.sliceSpacingMm, series.pixelSpacingMm[0], series.pixelSpacingMm[1]];
    const notes: string[] = [];
    const segMasks = [];
    for (const [index, read] of placed.entries()) {
      const file = path.join(workDir, `seg-${index}.nii.gz`);
      await writeNifti(file, { data: read.mask, shape: series.shape, spacing, affine: series.affine }, { datatype: 'uint8' });
      const name = path.basename(segFiles[index]!);
      const how = [read.placedBySource > 0 ? `${read.placedBySource} by their source image references` : '', read.placedByPosition > 0 ? `${read.placedByPosition} by ImagePositionPatient alone` : ''].filter((s) => s !== '').join(', ');
      notes.push(`${name}: ${read.frames} frame${read.frames === 1 ? '' : 's'} of ${read.segments.length} segment${read.segments.length === 1 ? '' : 's'} read back from the SEG's Per-frame Functional Groups and placed on the series' slices (${how}).${read.overlapVoxels > 0 ? ` ${read.overlapVoxels} voxels lie in more than one segment: the higher segment number is shown.` : ''}`);
      segMasks.push({ file, name, labels: read.segments.map((segment) => ({ value: segment.number, name: segment.label })), opacity: index === 0 ? 0.6 : 0.25 });
    }
    const niftiMasks = masks.filter((file) => !isSegArgument(file)).map((file) => ({ file, opacity: 0.25 }));
    const described = series.description !== '' ? `${series.description} (series ${series.seriesNumber ?? '-'})` : `series ${series.seriesNumber ?? series.seriesInstanceUid}`;
    return {
      workDir,
      input: {
        title: `${path.basename(path.resolve(folder))}: ${described}`,
        image: converted.file,
        imageName: `${path.basename(path.resolve(folder))} (DICOM, ${series.instances.length} ${series.instances[0]!.frame !== null ? 'frames' : 'images'})`,
        masks: [...segMasks, ...niftiMasks],
        notes,
      },
    };
  } catch (error) {
    removeDicomWork(workDir);
    throw error;
  }
}

/** A SEG needs its series: refused (exit 2) when the image is a NIfTI file, as is --series. */
export function refuseDicomArgumentsWithoutSeries(image: string, masks: readonly string[], seriesUid: string | undefined): void {
  const seg = masks.find(isSegArgument);
  if (seg !== undefined) throw new InputError(`is a DICOM file: a DICOM SEG is shown on its source series, so give the series' DICOM folder as the image (not ${image})`, { file: seg, code: 'bad-arguments' });
  if (seriesUid !== undefined) throw new InputError('--series chooses a series of a DICOM folder; the image is a file', { file: image, code: 'bad-arguments' });
}
