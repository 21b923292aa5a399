/**
 * Cross-validation split files: which cases each fold tests on.
 *
 * Two layouts are read: lesionseg's (`{ "folds": [ { "train": [...], "test": [...] }, ... ] }`, as
 * data/covid19_ctseg_5fold_split.json) and nnU-Net's splits_final.json (a list of
 * `{ "train": [...], "val": [...] }`, where each fold's `val` cases are its held-out cases).
 * Validated by a zod schema (core/schema.ts): every problem in the file is reported at once, with
 * its JSON path.
 */
import { readFileSync } from 'node:fs';
import { addIssue, ALWAYS, InputError, parseJson, ValidationError, z } from '../../core/index.js';

export interface SplitFold {
  train: string[];
  /** The cases this fold's model is evaluated on. */
  test: string[];
}

export interface EvaluationSplit {
  file: string;
  folds: SplitFold[];
}

/** A list of case ids; a wrong entry makes the list one 'bad-case-list' problem, as before zod. */
const CaseListSchema = z.unknown().superRefine((value, ctx) => {
  if (!Array.isArray(value) || !value.every((id) => typeof id === 'string' && id.length > 0)) {
    addIssue(ctx, 'bad-case-list', 'must be a list of case ids (non-empty strings)');
  }
}) as unknown as z.ZodType<string[]>;

/**
 * One fold: its held-out cases under `test` (ours) or `val` (nnU-Net's), its training cases under
 * `train` (optional in ours); other keys pass, as nnU-Net's tools may add some. The held-out list
 * may not repeat a case nor share one with `train`.
 */
const FoldSchema = z
  .looseObject({ train: CaseListSchema.optional(), test: CaseListSchema.optional(), val: CaseListSchema.optional() })
  .superRefine((fold, ctx) => {
    if (typeof fold !== 'object' || fold === null || Array.isArray(fold)) return; // reported by the object schema
    const testKey = fold.test !== undefined ? 'test' : 'val';
    const test = fold[testKey];
    if (test === undefined) {
      addIssue(ctx, 'missing-field', "'test' (or nnU-Net's 'val') is required", ['test']);
      return;
    }
    if (!Array.isArray(test) || !test.every((id) => typeof id === 'string')) return; // reported by its schema
    const duplicates = [...new Set(test.filter((id, i) => test.indexOf(id) !== i))];
    if (duplicates.length > 0) addIssue(ctx, 'duplicate-case', `lists ${duplicates.join(', ')} more than once`, [testKey]);
    const train = Array.isArray(fold.train) ? fold.train : [];
    const overlap = test.filter((id) => train.includes(id));
    if (overlap.length > 0) addIssue(ctx, 'train-test-overlap', `cases in both train and test: ${overlap.join(', ')}`);
  }, ALWAYS);

/** lesionseg's `{ "folds": [...] }` (data/covid19_ctseg_5fold_split.json) or nnU-Net's splits_final.json list. */
const SplitSchema = z.union([z.looseObject({ folds: z.array(FoldSchema).min(1) }), z.array(FoldSchema).min(1)]);

/** Validates parsed split JSON (`file` only names it in messages); every problem at once. */
export function parseSplit(json: unknown, file: string): EvaluationSplit {
  if (typeof json !== 'object' || json === null) {
    const message = 'expected { "folds": [ { "train": [...], "test": [...] } ] } or an nnU-Net list of { "train", "val" }';
    throw new ValidationError([{ file, path: '', code: 'wrong-type', message }], { file });
  }
  const result = parseJson(SplitSchema, json, file, 'brackets');
  if (!result.ok) throw new ValidationError(result.issues, { file });
  const folds = Array.isArray(result.value) ? result.value : result.value.folds;
  return { file, folds: folds.map((fold) => ({ train: fold.train ?? [], test: (fold.test ?? fold.val)! })) };
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
