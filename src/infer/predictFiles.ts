/**
 * The entry function of `lesionseg predict`: resolve the model (a checkpoint, a run folder, a
 * folder of fold runs, or an nnU-Net v2 model folder; several: an ensemble across models, ensemble.ts),
 * open the input through the reader of its format (inputVolume.ts: NIfTI, DICOM folder, PACS
 * series), and for each case read its channels, predict (then nnU-Net's postprocessing when given,
 * postprocessing.ts), and let the reader write the results (the mask, uint8, in the input's header
 * and geometry; optionally one float32 probability map per class; a DICOM SEG of a DICOM input),
 * all through atomic writes.
 *
 * Everything the user can get wrong is refused before the first case is predicted (STYLE rule 18),
 * in this order: the device exists, the step is in (0, 1], every output can be written and none is
 * an input; the model loads; every case's headers imply a window count and a memory need within the
 * limits (predictChecks.ts) and have the plan's channel count; and every voxel of every case is
 * finite, as `lesionseg check` demands (NaN intensities give NaN logits and then an empty mask).
 * The voxel check reads every case once more before predicting; reading is seconds next to the
 * minutes of a sliding window, and the first case is kept so it is not read twice.
 */
import * as os from 'node:os';
import { assertDeviceAvailable, assertSameGrid, CPU, InputError, type Logger, SILENT_LOGGER, type Volume } from '../core/index.js';
import { assertFiniteVoxels, assertVolume, checkImageSize, gridFromHeader, type NiftiHeader, type NiftiImage, readNifti, readNiftiHeader, type SegmentLabel } from '../io/index.js';
import { cudaDeviceCount } from '../tensor/index.js';
import type { CheckpointChoice, ModelFold } from '../checkpoint/index.js';
import type { PredictionCase } from './inputs.js';
import { caseExtent, checkCaseExtent, checkStepFraction } from './predictChecks.js';
import type { OutputType } from './dicomInput.js';
import { openInputVolumes, type InputSource } from './inputVolume.js';
import type { EngineFactory } from './engine.js';
import { peakRssMiB, type Predictor, type CaseStageSeconds, type PredictorOptions } from './predictor.js';
import { loadModels, type PredictorEnsemble } from './ensemble.js';
import { applyPostprocessing, type Postprocessing } from './postprocessing.js';
import type { WindowCounts } from './slidingWindowPredict.js';
import { SLIDING_WINDOW_DEFAULTS } from './slidingWindowPredict.js';

export interface PredictFilesOptions extends PredictorOptions {
  /** One model, or several: an ensemble across models (ensemble.ts, as nnUNetv2_ensemble). */
  model: string | readonly string[];
  /** `-i` (a NIfTI image or folder, a DICOM folder) or a series retrieved from a PACS (inputVolume.ts). */
  input: InputSource;
  output: string;
  /** Folds of a fold-run folder or an nnU-Net model folder to ensemble (default: every fold_K found). */
  folds?: ModelFold[];
  /** checkpoint_final (default) or checkpoint_best of each run or fold. */
  checkpoint?: CheckpointChoice;
  saveProbabilities?: boolean;
  /** Most memory (bytes) one case may need by the header estimate (default: the machine's, os.totalmem()). */
  maxMemoryBytes?: number;
  /** Most bytes one image may decode to (io's readNifti limit; default its DEFAULT_MAX_IMAGE_BYTES). */
  maxImageBytes?: number;
  /** Builds the engine of each checkpoint (e.g. ONNX through onnxruntime-node); default: the libtorch network. */
  engine?: EngineFactory;
  /** What is written per case (default ['nifti']); 'dicom-seg' and 'dicom-sr' need a DICOM series as input, and the SR is written by `afterCase` (record.dicomSr). */
  outputTypes?: readonly OutputType[];
  /** The SeriesInstanceUID to predict when the DICOM input folder holds several series. */
  series?: string;
  /** SoftwareVersions of a DICOM SEG. */
  softwareVersion?: string;
  /**
   * Checks of the caller's own inputs per case (e.g. predict --lungs geometry) and of the model's labels (dataset.json names),
   * run once the cases' images exist and before any voxel is predicted; `output` is predict's output (a temporary folder with --pacs and no -o).
   */
  beforePredict?: (cases: readonly PredictionCase[], labels: Readonly<Record<string, number>>, output: string) => Promise<void>;
  /** Called after each case's files are written, with its mask and the model's labels (dataset.json names), e.g. for predict --summary and --view. */
  afterCase?: (item: PredictionCase, record: PredictedCaseRecord, segmentation: Volume, labels: Readonly<Record<string, number>>) => Promise<void>;
  /** Log each case's stages (seconds, RSS high-water, windows per second) through the logger. */
  verbose?: boolean;
  /** nnU-Net's postprocessing (postprocessing.ts), applied to each mask before it is written. */
  postprocessing?: Postprocessing;
}

