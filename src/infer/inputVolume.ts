/**
 * What `predict` reads, through one interface whatever its format: an InputVolumes is opened from
 * what `-i` (or `--pacs`) names by the reader of its format,
 *   - NIfTI: one image or a folder of `<case>_0000.nii.gz` (inputs.ts);
 *   - DICOM folder: one series of it (dicomInput.ts), converted by dcm2niix into a temporary
 *     NIfTI on the series' own grid once the model has loaded;
 *   - PACS series: a series retrieved over DICOMweb into a temporary folder (pacsInput.ts), then
 *     read as a DICOM folder, its case named by the series.
 * Opening decides and checks every case's outputs and what can be checked before the model loads
 * (nothing is decoded yet); `checkWithModel` adds what depends on the model (probability files);
 * `prepare` makes the channel files readable; `write` writes one case's results; `close` removes
 * what `prepare` made. A DICOM-derived input carries its source series and its DICOM outputs
 * (`dicom`), which the SEG writer references instance by instance.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, type Volume } from '../core/index.js';
import { checkDicomImageSize, DEFAULT_MAX_IMAGE_BYTES, type NiftiHeader, type SegmentLabel, writeNifti } from '../io/index.js';
import { checkPredictionOutputs, collectPredictionCases, probabilityFile, type PredictionCase } from './inputs.js';
import { checkDicomTools, collectDicomCase, convertDicomCase, isDicomInput, removeDicomWork, writeDicomOutputs, type DicomCase, type OutputType } from './dicomInput.js';

export type InputKind = 'nifti' | 'dicom-folder' | 'pacs-series';

/** A series retrieved from a PACS into `folder` (pacsInput.ts), read as a DICOM folder. */
export interface RetrievedSeries {
  /** The DICOMweb service it came from. */
  url: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  /** The temporary folder of its instances. */
  folder: string;
  /** The name of its outputs (`<case>.seg.dcm`). */
  caseId: string;
}

/** A path (`-i`: NIfTI file or folder, DICOM folder) or a retrieved PACS series. */
export type InputSource = string | RetrievedSeries;

export interface InputOpenOptions {
  output: string;
  outputTypes: readonly OutputType[];
  /** `--series`: the series of a DICOM folder holding several. */
  series?: string;
  saveProbabilities: boolean;
  maxImageBytes?: number;
}

/** The files one case's results went to. */
export interface WrittenCase {
  /** The NIfTI mask, or the SEG where no NIfTI was asked for. */
  output: string;
  probabilities: string[];
  dicomSeg?: string;
  /** Every DICOM object written (the SEG, ...), in the order they are to be stored. */
  dicomObjects?: string[];
}

export interface CaseResults {
  segmentation: Volume<Uint8Array>;
  probabilities: Volume<Float32Array>[] | null;
}

export interface CaseWriteContext {
  /** The header the NIfTI outputs copy: the case's channel 0. */
  header: NiftiHeader;
  /** The model's foreground labels: the SEG's segments. */
  segmentLabels: readonly SegmentLabel[];
  softwareVersion: string;
}

export interface InputVolumes {
  readonly kind: InputKind;
  readonly cases: readonly PredictionCase[];
  /** A DICOM-derived input (folder or PACS series): its series and the DICOM outputs asked for; null for NIfTI. */
  readonly dicom: DicomCase | null;
  /** What a case record names as its inputs. */
  inputsOf(item: PredictionCase): string[];
  /** Checks of outputs that depend on the model (one probability file per class). */
  checkWithModel(numClasses: number): void;
  /** Make a case's channel files readable (DICOM: decoded and converted into a temporary folder). */
  prepare(item: PredictionCase): Promise<void>;
  /** How far the converted grid was from the DICOM tags (mm), once prepared; null for NIfTI. */
  geometryDifferenceMm(): number | null;
  write(item: PredictionCase, results: CaseResults, context: CaseWriteContext): Promise<WrittenCase>;
  /** Remove what prepare made (safe to call more than once). */
  close(): void;
}

