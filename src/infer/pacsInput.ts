/**
 * A CT series in a PACS as predict's input, over DICOMweb (io/dicomweb's client): the series is
 * chosen from QIDO-RS (the one named, or the study's only CT series; several CT series are listed
 * and refused, a series that is not CT is refused by its Modality, all before anything is
 * downloaded), retrieved by WADO-RS into a temporary folder, read by the DICOM-folder reader
 * (inputVolume.ts) with the SeriesInstanceUID as its case name, predicted, and its DICOM outputs (the
 * SEG, and whatever else `--output-type` asks for) stored by STOW-RS into the same study.
 * `predict --pacs` runs this once; `pacs watch` (pacsWatch.ts) once per new series, with a journal
 * step before the store.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, registerTemporaryPath, unregisterTemporaryPath, type Logger, SILENT_LOGGER } from '../core/index.js';
import { dicomJsonString, type DicomJson, type DicomSeriesSummary, type DicomwebClient, formatSeriesList, readDicomHeader } from '../io/index.js';
import type { RetrievedSeries } from './inputVolume.js';
import { OUTPUT_TYPES, type OutputType } from './dicomInput.js';
import { predictFiles, type PredictedCaseRecord, type PredictFilesOptions } from './predictFiles.js';

/** QIDO-RS tags read here (PS3.6). */
const TAG = {
  Modality: '00080060',
  SeriesDescription: '0008103E',
  SeriesInstanceUID: '0020000E',
  SeriesNumber: '00200011',
  NumberOfSeriesRelatedInstances: '00201209',
} as const;

/** What `--pacs` stores by default: every DICOM output type there is (the SEG, and a report where one is written). */
export const PACS_OUTPUT_TYPES: readonly OutputType[] = OUTPUT_TYPES.filter((type) => type.startsWith('dicom-'));

/** A series as QIDO-RS describes it, in the form the DICOM folder reader lists series. */
export interface PacsSeries extends DicomSeriesSummary {
  studyInstanceUid: string;
}

function summaryOf(studyInstanceUid: string, item: DicomJson): PacsSeries {
  const number = Number(dicomJsonString(item, TAG.SeriesNumber));
  const instances = Number(dicomJsonString(item, TAG.NumberOfSeriesRelatedInstances));
  return {
    studyInstanceUid,
    seriesInstanceUid: dicomJsonString(item, TAG.SeriesInstanceUID) ?? '',
    seriesNumber: Number.isFinite(number) && dicomJsonString(item, TAG.SeriesNumber) !== undefined ? number : null,
    description: dicomJsonString(item, TAG.SeriesDescription) ?? '',
    modality: dicomJsonString(item, TAG.Modality) ?? '',
    instances: Number.isInteger(instances) ? instances : 0,
  };
}

/** The series of a study (QIDO-RS), sorted by SeriesNumber; `query` narrows them (e.g. Modality=CT). */
export async function studySeries(client: DicomwebClient, studyUid: string, query: Record<string, string> = {}): Promise<PacsSeries[]> {
  const items = await client.searchSeries(studyUid, { ...query, includefield: `${TAG.SeriesDescription},${TAG.NumberOfSeriesRelatedInstances}` });
  return items
    .map((item) => summaryOf(studyUid, item))
    .filter((series) => series.seriesInstanceUid !== '')
    .sort((a, b) => (a.seriesNumber ?? Infinity) - (b.seriesNumber ?? Infinity) || a.seriesInstanceUid.localeCompare(b.seriesInstanceUid));
}

/**
 * The series to predict: `seriesUid` (refused when the study lacks it or it is not CT), or the
 * study's only CT series (refused, listing them, when there are none or several).
 */
export async function choosePacsSeries(client: DicomwebClient, studyUid: string, seriesUid?: string): Promise<PacsSeries> {
  const all = await studySeries(client, studyUid);
  const where = `${client.baseUrl} study ${studyUid}`;
  if (all.length === 0) throw new InputError(`${where}: the server has no such study (or no series in it)`, { code: 'dicomweb-not-found' });
  if (seriesUid !== undefined) {
    const chosen = all.find((series) => series.seriesInstanceUid === seriesUid);
    if (chosen === undefined) throw new InputError(`${where} holds no series ${seriesUid} (--series); its series: ${formatSeriesList(all)}`, { code: 'dicomweb-not-found' });
    if (chosen.modality !== 'CT') throw new InputError(`${where}: series ${seriesUid} is ${chosen.modality || 'of no modality'}, not CT; lesionseg segments CT`, { code: 'dicom-not-ct' });
    return chosen;
  }
  const ct = all.filter((series) => series.modality === 'CT');
  if (ct.length === 0) throw new InputError(`${where} holds no CT series; its series: ${formatSeriesList(all)}`, { code: 'dicom-not-ct' });
  if (ct.length > 1) throw new InputError(`${where} holds ${ct.length} CT series; choose one with --series UID: ${formatSeriesList(ct)}`, { code: 'dicom-several-series' });
  return ct[0]!;
}

