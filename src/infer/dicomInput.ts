/**
 * `predict -i` on DICOM: a folder holding a DICOM series (or several, one picked with `--series
 * UID`; several without it are listed and refused). The series' headers are checked first (io
 * readDicomSeries: CT, no tilt, uniform spacing, no missing slices, one orientation, a transfer
 * syntax something here decodes), then its outputs are decided and checked, and only later
 * (convertDicomCase) decoded where compressed and converted by dcm2niix into a
 * temporary NIfTI on the series' own grid, so that the mask maps back onto the source instances for
 * `--output-type dicom-seg`.
 *
 * Outputs: `-o FOLDER` gives FOLDER/<case>.nii.gz, FOLDER/<case>.seg.dcm and FOLDER/<case>.sr.dcm (dicom-sr,
 * which needs dicom-seg: the report references the SEG's segments), where <case> is the
 * input folder's name, with `_series<N>` when the folder holds several series (dicomCaseId);
 * `-o FILE.nii.gz` or `-o FILE.dcm` names one of them, the other (when asked
 * for) sits beside it with the same stem. No output may land inside the DICOM folder: the next
 * scan of it would find the SEG as another series.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertWritableOutput, checkOutputs, InputError, registerTemporaryPath, unregisterTemporaryPath, type Volume } from '../core/index.js';
import { assertDcm2niix, assertDecoders, checkDicomSeries, chooseSeries, convertDicomSeries, type ConvertedSeries, type DicomSeries, type DicomSeriesSummary, holdsDicom, type NiftiHeader, scanDicomFolder, type SegmentLabel, summarizeSeries, writeDicomSeg, writeNifti } from '../io/index.js';
import type { PredictionCase } from './inputs.js';

export const OUTPUT_TYPES = ['nifti', 'dicom-seg', 'dicom-sr'] as const;
export type OutputType = (typeof OUTPUT_TYPES)[number];

const NIFTI = /\.nii(\.gz)?$/i;
const DCM = /\.dcm$/i;
const CHANNEL_FILE = /_\d{4}\.nii(\.gz)?$/i;

export interface DicomCase {
  series: DicomSeries;
  item: PredictionCase;
  /** Where the SEG goes (when dicom-seg is asked for). */
  segFile: string | null;
  /** Where the SR goes (dicom-sr, beside the SEG: <case>.sr.dcm); written by the caller, who has the summary. */
  srFile: string | null;
  /** Whether the NIfTI mask is written. */
  writeNifti: boolean;
}

/** True when `input` is a folder of DICOM files rather than of `<case>_0000.nii.gz` images. */
export function isDicomInput(input: string): boolean {
  try {
    if (!fs.statSync(input).isDirectory()) return false;
  } catch {
    return false;
  }
  const names = fs.readdirSync(input);
  if (names.some((name) => CHANNEL_FILE.test(name))) return false;
  // Files named .dcm make it DICOM input even when none is readable, so that the DICOM reader says
  // what is wrong with them instead of the NIfTI naming rule.
  return names.some((name) => DCM.test(name)) || holdsDicom(input);
}