/** NIfTI images as they are: nothing to prepare, the mask and probability maps beside each other. */
function niftiVolumes(input: string, options: InputOpenOptions): InputVolumes {
  if (options.series !== undefined) throw new InputError('--series picks a series of a DICOM folder; this input holds NIfTI images', { file: input, code: 'bad-arguments' });
  for (const type of ['dicom-seg', 'dicom-sr'] as const) {
    if (options.outputTypes.includes(type)) throw new InputError(`--output-type ${type} needs a DICOM series as -i (the ${type === 'dicom-seg' ? 'SEG' : 'SR'} references its instances)`, { file: input, code: 'bad-arguments' });
  }
  const cases = collectPredictionCases(input, options.output);
  checkPredictionOutputs(cases, input, options.output);
  return {
    kind: 'nifti',
    cases,
    dicom: null,
    inputsOf: (item) => item.channelFiles,
    checkWithModel: (numClasses) => {
      if (options.saveProbabilities) checkPredictionOutputs(cases, input, options.output, numClasses);
    },
    prepare: async () => {},
    geometryDifferenceMm: () => null,
    write: async (item, results, context) => {
      fs.mkdirSync(path.dirname(path.resolve(item.outputFile)), { recursive: true });
      await writeNifti(item.outputFile, results.segmentation, { header: context.header, datatype: 'uint8' });
      const probabilities: string[] = [];
      for (const [k, volume] of (results.probabilities ?? []).entries()) {
        const file = probabilityFile(item.outputFile, k);
        await writeNifti(file, volume, { header: context.header, datatype: 'float32' });
        probabilities.push(file);
      }
      return { output: item.outputFile, probabilities };
    },
    close: () => {},
  };
}

/** One DICOM series in `folder`: its headers checked and outputs decided now, dcm2niix run by prepare. */
async function dicomVolumes(folder: string, options: InputOpenOptions, origin: { kind: InputKind; source: string; caseId?: string }): Promise<InputVolumes> {
  const dicom = collectDicomCase(folder, options.output, options.outputTypes, options.series, origin.caseId);
  // From the headers, before dcm2niix decodes anything (the NIfTI check after conversion stays).
  checkDicomImageSize(dicom.series, options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES);
  if (options.saveProbabilities) throw new InputError('--save-probabilities is not written for DICOM input yet', { code: 'bad-arguments' });
  await checkDicomTools(dicom.series);
  let work: Awaited<ReturnType<typeof convertDicomCase>> | null = null;
  return {
    kind: origin.kind,
    cases: [dicom.item],
    dicom,
    inputsOf: () => [origin.source],
    checkWithModel: () => {},
    prepare: async () => {
      work ??= await convertDicomCase(dicom);
    },
    geometryDifferenceMm: () => work?.converted.geometryDifferenceMm ?? null,
    write: async (_item, results, context) => {
      const written = await writeDicomOutputs(dicom, results.segmentation, context);
      return { ...written, probabilities: [] };
    },
    close: () => {
      if (work !== null) removeDicomWork(work.workDir);
      work = null;
    },
  };
}

/**
 * The reader of `input`: a retrieved PACS series, a DICOM folder (isDicomInput), or NIfTI. Every
 * refusal here comes before the model loads.
 */
export async function openInputVolumes(input: InputSource, options: InputOpenOptions): Promise<InputVolumes> {
  if (typeof input !== 'string') {
    const source = `${input.url} study ${input.studyInstanceUid} series ${input.seriesInstanceUid}`;
    return dicomVolumes(input.folder, { ...options, series: input.seriesInstanceUid }, { kind: 'pacs-series', source, caseId: input.caseId });
  }
  if (isDicomInput(input)) return dicomVolumes(input, options, { kind: 'dicom-folder', source: input });
  return niftiVolumes(input, options);
}
