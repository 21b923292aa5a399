/**
 * Predict a fold's test cases with the fold's final checkpoint (infer's Predictor, in this
 * process) into DIR/predictions/.../fold_K/<case>.nii.gz, in the input geometry. A case whose mask
 * already exists is kept (masks are written atomically, so an existing file is complete), which
 * makes prediction resumable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SILENT_LOGGER, type Device, type Logger } from '../core/index.js';
import { readNifti, writeNifti, type RawCase } from '../io/index.js';
import { ALL_MIRROR_AXES, Predictor, type InferencePrecision } from '../infer/index.js';

export interface PredictFoldOptions {
  checkpoint: string;
  cases: readonly RawCase[];
  outDir: string;
  device: Device;
  precision: InferencePrecision;
  tta: boolean;
  logger?: Logger;
}

export function predictionFile(outDir: string, caseId: string): string {
  return path.join(outDir, `${caseId}.nii.gz`);
}

/** Returns the ids of the cases predicted now (the others were already there). */
export async function predictFold(options: PredictFoldOptions): Promise<string[]> {
  const todo = options.cases.filter((c) => !fs.existsSync(predictionFile(options.outDir, c.id)));
  if (todo.length === 0) return [];
  fs.mkdirSync(options.outDir, { recursive: true });
  const predictor = Predictor.fromCheckpoints([options.checkpoint], {
    device: options.device,
    precision: options.precision,
    mirrorAxes: options.tta ? ALL_MIRROR_AXES : [],
    logger: options.logger ?? SILENT_LOGGER,
  });
  try {
    for (const rawCase of todo) {
      const images = await Promise.all(rawCase.images.map((file) => readNifti(file)));
      const prediction = predictor.predictCase(images, { caseId: rawCase.id });
      await writeNifti(predictionFile(options.outDir, rawCase.id), prediction.segmentation, { datatype: 'uint8', header: images[0]!.header });
    }
  } finally {
    predictor.dispose();
  }
  return todo.map((c) => c.id);
}