function isInside(folder: string, file: string): boolean {
  const relative = path.relative(path.resolve(folder), path.resolve(file));
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * The case name of `series` read from `folderName`: the folder's name when it holds one series;
 * among several, the folder's name and `_series<SeriesNumber>` (or `_uid<the UID's last 12 digits>`
 * when the number is missing or shared), so that `--series` runs on one folder into one `-o` give
 * one file per series, each named after what viewers and PACS show.
 */
export function dicomCaseId(folderName: string, series: DicomSeries, summaries: readonly DicomSeriesSummary[]): string {
  const base = folderName.replace(/[^A-Za-z0-9._-]+/g, '_') || 'series';
  if (summaries.length <= 1) return base;
  const number = series.seriesNumber;
  const unique = number !== null && summaries.filter((s) => s.seriesNumber === number).length === 1;
  return unique ? `${base}_series${number}` : `${base}_uid${series.seriesInstanceUid.replaceAll('.', '').slice(-12)}`;
}

/**
 * Read and check the series, decide and check its outputs (nothing is converted yet). `caseId`
 * names the outputs instead of dicomCaseId (a PACS series retrieved into a temporary folder).
 */
export function collectDicomCase(input: string, output: string, outputTypes: readonly OutputType[], seriesUid?: string, caseId?: string): DicomCase {
  const scan = scanDicomFolder(input);
  const series = checkDicomSeries(input, chooseSeries(scan, seriesUid));
  caseId ??= dicomCaseId(path.basename(path.resolve(input)), series, summarizeSeries(scan));
  const wantNifti = outputTypes.includes('nifti');
  const wantSeg = outputTypes.includes('dicom-seg');
  const wantSr = outputTypes.includes('dicom-sr');
  if (wantSr && !wantSeg) throw new InputError('--output-type dicom-sr needs dicom-seg too: the report\'s measurements reference the SEG\'s segments', { code: 'bad-arguments' });
  let niftiFile: string;
  let segFile: string;
  if (NIFTI.test(output)) {
    if (!wantNifti) throw new InputError('-o names a NIfTI file but --output-type has no nifti: give a .dcm file or a folder', { file: output, code: 'bad-output' });
    niftiFile = output;
    segFile = `${output.replace(NIFTI, '')}.seg.dcm`;
  } else if (DCM.test(output)) {
    if (!wantSeg) throw new InputError('-o names a .dcm file but --output-type has no dicom-seg: give a .nii.gz file or a folder', { file: output, code: 'bad-output' });
    segFile = output;
    niftiFile = `${output.replace(/(\.seg)?\.dcm$/i, '')}.nii.gz`;
  } else {
    assertWritableOutput(output, { option: '-o', kind: 'folder' });
    niftiFile = path.join(output, `${caseId}.nii.gz`);
    segFile = path.join(output, `${caseId}.seg.dcm`);
  }
  const srFile = `${segFile.replace(/(\.seg)?\.dcm$/i, '')}.sr.dcm`;
  const outputs = [...(wantNifti ? [niftiFile] : []), ...(wantSeg ? [segFile] : []), ...(wantSr ? [srFile] : [])];
  for (const file of [output, ...outputs]) {
    if (isInside(input, file)) throw new InputError(`-o lies inside the DICOM input folder ${input}: write the outputs elsewhere (a SEG there would be read as another series)`, { file, code: 'output-is-input' });
  }
  // core's one output rule: the same check (links followed) and writability, for every output.
  checkOutputs(outputs.map((file) => ({ path: file, option: '-o', kind: 'file' as const })), [input]);
  return {
    series,
    item: { caseId, channelFiles: [], outputFile: niftiFile },
    segFile: wantSeg ? segFile : null,
    srFile: wantSr ? srFile : null,
    writeNifti: wantNifti,
  };
}

/**
 * dcm2niix, and the decoders the series' transfer syntaxes need (dcmtk, GDCM), must be there before
 * the model is loaded (a LesionsegError saying how to install them).
 */
export async function checkDicomTools(series: DicomSeries): Promise<void> {
  await assertDcm2niix();
  await assertDecoders(series.instances.map((instance) => instance.transferSyntaxUid));
}

/** Convert `series` into a fresh temporary folder (registered, so Ctrl-C removes it), returned for the caller to remove with removeDicomWork. */
export async function convertSeriesToWork(series: DicomSeries, name: string): Promise<{ workDir: string; converted: ConvertedSeries }> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-dicom-'));
  // Removed by the caller (removeDicomWork), or by the signal handler on Ctrl-C.
  registerTemporaryPath(workDir);
  try {
    return { workDir, converted: await convertDicomSeries(series, workDir, name) };
  } catch (error) {
    removeDicomWork(workDir);
    throw error;
  }
}

/** Convert the case's series (convertSeriesToWork) and point the case's channel 0 at the NIfTI. */
export async function convertDicomCase(dicom: DicomCase): Promise<{ workDir: string; converted: ConvertedSeries }> {
  const work = await convertSeriesToWork(dicom.series, `${dicom.item.caseId}_0000`);
  dicom.item.channelFiles = [work.converted.file];
  return work;
}

/**
 * Write a DICOM case's outputs: the NIfTI mask (with the converted image's header) when asked
 * for, and the SEG referencing the source instances. `output` is the NIfTI mask, or the SEG where
 * no NIfTI was asked for; `dicomObjects` every DICOM object written, in the order a PACS is to
 * receive them (an object before those that reference it).
 */
export async function writeDicomOutputs(
  dicom: DicomCase,
  segmentation: Volume<Uint8Array>,
  context: { header: NiftiHeader; segmentLabels: readonly SegmentLabel[]; softwareVersion: string },
): Promise<{ output: string; dicomSeg?: string; dicomObjects: string[] }> {
  fs.mkdirSync(path.dirname(path.resolve(dicom.item.outputFile)), { recursive: true });
  if (dicom.writeNifti) await writeNifti(dicom.item.outputFile, segmentation, { header: context.header, datatype: 'uint8' });
  if (dicom.segFile !== null) {
    fs.mkdirSync(path.dirname(path.resolve(dicom.segFile)), { recursive: true });
    await writeDicomSeg(dicom.segFile, dicom.series, segmentation.data, context.segmentLabels, { softwareVersion: context.softwareVersion });
  }
  const dicomObjects = dicom.segFile !== null ? [dicom.segFile] : [];
  return { output: dicom.writeNifti ? dicom.item.outputFile : dicom.segFile!, ...(dicom.segFile !== null ? { dicomSeg: dicom.segFile } : {}), dicomObjects };
}

/** Remove a conversion's work folder. */
export function removeDicomWork(workDir: string): void {
  fs.rmSync(workDir, { recursive: true, force: true });
  unregisterTemporaryPath(workDir);
}