export interface PredictedCaseRecord {
  caseId: string;
  inputs: string[];
  output: string;
  probabilities: string[];
  /** The DICOM SEG written, when asked for. */
  dicomSeg?: string;
  /** Every DICOM object written (the SEG, ...), in the order a PACS is to receive them. */
  dicomObjects?: string[];
  /** Where the DICOM SR goes (dicom-sr): decided and checked here, written by the caller's afterCase (cli case-summary: the numbers come from eval). */
  dicomSr?: string;
  /** DICOM input: the series predicted and how far dcm2niix's grid was from its tags (mm). */
  dicom?: { seriesInstanceUid: string; instances: number; geometryDifferenceMm: number };
  shape: number[];
  /** Seconds per stage (Predictor's CasePrediction.seconds plus reading and writing files). */
  seconds: { read: number; write: number } & CaseStageSeconds;
  /** The process's RSS high-water mark (MiB) at the end of each stage. */
  peakRssMiB: { read: number; preprocess: number; bodyMask: number; slidingWindow: number; export: number; write: number };
  /** Sliding windows of the case, run through the network(s) (the rest lay outside the body). */
  windows: WindowCounts;
}

/** How the windows were batched, for `--verbose`. */
function batchText(batch: WindowCounts['batch']): string {
  if (batch === undefined) return 'batch ?';
  if (typeof batch === 'number') return `batch ${batch}`;
  const timed = Object.entries(batch.secondsPerWindow).map(([size, seconds]) => `${size}: ${seconds.toFixed(3)} s`).join(', ');
  return `batch ${batch.chosen ?? '?'} (auto; seconds per window ${timed})`;
}

/** One case's stages as lines for `predict --verbose`. */
export function formatCaseStages(record: PredictedCaseRecord): string[] {
  const s = record.seconds;
  const m = record.peakRssMiB;
  const w = record.windows;
  const row = (stage: string, seconds: number, peak: number | null, extra = ''): string =>
    `  ${stage.padEnd(15)}${seconds.toFixed(2).padStart(9)} s${peak === null ? '' : `${peak.toFixed(0).padStart(8)} MiB peak`}${extra}`;
  return [
    `${record.caseId}: stages (seconds; process RSS high-water at the end of the stage)`,
    row('read', s.read, m.read),
    row('preprocess', s.preprocess, m.preprocess),
    row('  transpose', s.preprocessSteps.transpose, null),
    row('  crop', s.preprocessSteps.crop, null, ' (to the nonzero region)'),
    row('  normalise', s.preprocessSteps.normalize, null),
    row('  resample', s.preprocessSteps.resample, null, ' (to the plan\'s spacing)'),
    row('body mask', s.bodyMask, m.bodyMask),
    row('sliding window', s.slidingWindow, m.slidingWindow,
      `; ${w.run} of ${w.total} windows run (${w.total - w.run} skipped as outside the body${w.uniform !== undefined ? `, ${w.uniform} of one value sharing its pass` : ''}), ${w.passes ?? w.run} forward passes (${w.mirrored ?? 0} windows mirrored), ${(w.run / Math.max(s.slidingWindow, 1e-9)).toFixed(2)} windows/s, ${batchText(w.batch)}`),
    row('export', s.export, m.export),
    row('  resample back', s.resampleBack, null),
    row('  argmax', s.argmax, null, ' (and paste, transpose)'),
    row('write', s.write, m.write),
  ];
}

