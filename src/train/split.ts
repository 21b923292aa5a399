/**
 * Cross-validation folds. A split file lists per fold the training and test case ids (the COVID
 * benchmark's format `{ folds: [{ train, test }] }`; nnU-Net's splits_final.json `[{ train, val }]`
 * is read too, its `val` taken as the test cases). Without a file, a seeded 5-fold split of the
 * sorted case ids. The test cases of a fold are never trained on or used for model selection.
 * A target run trains on every training case of its fold, as nnU-Net does with the benchmark's
 * splits (4 scans per fold, not 3): validation (pseudo Dice, best checkpoint) then uses patches of
 * the training cases. `validationFraction` > 0 holds a seeded part of them out instead; the
 * non-COVID pre-trainings use 0.2 (the paper's 80/20 split).
 */
import { InputError, Rng } from '../core/index.js';
import { readSplit, type SplitFold } from '../io/index.js';

export type { SplitFold } from '../io/index.js';

export const SPLIT_DEFAULTS = { folds: 5, seed: 12345, validationFraction: 0, pretrainValidationFraction: 0.2 } as const;

/** The folds of a split file (io's reader: every problem at once, naming the file). */
export function readSplitFile(file: string): SplitFold[] {
  return readSplit(file).folds;
}

/** A seeded k-fold split of the sorted ids (shuffled, then cut into k nearly equal test parts). */
export function defaultSplit(caseIds: readonly string[], options: { folds?: number; seed?: number } = {}): SplitFold[] {
  const k = options.folds ?? SPLIT_DEFAULTS.folds;
  const ids = [...caseIds].sort();
  if (ids.length < k) {
    throw new InputError(`a ${k}-fold split needs at least ${k} training cases, the dataset has ${ids.length}: give --split FILE or --fold all`, { code: 'too-few-cases' });
  }
  const shuffled = new Rng(options.seed ?? SPLIT_DEFAULTS.seed).shuffled(ids);
  const folds: SplitFold[] = [];
  let start = 0;
  for (let f = 0; f < k; f++) {
    const size = Math.floor(ids.length / k) + (f < ids.length % k ? 1 : 0);
    const test = new Set(shuffled.slice(start, start + size));
    start += size;
    folds.push({ train: ids.filter((id) => !test.has(id)), test: ids.filter((id) => test.has(id)) });
  }
  return folds;
}

/**
 * The cases of fold `fold` (or 'all': every case trains, none is tested), checked against the
 * dataset's case ids: a fold out of range, an unknown case or a case in both lists is an InputError.
 */
export function selectFold(folds: readonly SplitFold[], fold: number | 'all', datasetCaseIds: readonly string[], file: string | undefined): SplitFold {
  if (fold === 'all') return { train: [...datasetCaseIds].sort(), test: [] };
  if (!Number.isInteger(fold) || fold < 0 || fold >= folds.length) {
    throw new InputError(`fold ${fold} does not exist: the split has folds 0..${folds.length - 1}`, { ...(file !== undefined ? { file } : {}), code: 'bad-fold' });
  }
  const chosen = folds[fold]!;
  const known = new Set(datasetCaseIds);
  const unknown = [...chosen.train, ...chosen.test].filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new InputError(`fold ${fold} names ${unknown.length} case(s) the dataset does not have: ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', ...' : ''}`, {
      ...(file !== undefined ? { file } : {}),
      code: 'unknown-case',
    });
  }
  const testSet = new Set(chosen.test);
  const both = chosen.train.filter((id) => testSet.has(id));
  if (both.length > 0) throw new InputError(`fold ${fold} has case(s) in both train and test: ${both.join(', ')}`, { ...(file !== undefined ? { file } : {}), code: 'bad-split' });
  if (chosen.train.length === 0) throw new InputError(`fold ${fold} has no training cases`, { ...(file !== undefined ? { file } : {}), code: 'bad-split' });
  return { train: [...chosen.train], test: [...chosen.test] };
}

export interface ValidationChoice {
  /** 'held-out': validation cases are not trained on; 'training-cases': too few cases (or fraction 0), validation patches come from the training cases. */
  mode: 'held-out' | 'training-cases';
  train: string[];
  validation: string[];
  fraction: number;
}

/**
 * Hold out max(1, round(fraction * n)) of the fold's training cases for validation, chosen by a
 * seeded shuffle, leaving at least one to train on (4 cases, fraction 0.2: 1 validates, 3 train).
 * With one training case, or fraction 0, validation uses the training cases' patches.
 */
export function chooseValidationCases(trainIds: readonly string[], options: { fraction?: number; seed: number }): ValidationChoice {
  const fraction = options.fraction ?? SPLIT_DEFAULTS.validationFraction;
  if (!(fraction >= 0 && fraction < 1)) throw new InputError(`the validation fraction must be in [0, 1), got ${fraction}`, { code: 'bad-arguments' });
  const ids = [...trainIds].sort();
  if (fraction === 0 || ids.length < 2) return { mode: 'training-cases', train: ids, validation: ids, fraction };
  const count = Math.min(ids.length - 1, Math.max(1, Math.round(fraction * ids.length)));
  const held = new Set(new Rng(options.seed).fork('validation').shuffled(ids).slice(0, count));
  return { mode: 'held-out', train: ids.filter((id) => !held.has(id)), validation: ids.filter((id) => held.has(id)), fraction };
}