/** A retrieved series and the temporary folder around it, removed by `remove`. */
export interface RetrievedPacsSeries extends RetrievedSeries {
  files: string[];
  remove(): void;
}

/**
 * WADO-RS retrieve of `series` into a new temporary folder (registered, so Ctrl-C removes it);
 * the client leaves no file of a failed retrieve.
 */
export async function retrievePacsSeries(client: DicomwebClient, series: PacsSeries): Promise<RetrievedPacsSeries> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-pacs-'));
  registerTemporaryPath(root);
  const remove = (): void => {
    fs.rmSync(root, { recursive: true, force: true });
    unregisterTemporaryPath(root);
  };
  try {
    const folder = path.join(root, series.seriesInstanceUid);
    const files = await client.retrieveSeries(series.studyInstanceUid, series.seriesInstanceUid, folder);
    return { url: client.baseUrl, studyInstanceUid: series.studyInstanceUid, seriesInstanceUid: series.seriesInstanceUid, folder, caseId: series.seriesInstanceUid, files, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/**
 * The DICOM objects a case wrote, in the order they are stored (the SEG before what references it):
 * the reader's (the SEG), then a report the caller's afterCase wrote (`dicomSr`, the summary as an SR).
 */
export function dicomObjectsOf(record: PredictedCaseRecord & { dicomSr?: string }): string[] {
  return [...(record.dicomObjects ?? []), ...(record.dicomSr !== undefined ? [record.dicomSr] : [])];
}

/** A DICOM object to store and its SOPInstanceUID (read back from the file written). */
export interface ObjectToStore {
  file: string;
  sopInstanceUid: string;
}

export function objectsToStore(files: readonly string[]): ObjectToStore[] {
  return files.map((file) => ({ file, sopInstanceUid: readDicomHeader(file).text.SOPInstanceUID ?? '' }));
}

/**
 * A refusal of the retrieved series names its instances by SOPInstanceUID and the series by its
 * UID, not by the temporary files (removed by the time the message is read).
 */
async function inPacsTerms<T>(retrieved: RetrievedSeries, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof InputError) || !error.message.includes(retrieved.folder)) throw error;
    const [head, ...rest] = error.message.split(`${retrieved.folder}/`);
    const message = [head!, ...rest.map((part) => part.replace(/^([0-9.]+)\.dcm/, 'instance $1'))].join('').replaceAll(retrieved.folder, `series ${retrieved.seriesInstanceUid}`);
    throw new InputError(`${retrieved.url} study ${retrieved.studyInstanceUid}: ${message}`, { code: error.code, cause: error });
  }
}

export interface PacsPredictionSteps {
  /** Asked between the steps (after retrieve, after predict): true stops before the next one (SIGTERM). */
  stopRequested?: () => boolean;
  /** Called after predict with what will be stored, before the store (the watcher's journal). */
  beforeStore?: (objects: readonly ObjectToStore[]) => void;
}

export interface PacsPredictionResult {
  series: PacsSeries;
  record: PredictedCaseRecord | null;
  /** The SOPInstanceUIDs stored into the series' study. */
  stored: string[];
  /** True when stopRequested ended it between two steps (nothing stored). */
  stopped: boolean;
}

/**
 * Retrieve `series`, predict it into `output` (a folder: `<SeriesInstanceUID>.seg.dcm`, ...), store
 * the DICOM outputs into its study. The temporary copy of the series is removed however it ends.
 */
export async function predictPacsSeries(
  client: DicomwebClient,
  series: PacsSeries,
  options: Omit<PredictFilesOptions, 'input' | 'series'>,
  logger: Logger = SILENT_LOGGER,
  steps: PacsPredictionSteps = {},
): Promise<PacsPredictionResult> {
  const stopped = (): PacsPredictionResult => ({ series, record: null, stored: [], stopped: true });
  const retrieved = await retrievePacsSeries(client, series);
  try {
    logger.info(`${series.seriesInstanceUid}: retrieved ${retrieved.files.length} instance(s) of study ${series.studyInstanceUid} from ${client.baseUrl}`);
    if (steps.stopRequested?.() === true) return stopped();
    const result = await inPacsTerms(retrieved, () => predictFiles({ ...options, input: retrieved }, logger));
    const record = result.cases[0]!;
    if (steps.stopRequested?.() === true) return stopped();
    const objects = objectsToStore(dicomObjectsOf(record));
    if (objects.length === 0) return { series, record, stored: [], stopped: false };
    steps.beforeStore?.(objects);
    const { stored } = await client.store(objects.map((object) => object.file), series.studyInstanceUid);
    logger.info(`${series.seriesInstanceUid}: stored ${stored.length} object(s) into study ${series.studyInstanceUid}: ${objects.map((object) => `${path.basename(object.file)} (${object.sopInstanceUid})`).join(', ')}`);
    return { series, record, stored, stopped: false };
  } finally {
    retrieved.remove();
  }
}