export interface PredictFilesResult {
  checkpoints: string[];
  cases: PredictedCaseRecord[];
}

/** Errors of one case's files, prefixed with the case they belong to. */
async function forCase<T>(caseId: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof InputError) throw new InputError(`case '${caseId}': ${error.message}`, { code: error.code, cause: error });
    throw error;
  }
}

async function readCase(item: PredictionCase, maxImageBytes: number | undefined): Promise<NiftiImage[]> {
  return forCase(item.caseId, async () => {
    const images: NiftiImage[] = [];
    for (const file of item.channelFiles) {
      const image = await readNifti(file, maxImageBytes !== undefined ? { maxBytes: maxImageBytes } : {});
      assertFiniteVoxels(image.data, file);
      images.push(image);
    }
    return images;
  });
}

/** The header checks of every case: channel count and shapes, image size, windows and memory. */
async function checkCaseHeaders(cases: readonly PredictionCase[], predictor: Predictor | PredictorEnsemble, options: PredictFilesOptions): Promise<void> {
  const expected = predictor.channelNames;
  const stepFraction = options.stepFraction ?? SLIDING_WINDOW_DEFAULTS.stepFraction;
  const maxMemoryBytes = options.maxMemoryBytes ?? os.totalmem();
  for (const item of cases) {
    await forCase(item.caseId, async () => {
      if (item.channelFiles.length !== expected.length) {
        throw new InputError(`has ${item.channelFiles.length} channel image(s), the model's plan expects ${expected.length} (${expected.join(', ')})`, { file: item.channelFiles[0], code: 'channel-mismatch' });
      }
      const headers: NiftiHeader[] = [];
      for (const file of item.channelFiles) {
        const header = await readNiftiHeader(file);
        assertVolume(header, file);
        checkImageSize(header, file, options.maxImageBytes);
        const first = headers[0];
        if (first !== undefined) {
          assertSameGrid(file, gridFromHeader(header), gridFromHeader(first), `channel ${headers.length}`, `channel 0 (${item.channelFiles[0]})`);
        }
        headers.push(header);
      }
      for (const member of predictor.members) {
        const extent = caseExtent(item.caseId, headers, member.plan, { numClasses: member.numClasses, stepFraction, probabilities: options.saveProbabilities === true || predictor.members.length > 1 });
        checkCaseExtent(extent, item.channelFiles[0]!, { stepFraction, maxMemoryBytes });
      }
    });
  }
}

/** The model's foreground labels (dataset.json names from the plan; `label_<k>` where a class has no name), one SEG segment each. */
function segmentLabelsOf(predictor: Predictor | PredictorEnsemble): SegmentLabel[] {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(predictor.plan.datasets[0]?.labels ?? {})) names.set(value, name);
  return predictor.maskLabels.map((value) => ({ value, name: names.get(value) ?? `label_${value}` }));
}

