/**
 * Cross-validation split files: which cases each fold tests on.
 *
 * Two layouts are read: lesionseg's (`{ "folds": [ { "train": [...], "test": [...] }, ... ] }`, as
 * data/covid19_ctseg_5fold_split.json) and nnU-Net's splits_final.json (a list of
 * `{ "train": [...], "val": [...] }`, where each fold's `val` cases are its held-out cases).
 * Every problem in the file is reported at once.
 */
import { readFileSync } from 'node:fs';
import { type Issue, InputError, ValidationError } from '../core/index.js';

export interface SplitFold {
  train: string[];
  /** The cases this fold's model is evaluated on. */
  test: string[];
}

export interface EvaluationSplit {
  file: string;
  folds: SplitFold[];
}

function stringList(value: unknown, file: string, path: string, issues: Issue[]): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    issues.push({ file, path, code: 'bad-case-list', message: 'must be a list of case ids (non-empty strings)' });
    return [];
  }
  return value as string[];
}

/** Validates parsed split JSON (`file` only names it in messages). */
export function parseSplit(json: unknown, file: string): EvaluationSplit {
  const issues: Issue[] = [];
  const rawFolds = Array.isArray(json) ? json : (json as { folds?: unknown } | null)?.folds;
  if (!Array.isArray(rawFolds) || rawFolds.length === 0) {
    throw new ValidationError(
      [{ file, path: 'folds', code: 'missing-field', message: 'expected { "folds": [ { "train": [...], "test": [...] } ] } or an nnU-Net list of { "train", "val" }' }],
      { file },
    );
  }
  const folds = rawFolds.map((fold: unknown, index): SplitFold => {
    const path = Array.isArray(json) ? `[${index}]` : `folds[${index}]`;
    if (typeof fold !== 'object' || fold === null) {
      issues.push({ file, path, code: 'bad-fold', message: 'must be an object with "train" and "test" (or "val") lists' });
      return { train: [], test: [] };
    }
    const record = fold as Record<string, unknown>;
    const testKey = 'test' in record ? 'test' : 'val';
    const test = stringList(record[testKey], file, `${path}.${testKey}`, issues);
    const train = 'train' in record ? stringList(record.train, file, `${path}.train`, issues) : [];
    const duplicates = test.filter((id, i) => test.indexOf(id) !== i);
    if (duplicates.length > 0) {
      issues.push({ file, path: `${path}.${testKey}`, code: 'duplicate-case', message: `lists ${[...new Set(duplicates)].join(', ')} more than once` });
    }
    const overlap = test.filter((id) => train.includes(id));
    if (overlap.length > 0) {
      issues.push({ file, path, code: 'train-test-overlap', message: `cases in both train and test: ${overlap.join(', ')}` });
    }
    return { train, test };
  });
  if (issues.length > 0) throw new ValidationError(issues, { file });
  return { file, folds };
}

/** Reads and validates a split file; InputError naming the file when it is missing or not JSON. */
export function readSplit(file: string): EvaluationSplit {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read split file: ${(error as Error).message}`, { file, code: 'not-found', cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(`split file is not valid JSON: ${(error as Error).message}`, { file, code: 'bad-json', cause: error });
  }
  return parseSplit(json, file);
}
