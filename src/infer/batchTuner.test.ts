/**
 * The batch tuner with given timings: it tries each size twice and times the second, picks the
 * fastest per window, prefers the smaller size within its margin, and stops trying when the
 * volume runs out of windows. And what makes its choice harmless: a lone last window joins the
 * batch before it, and the sliding window's logits are the same bits whatever the batch size the
 * tuner (or the user) takes, on a U-Net with every kind of layer (3x3x3, 1x3x3 and strided
 * convolutions, a transposed convolution, instance norm, the 1x1x1 head), in fp32 and bf16.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randn, manualSeed, scope } from '../tensor/index.js';
import { BatchTuner, windowsInBatch } from './batchTuner.js';
import { AUTO_BATCH_FP32_CPU, slidingWindowPredict, type InferencePrecision, type WindowCounts } from './slidingWindowPredict.js';
import { fixtureUNet, TINY_PATCH } from './test-support.js';

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

test('each candidate (2 and 4, never 1) runs twice; the second, warm, timing decides', () => {
  const tuner = new BatchTuner();
  // The first batch of every size is slow (primitive creation); warm: 2 -> 0.30, 4 -> 0.31 s per window.
  const warm: Record<number, number> = { 2: 0.3, 4: 0.31 };
  const seen = new Set<number>();
  const sizes = drive(tuner, (size) => {
    const first = !seen.has(size);
    seen.add(size);
    return first ? 5 : warm[size]!;
  });
  assert.deepEqual(sizes, [2, 2, 4, 4]);
  assert.equal(tuner.report.chosen, 2);
  assert.deepEqual(tuner.report.secondsPerWindow, { 2: 0.3, 4: 0.31 });
  assert.equal(tuner.next(100), 2);
  assert.equal(tuner.next(2), 2, 'the last batch takes what is left');
  assert.equal(tuner.next(3), 3, 'a lone last window joins the batch before it');
});

test('a larger batch must beat the smaller by more than the margin', () => {
  const within = new BatchTuner({ margin: 0.05 });
  drive(within, (size) => ({ 2: 0.2, 4: 0.195 })[size]!);
  assert.equal(within.report.chosen, 2, '0.195 is within 5% of 0.2');
  const faster = new BatchTuner({ margin: 0.05 });
  drive(faster, (size) => ({ 2: 0.2, 4: 0.15 })[size]!);
  assert.equal(faster.report.chosen, 4);
});

test('a volume with fewer windows than the trials keeps what it timed, and never runs a batch of 1 unless it has one window', () => {
  const short = new BatchTuner();
  // 2, 2 (timed), then 3 left: 4 is asked for but 3 run (the lone window joined), and 2 is the one timed size.
  assert.deepEqual(drive(short, (size) => ({ 2: 0.2, 3: 0.15, 4: 0.1 })[size]!, 7), [2, 2, 3]);
  assert.equal(short.report.chosen, 2);
  const five = new BatchTuner();
  assert.deepEqual(drive(five, () => 1, 5), [2, 3], '2, then 2 would leave one window alone: 3');
  const one = new BatchTuner();
  assert.deepEqual(drive(one, () => 1, 1), [1], 'one window: a batch of one, whatever the candidates');
  assert.equal(one.report.chosen, 1);
});

test('windowsInBatch: the size, or what is left, with a lone last window joining the batch before it', () => {
  // [size, remaining, windows]
  const table: [number, number, number][] = [[2, 10, 2], [2, 3, 3], [2, 2, 2], [2, 1, 1], [4, 5, 5], [4, 4, 4], [4, 3, 3], [4, 6, 4], [3, 4, 4], [1, 2, 1], [1, 1, 1]];
  for (const [size, remaining, windows] of table) assert.equal(windowsInBatch(size, remaining), windows, `size ${size}, ${remaining} left`);
  for (const size of [2, 3, 4]) {
    for (let total = 2; total <= 12; total++) {
      const batches: number[] = [];
      for (let left = total; left > 0; left -= batches.at(-1)!) batches.push(windowsInBatch(size, left));
      assert.equal(batches.reduce((a, b) => a + b, 0), total);
      assert.ok(batches.every((b) => b >= 2 && b <= size + 1), `size ${size}, ${total} windows: ${batches.join(', ')}`);
    }
  }
});

// 1 x 8 x 16 x 64 with the 8 x 16 x 16 patch at step 0.5: 7 windows along x, so batches of 2 run
// 2, 2, 3; of 3: 3, 4; of 4: 4, 3; of 5: 5, 2; auto: 2, 2 (trials), 3 in bf16, and in fp32 one
// window at a time (AUTO_BATCH_FP32_CPU), checked below against an explicit batch of 1.
for (const precision of ['fp32', 'bf16'] as InferencePrecision[]) {
  test(`the sliding window's logits are the same bits at every batch size from 2 and with --batch auto (${precision})`, () => {
    const network = fixtureUNet();
    scope(() => {
      manualSeed(7);
      const volume = randn([1, 8, 16, 64]);
      const logits = (windowsPerBatch: number | 'auto'): Float32Array =>
        scope(() => slidingWindowPredict([(x) => network.forward(x)[0]!], volume, { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: [], precision, windowsPerBatch }).toFloat32Array());
      const reference = logits(2);
      if (precision === 'fp32') {
        assert.equal(AUTO_BATCH_FP32_CPU, 1);
        assert.deepEqual(logits('auto'), logits(1), 'fp32 auto runs one window at a time');
        let counts: WindowCounts | null = null;
        scope(() => slidingWindowPredict([(x) => network.forward(x)[0]!], volume, { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: [], precision, windowsPerBatch: 'auto', onWindows: (c) => { counts = c; } }));
        assert.deepEqual({ batch: counts!.batch, passes: counts!.passes }, { batch: 1, passes: 7 });
      }
      for (const windowsPerBatch of precision === 'fp32' ? [3, 4, 5] : [3, 4, 5, 'auto'] as const) {
        const other = logits(windowsPerBatch);
        let differing = 0;
        for (let i = 0; i < reference.length; i++) if (other[i] !== reference[i]) differing++;
        assert.equal(differing, 0, `batch ${windowsPerBatch}: ${differing} of ${reference.length} logits differ from batch 2`);
      }
    });
    network.dispose();
  });
}

test('bad candidates are refused', () => {
  assert.throws(() => new BatchTuner({ candidates: [] }), /ascending positive integers/);
  assert.throws(() => new BatchTuner({ candidates: [2, 1] }), /ascending positive integers/);
  assert.throws(() => new BatchTuner({ trials: 0 }), /trials/);
});