export async function predictFiles(options: PredictFilesOptions, logger: Logger = SILENT_LOGGER): Promise<PredictFilesResult> {
  const device = options.device ?? CPU;
  assertDeviceAvailable(device, device.type === 'cpu' ? 0 : cudaDeviceCount());
  checkStepFraction(options.stepFraction ?? SLIDING_WINDOW_DEFAULTS.stepFraction);
  const volumes = await openInputVolumes(options.input, {
    output: options.output,
    outputTypes: options.outputTypes ?? ['nifti'],
    ...(options.series !== undefined ? { series: options.series } : {}),
    saveProbabilities: options.saveProbabilities === true,
    ...(options.maxImageBytes !== undefined ? { maxImageBytes: options.maxImageBytes } : {}),
  });
  const cases = volumes.cases;
  const { predictor, checkpoints } = await loadModels(options, logger);
  const records: PredictedCaseRecord[] = [];
  try {
    volumes.checkWithModel(predictor.numClasses);
    const segmentLabels = volumes.dicom?.segFile != null ? segmentLabelsOf(predictor) : [];
    for (const item of cases) await forCase(item.caseId, () => volumes.prepare(item));
    await checkCaseHeaders(cases, predictor, options);
    if (options.beforePredict !== undefined) await options.beforePredict(cases, predictor.plan.datasets[0]?.labels ?? {}, options.output);
    // Every voxel of every case before the first prediction; the first case's images are kept.
    let firstImages: NiftiImage[] | null = null;
    for (const [index, item] of cases.entries()) {
      const images = await readCase(item, options.maxImageBytes);
      if (index === 0) firstImages = images;
    }
    logger.info(`predicting ${cases.length} case(s) with ${checkpoints.length} model(s): ${checkpoints.join(', ')}`);
    logger.info(`model: ${predictor.description}; mirroring axes [${predictor.mirrorAxes.join(', ')}]${predictor.mirrorAxes.length === 0 ? '' : predictor.mirrorRule.margin === Infinity ? ' (full)' : ` (adaptive, margin ${predictor.mirrorRule.margin})`}; ${predictor.precision} on ${predictor.device.type}`);
    for (const [index, item] of cases.entries()) {
      const t0 = performance.now();
      const images = index === 0 && firstImages !== null ? firstImages : await readCase(item, options.maxImageBytes);
      firstImages = null;
      const t1 = performance.now();
      const readPeak = peakRssMiB();
      const result = await predictor.predictCaseAsync(images, { caseId: item.caseId, probabilities: options.saveProbabilities === true });
      if (options.postprocessing !== undefined) {
        const changed = applyPostprocessing(result.segmentation.data, result.segmentation.shape, options.postprocessing);
        logger.info(`${item.caseId}: postprocessing set ${changed} voxel(s) to background`);
      }
      const t2 = performance.now();
      const written = await volumes.write(item, result, { header: images[0]!.header, segmentLabels, softwareVersion: options.softwareVersion ?? 'lesionseg' });
      const t3 = performance.now();
      const dicom = volumes.dicom;
      const geometryDifferenceMm = volumes.geometryDifferenceMm();
      const record: PredictedCaseRecord = {
        caseId: item.caseId,
        inputs: volumes.inputsOf(item),
        output: written.output,
        probabilities: written.probabilities,
        ...(written.dicomSeg !== undefined ? { dicomSeg: written.dicomSeg } : {}),
        ...(dicom?.srFile != null ? { dicomSr: dicom.srFile } : {}),
        ...(written.dicomObjects !== undefined && written.dicomObjects.length > 0 ? { dicomObjects: written.dicomObjects } : {}),
        ...(dicom !== null && geometryDifferenceMm !== null
          ? { dicom: { seriesInstanceUid: dicom.series.seriesInstanceUid, instances: dicom.series.instances.length, geometryDifferenceMm } }
          : {}),
        shape: [...result.segmentation.shape],
        seconds: { read: (t1 - t0) / 1000, ...result.seconds, write: (t3 - t2) / 1000 },
        peakRssMiB: { read: readPeak, ...result.peakRssMiB, write: peakRssMiB() },
        windows: result.windows,
      };
      records.push(record);
      if (options.verbose === true) for (const line of formatCaseStages(record)) logger.info(line);
      if (options.afterCase !== undefined) await forCase(item.caseId, () => options.afterCase!(item, record, result.segmentation, predictor.plan.datasets[0]?.labels ?? {}));
      logger.info(`${item.caseId}: ${record.shape.join('x')} in ${((t3 - t0) / 1000).toFixed(1)} s (sliding window ${result.seconds.slidingWindow.toFixed(1)} s) -> ${[record.output, ...[record.dicomSeg, record.dicomSr].filter((file) => file !== undefined && file !== record.output)].join(', ')}`);
    }
  } finally {
    predictor.dispose();
    volumes.close();
  }
  return { checkpoints, cases: records };
}
