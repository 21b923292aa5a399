/**
 * The entry function of `lesionseg predict`: resolve the model (a checkpoint, a run folder, a
 * folder of fold runs, or an nnU-Net v2 model folder), collect the cases, and for each one read its channels, predict, and write
 * the mask (uint8, the input's header and geometry) and optionally one float32 probability map per
 * class, all through atomic writes.
 *
 * Everything the user can get wrong is refused before the first case is predicted (STYLE rule 18),
 * in this order: the device exists, the step is in (0, 1], every output can be written and none is
 * an input; the model loads; every case's headers imply a window count and a memory need within the
 * limits (predictChecks.ts) and have the plan's channel count; and every voxel of every case is
 * finite, as `lesionseg check` demands (NaN intensities give NaN logits and then an empty mask).
 * The voxel check reads every case once more before predicting; reading is seconds next to the
 * minutes of a sliding window, and the first case is kept so it is not read twice.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertDeviceAvailable, CPU, InputError, SILENT_LOGGER, type Logger } from '../core/index.js';
import { assertFiniteVoxels, checkImageSize, readNifti, readNiftiHeader, writeNifti, type NiftiHeader, type NiftiImage } from '../io/index.js';
import { cudaDeviceCount } from '../tensor/index.js';
import { resolveCheckpoints, type CheckpointChoice, type ModelFold } from '../checkpoint/index.js';
import { checkPredictionOutputs, collectPredictionCases, probabilityFile, type PredictionCase } from './inputs.js';
import { caseExtent, checkCaseExtent, checkStepFraction } from './predictChecks.js';
import type { EngineFactory } from './engine.js';
import { Predictor, type PredictorOptions } from './predictor.js';
import { SLIDING_WINDOW_DEFAULTS } from './slidingWindowPredict.js';

export interface PredictFilesOptions extends PredictorOptions {
  model: string;
  input: string;
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
}

export interface PredictedCaseRecord {
  caseId: string;
  inputs: string[];
  output: string;
  probabilities: string[];
  shape: number[];
  seconds: { read: number; preprocess: number; slidingWindow: number; export: number; write: number };
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
async function checkCaseHeaders(cases: readonly PredictionCase[], predictor: Predictor, options: PredictFilesOptions): Promise<void> {
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
        if (header.dims.slice(3).some((n) => n !== 1)) {
          throw new InputError(`image is ${header.dims.length}D [${header.dims.join(', ')}]; only 3D images are supported`, { file, code: 'not-3d' });
        }
        checkImageSize(header, file, options.maxImageBytes);
        const first = headers[0];
        if (first !== undefined && header.dims.slice(0, 3).some((n, axis) => n !== first.dims[axis])) {
          throw new InputError(`dims [${header.dims.slice(0, 3).join(', ')}] differ from channel 0's [${first.dims.slice(0, 3).join(', ')}]`, { file, code: 'shape-mismatch' });
        }
        headers.push(header);
      }
      const extent = caseExtent(item.caseId, headers, predictor.plan, { numClasses: predictor.numClasses, stepFraction, probabilities: options.saveProbabilities === true });
      checkCaseExtent(extent, item.channelFiles[0]!, { stepFraction, maxMemoryBytes });
    });
  }
}

export async function predictFiles(options: PredictFilesOptions, logger: Logger = SILENT_LOGGER): Promise<PredictFilesResult> {
  const device = options.device ?? CPU;
  assertDeviceAvailable(device, device.type === 'cpu' ? 0 : cudaDeviceCount());
  checkStepFraction(options.stepFraction ?? SLIDING_WINDOW_DEFAULTS.stepFraction);
  const cases = collectPredictionCases(options.input, options.output);
  checkPredictionOutputs(cases, options.input, options.output);
  const checkpoints = resolveCheckpoints(options.model, options.folds, options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {});
  const predictor = options.engine === undefined
    ? Predictor.fromCheckpoints(checkpoints, { ...options, logger })
    : await Predictor.fromCheckpointsWith(checkpoints, options.engine, { ...options, logger });
  const records: PredictedCaseRecord[] = [];
  try {
    if (options.saveProbabilities === true) checkPredictionOutputs(cases, options.input, options.output, predictor.numClasses);
    await checkCaseHeaders(cases, predictor, options);
    // Every voxel of every case before the first prediction; the first case's images are kept.
    let firstImages: NiftiImage[] | null = null;
    for (const [index, item] of cases.entries()) {
      const images = await readCase(item, options.maxImageBytes);
      if (index === 0) firstImages = images;
    }
    logger.info(`predicting ${cases.length} case(s) with ${checkpoints.length} model(s): ${checkpoints.join(', ')}`);
    logger.info(`model: ${predictor.description}; mirroring axes [${predictor.mirrorAxes.join(', ')}]`);
    for (const [index, item] of cases.entries()) {
      const t0 = performance.now();
      const images = index === 0 && firstImages !== null ? firstImages : await readCase(item, options.maxImageBytes);
      firstImages = null;
      const t1 = performance.now();
      const result = await predictor.predictCaseAsync(images, { caseId: item.caseId, probabilities: options.saveProbabilities === true });
      const t2 = performance.now();
      fs.mkdirSync(path.dirname(path.resolve(item.outputFile)), { recursive: true });
      await writeNifti(item.outputFile, result.segmentation, { header: images[0]!.header, datatype: 'uint8' });
      const probabilityFiles: string[] = [];
      for (const [k, volume] of (result.probabilities ?? []).entries()) {
        const file = probabilityFile(item.outputFile, k);
        await writeNifti(file, volume, { header: images[0]!.header, datatype: 'float32' });
        probabilityFiles.push(file);
      }
      const t3 = performance.now();
      const record: PredictedCaseRecord = {
        caseId: item.caseId,
        inputs: item.channelFiles,
        output: item.outputFile,
        probabilities: probabilityFiles,
        shape: [...result.segmentation.shape],
        seconds: { read: (t1 - t0) / 1000, ...result.seconds, write: (t3 - t2) / 1000 },
      };
      records.push(record);
      logger.info(`${item.caseId}: ${record.shape.join('x')} in ${((t3 - t0) / 1000).toFixed(1)} s (sliding window ${result.seconds.slidingWindow.toFixed(1)} s) -> ${item.outputFile}`);
    }
  } finally {
    predictor.dispose();
  }
  return { checkpoints, cases: records };
}
