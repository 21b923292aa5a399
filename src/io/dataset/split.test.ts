/**
 * Split files through their zod schema: both layouts read, and every problem of a file is listed
 * at once with its JSON path and code.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { ValidationError } from '../../core/index.js';
import { parseSplit } from './split.js';

function problems(json: unknown): string[] {
  try {
    parseSplit(json, 's.json');
  } catch (error) {
    assert.ok(error instanceof ValidationError);
    return error.issues.map((issue) => `${issue.code} ${issue.path}`);
  }
  return [];
}

test("lesionseg's layout and nnU-Net's splits_final.json read alike", () => {
  assert.deepEqual(parseSplit({ folds: [{ train: ['a', 'b'], test: ['c'] }, { test: ['a'] }] }, 's.json').folds, [
    { train: ['a', 'b'], test: ['c'] },
    { train: [], test: ['a'] },
  ]);
  assert.deepEqual(parseSplit([{ train: ['a'], val: ['b'] }], 'splits_final.json').folds, [{ train: ['a'], test: ['b'] }]);
});

test('every problem of a split file at once, each with its path and code', () => {
  assert.deepEqual(problems({ folds: [{ train: ['x'], test: ['y', 3] }, 5, { train: 'a' }, { test: ['c', 'c', 'x'], train: ['x'] }] }), [
    'bad-case-list folds[0].test',
    'wrong-type folds[1]',
    'bad-case-list folds[2].train',
    'missing-field folds[2].test',
    'duplicate-case folds[3].test',
    'train-test-overlap folds[3]',
  ]);
  assert.deepEqual(problems({ folds: [] }), ['bad-value folds']);
  assert.deepEqual(problems('folds'), ['wrong-type ']);
  assert.deepEqual(problems([{ train: ['a'], val: [''] }]), ['bad-case-list [0].val']);
});
