import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../core/index.js';
import { MetricAccumulator } from './accumulator.js';
import { caseMetrics } from './caseMetrics.js';
import { summariseCases } from './summary.js';

const cube = (lo: number, hi: number) => {
  const data = new Uint8Array(8 * 8 * 8);
  for (let z = lo; z < hi; z++) for (let y = lo; y < hi; y++) for (let x = lo; x < hi; x++) data[(z * 8 + y) * 8 + x] = 1;
  return { data, shape: [8, 8, 8] as const };
};

test('MetricAccumulator only stores cases; its summaries equal the pure functions', () => {
  const a = caseMetrics(cube(2, 5), cube(2, 6), [1, 1, 1]);
  const b = caseMetrics(cube(1, 5), cube(2, 5), [1, 1, 1]);
  const acc = new MetricAccumulator();
  acc.add('a', a, 0);
  acc.add('b', b, 1);
  assert.equal(acc.size, 2);
  assert.deepEqual(acc.summary(), summariseCases([a, b]));
  const folds = acc.foldSummary();
  assert.equal(folds.folds.length, 2);
  assert.deepEqual(folds.folds[1], summariseCases([b]));
  assert.throws(() => acc.add('a', a, 0), InputError);
  assert.throws(() => acc.add('c', a, -1), InputError);
  acc.reset();
  assert.equal(acc.size, 0);
});
