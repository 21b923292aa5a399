/**
 * A lesionseg cascade run (`train --configuration 3d_cascade_fullres --previous-stage LOWRES`)
 * names its previous stage in RUN/previous_stage.json: the lowres folder of fold_K runs, the
 * configuration name nnU-Net gives it, the cascade run's fold and, per training case, the lowres
 * fold that predicted it (the one that did not train on it, as nnU-Net's predicted_next_stage).
 * Prediction runs the cascade fold K after the lowres fold K, with the same checkpoint (final or
 * best), as nnUNetv2_predict runs both stages with the same folds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, InputError } from '../core/index.js';

export const PREVIOUS_STAGE_RECORD = 'previous_stage.json';

export interface PreviousStageRecord {
  /** nnU-Net's name of the previous configuration (plan configuration.previousStage). */
  configuration: string;
  /** The lowres folder of fold_K runs (absolute). */
  run: string;
  /** The cascade run's own fold. */
  fold: number | 'all';
  /** Per training case: the lowres fold whose prediction is its extra input. */
  casesByFold: Record<string, number>;
}

/** The record of the cascade run `runDir`; CheckpointError when it is missing or malformed. */
export function readPreviousStageRecord(runDir: string): PreviousStageRecord {
  const file = path.join(runDir, PREVIOUS_STAGE_RECORD);
  let record: Partial<PreviousStageRecord>;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<PreviousStageRecord>;
  } catch (error) {
    throw new CheckpointError(`this cascade run needs ${PREVIOUS_STAGE_RECORD} naming its previous stage: ${(error as Error).message}`, { file });
  }
  if (typeof record.configuration !== 'string' || typeof record.run !== 'string' || !(record.fold === 'all' || Number.isInteger(record.fold)) || typeof record.casesByFold !== 'object' || record.casesByFold === null) {
    throw new CheckpointError('expected { configuration, run, fold, casesByFold }', { file });
  }
  return record as PreviousStageRecord;
}

/** For each checkpoint of lesionseg cascade runs, the checkpoint of the same name in the previous stage's fold of that run. */
export function lesionsegPreviousStageCheckpoints(cascadeFiles: readonly string[]): string[] {
  return cascadeFiles.map((file) => {
    const record = readPreviousStageRecord(path.dirname(file));
    const lowres = path.join(record.run, `fold_${record.fold}`, path.basename(file));
    if (!fs.existsSync(lowres)) {
      throw new InputError(`the previous stage '${record.configuration}' of this cascade run has no fold_${record.fold}/${path.basename(file)}`, { file: record.run, code: 'bad-fold' });
    }
    return lowres;
  });
}
