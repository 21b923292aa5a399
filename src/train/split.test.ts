/** Split files, folds and validation hold-out: the COVID benchmark split, nnU-Net's format, bad folds and unknown cases. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/index.js';
import { chooseValidationCases, defaultSplit, readSplitFile, selectFold, SPLIT_DEFAULTS } from './split.js';

// The copy the package ships (the paper preset reads the same file), so CI always runs these tests.
const COVID_SPLIT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../data/covid19_ctseg_5fold_split.json');
const covidIds = (): string[] => {
  const folds = readSplitFile(COVID_SPLIT);
  return [...new Set(folds.flatMap((f) => [...f.train, ...f.test]))].sort();
};

test('the COVID-19-CT-Seg split: 5 folds of 4 train / 16 test; each case tested exactly 4 times', () => {
  const folds = readSplitFile(COVID_SPLIT);
  assert.equal(folds.length, 5);
  const ids = covidIds();
  assert.equal(ids.length, 20);
  for (let k = 0; k < 5; k++) {
    const fold = selectFold(folds, k, ids, COVID_SPLIT);
    assert.equal(fold.train.length, 4);
    assert.equal(fold.test.length, 16);
  }
  for (const id of ids) assert.equal(folds.filter((f) => f.test.includes(id)).length, 4, id);
  assert.deepEqual(selectFold(folds, 0, ids, COVID_SPLIT).train, ['coronacases_007', 'coronacases_008', 'radiopaedia_36_86526_0', 'radiopaedia_4_85506_1']);
});

test('fold out of range and a split naming missing cases are InputErrors naming the file', () => {
  const folds = [{ train: ['a', 'b'], test: ['c'] }];
  assert.throws(() => selectFold(folds, 1, ['a', 'b', 'c'], 'split.json'), (e: unknown) => e instanceof InputError && /split\.json: fold 1 does not exist: the split has folds 0\.\.0/.test(e.message));
  assert.throws(() => selectFold(folds, -1, ['a', 'b', 'c'], 'split.json'), InputError);
  assert.throws(() => selectFold(folds, 0, ['a', 'c'], 'split.json'), (e: unknown) => e instanceof InputError && /does not have: b/.test(e.message));
  assert.throws(() => selectFold([{ train: ['a'], test: ['a'] }], 0, ['a'], 'split.json'), /both train and test: a/);
});

test("nnU-Net's splits_final.json ([{train, val}]) is read with val as the test cases; bad files are InputErrors", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'split-'));
  const file = path.join(dir, 'splits_final.json');
  fs.writeFileSync(file, JSON.stringify([{ train: ['a', 'b'], val: ['c'] }]));
  assert.deepEqual(readSplitFile(file), [{ train: ['a', 'b'], test: ['c'] }]);
  fs.writeFileSync(file, JSON.stringify({ folds: [{ train: 'a' }] }));
  assert.throws(() => readSplitFile(file), (e: unknown) => e instanceof InputError && e.message.startsWith(file));
  assert.throws(() => readSplitFile(path.join(dir, 'missing.json')), InputError);
  fs.rmSync(dir, { recursive: true });
});

test('the default split is a seeded partition into 5 test folds; too few cases is an InputError', () => {
  const ids = Array.from({ length: 12 }, (_, i) => `case_${String(i).padStart(3, '0')}`);
  const folds = defaultSplit(ids);
  assert.deepEqual(defaultSplit([...ids].reverse()), folds, 'deterministic and independent of the order given');
  assert.deepEqual(folds.map((f) => f.test.length), [3, 3, 2, 2, 2]);
  assert.deepEqual(folds.flatMap((f) => f.test).sort(), ids);
  for (const f of folds) assert.equal(f.train.length + f.test.length, 12);
  assert.throws(() => defaultSplit(['a', 'b', 'c']), InputError);
});

test('by default every training case trains and validates (nnU-Net with the benchmark split: 4 scans, not 3)', () => {
  assert.equal(SPLIT_DEFAULTS.validationFraction, 0);
  assert.deepEqual(chooseValidationCases(['d', 'a', 'c', 'b'], { seed: 3 }), { mode: 'training-cases', train: ['a', 'b', 'c', 'd'], validation: ['a', 'b', 'c', 'd'], fraction: 0 });
});

test('a fraction of 0.2 holds out 20% (at least 1) of the training cases; 4 cases -> 1 validates, 3 train', () => {
  const choice = chooseValidationCases(['d', 'a', 'c', 'b'], { seed: 3, fraction: 0.2 });
  assert.equal(choice.mode, 'held-out');
  assert.equal(choice.validation.length, 1);
  assert.equal(choice.train.length, 3);
  assert.deepEqual([...choice.train, ...choice.validation].sort(), ['a', 'b', 'c', 'd']);
  assert.deepEqual(chooseValidationCases(['a', 'b', 'c', 'd'], { seed: 3, fraction: 0.2 }), choice);
  assert.equal(chooseValidationCases(Array.from({ length: 16 }, (_, i) => `c${i}`), { seed: 1, fraction: 0.2 }).validation.length, 3);
  const single = chooseValidationCases(['a'], { seed: 1, fraction: 0.2 });
  assert.deepEqual(single, { mode: 'training-cases', train: ['a'], validation: ['a'], fraction: 0.2 });
  assert.throws(() => chooseValidationCases(['a', 'b'], { seed: 1, fraction: 1 }), InputError);
});
