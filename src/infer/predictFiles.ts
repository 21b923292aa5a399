/**
 * The entry function of `lesionseg predict`: resolve the model (a checkpoint, a run folder or a
 * folder of fold runs), collect the cases, and for each one read its channels, predict, and write
 * the mask (uint8, the input's header and geometry) and optionally one float32 probability map per
 * class, all through atomic writes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, SILENT_LOGGER, type Logger } from '../core/index.js';
import { readNifti, writeNifti, type NiftiImage } from '../io/index.js';
import { resolveCheckpoints } from './checkpoint.js';
import { collectPredictionCases, probabilityFile } from './inputs.js';
import { Predictor, type PredictorOptions } from './predictor.js';

export interface PredictFilesOptions extends PredictorOptions {
  model: string;
  input: string;
  output: string;
  /** Folds of a fold-run folder to ensemble (default: every fold_K found). */
  folds?: number[];
  saveProbabilities?: boolean;
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

async function readCase(caseId: string, files: readonly string[]): Promise<NiftiImage[]> {
  const images: NiftiImage[] = [];
  for (const file of files) {
    try {
      images.push(await readNifti(file));
    } catch (error) {
      if (error instanceof InputError) throw new InputError(`case '${caseId}': ${error.message}`, { code: error.code, cause: error });
      throw error;
    }
  }
  return images;
}

export async function predictFiles(options: PredictFilesOptions, logger: Logger = SILENT_LOGGER): Promise<PredictFilesResult> {
  const checkpoints = resolveCheckpoints(options.model, options.folds);
  const cases = collectPredictionCases(options.input, options.output);
  const predictor = Predictor.fromCheckpoints(checkpoints, { ...options, logger });
  const records: PredictedCaseRecord[] = [];
  try {
    logger.info(`predicting ${cases.length} case(s) with ${checkpoints.length} model(s): ${checkpoints.join(', ')}`);
    for (const item of cases) {
      const t0 = performance.now();
      const images = await readCase(item.caseId, item.channelFiles);
      const t1 = performance.now();
      const result = predictor.predictCase(images, { caseId: item.caseId, probabilities: options.saveProbabilities === true });
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
