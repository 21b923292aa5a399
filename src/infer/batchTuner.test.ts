/**
 * The batch tuner with given timings: it tries each size twice and times the second, picks the
 * fastest per window, prefers the smaller size within its margin, and stops trying when the
 * volume runs out of windows.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchTuner } from './batchTuner.js';

/** Feed `secondsPerWindow(size)` for each batch until the tuner has chosen; returns the sizes it asked for. */
function drive(tuner: BatchTuner, secondsPerWindow: (size: number, trial: number) => number, windows = 1000): number[] {
  const sizes: number[] = [];
  let left = windows;
  for (let trial = 0; left > 0 && tuner.report.chosen === null; trial++) {
    const size = tuner.next(left);
    sizes.push(size);
    tuner.record(size, size * secondsPerWindow(size, trial));
    left -= size;
  }
  return sizes;
}

test('each candidate runs twice; the second, warm, timing decides', () => {
  const tuner = new BatchTuner();
  // The first batch of every size is slow (primitive creation); warm: 1 -> 0.40, 2 -> 0.30, 4 -> 0.31 s per window.
  const warm: Record<number, number> = { 1: 0.4, 2: 0.3, 4: 0.31 };
  const seen = new Set<number>();
  const sizes = drive(tuner, (size) => {
    const first = !seen.has(size);
    seen.add(size);
    return first ? 5 : warm[size]!;
  });
  assert.deepEqual(sizes, [1, 1, 2, 2, 4, 4]);
  assert.equal(tuner.report.chosen, 2);
  assert.deepEqual(tuner.report.secondsPerWindow, { 1: 0.4, 2: 0.3, 4: 0.31 });
  assert.equal(tuner.next(100), 2);
  assert.equal(tuner.next(1), 1, 'the last batch takes what is left');
});

test('a larger batch must beat the smaller by more than the margin', () => {
  const within = new BatchTuner({ margin: 0.05 });
  drive(within, (size) => ({ 1: 0.2, 2: 0.195, 4: 0.19 })[size]!);
  assert.equal(within.report.chosen, 1, '0.195 and 0.19 are within 5% of 0.2');
  const faster = new BatchTuner({ margin: 0.05 });
  drive(faster, (size) => ({ 1: 0.2, 2: 0.15, 4: 0.1 })[size]!);
  assert.equal(faster.report.chosen, 4);
});

test('a volume with fewer windows than the trials keeps what it timed', () => {
  const short = new BatchTuner();
  const sizes = drive(short, (size) => ({ 1: 0.4, 2: 0.2, 4: 0.1 })[size]!, 5);
  // 1, 1 (timed), 2 (untimed first), then only 1 window left: 1 is the one timed size.
  assert.deepEqual(sizes, [1, 1, 2, 1]);
  assert.equal(short.report.chosen, 1);
  const tiny = new BatchTuner();
  assert.deepEqual(drive(tiny, () => 1, 1), [1]);
  assert.equal(tiny.report.chosen, null, 'one window: nothing to choose');
});

test('bad candidates are refused', () => {
  assert.throws(() => new BatchTuner({ candidates: [] }), /ascending positive integers/);
  assert.throws(() => new BatchTuner({ candidates: [2, 1] }), /ascending positive integers/);
  assert.throws(() => new BatchTuner({ trials: 0 }), /trials/);
});
