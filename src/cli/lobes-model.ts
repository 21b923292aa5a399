/**
 * `predict --summary --lobes-model FOLDER`: the lobe masks of `--lobes` predicted by a lobe model
 * instead of read from files, so the severity score takes one command. The model is an nnU-Net v2
 * model folder (TotalSegmentator's are) or one of ours whose labels include TotalSegmentator's
 * five lobe names (eval's LOBE_NAMES; any other label is ignored); infer's NamedLabelModel runs it
 * on each case's CT under its own plan and exports its label map to the CT's grid, and the five
 * masks go into the same severity summary as --lobes' files (case-summary.ts caseSummary).
 *
 * Refused with exit 2 before any model loads: a path that does not exist, a model whose labels lack
 * a lobe (the line names each missing label and the labels file). Before any case is predicted: a
 * case whose channels, windows or memory do not fit the lobe model's plan.
 */
import * as fs from 'node:fs';
import { InputError } from '../core/index.js';
import { LOBE_NAMES, type LobeName } from '../eval/index.js';
import { NamedLabelModel, requireModelLabels, type NamedLabelModelOptions, type PredictionCase } from '../infer/index.js';

export const LOBES_MODEL_OPTION = '--lobes-model';

/** --lobes-model and what it predicts under (predict's device, precision, mirroring, step, engine, limits). */
export interface LobesModelOptions extends NamedLabelModelOptions {
  model: string;
  /** Most memory (bytes) one case may need by the header estimate (predict's --max-memory-gib). */
  maxMemoryBytes: number;
}

/** What case-summary.ts holds: the opened model, predicting the five masks of one case at a time. */
export interface LobesModel {
  predict(item: PredictionCase): Promise<{ masks: Record<LobeName, Uint8Array>; source: string }>;
  dispose(): void;
}

/** The checks that read no weights: the path exists and the model's labels name all five lobes. */
export function checkLobesModelOption(model: string): void {
  if (!fs.existsSync(model)) throw new InputError(`${LOBES_MODEL_OPTION}: not found`, { file: model, code: 'not-found' });
  requireModelLabels(model, LOBE_NAMES, LOBES_MODEL_OPTION);
}

/** Load the lobe model and check every case against its plan; the caller disposes it. */
export async function openLobesModel(options: LobesModelOptions, cases: readonly PredictionCase[]): Promise<LobesModel> {
  const { model, maxMemoryBytes, ...predictorOptions } = options;
  const opened = await NamedLabelModel.open(model, LOBE_NAMES, LOBES_MODEL_OPTION, predictorOptions);
  try {
    await opened.checkCases(cases, { ...(options.stepFraction !== undefined ? { stepFraction: options.stepFraction } : {}), maxMemoryBytes });
  } catch (error) {
    opened.dispose();
    throw error;
  }
  const source = `${LOBES_MODEL_OPTION} ${model} (${opened.predictor.description})`;
  return {
    predict: async (item) => ({ masks: await opened.predictMasks(item), source }),
    dispose: () => opened.dispose(),
  };
}
