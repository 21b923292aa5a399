/** The training step end to end: the self-test's loss falls, and memory stays flat over many iterations. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizedTensors, liveTensors, nativeFinalizedTensors, nativeLiveTensors } from '../tensor/index.js';
import { collectAndFinalize, collectGarbage } from '../tensor/test-support.js';
import { runSelfTest } from './index.js';

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

test('a small U-Net learns random spheres: the loss falls', async () => {
  const { losses } = await runSelfTest({ iterations: 40, seed: 3 });
  const head = mean(losses.slice(0, 5));
  const tail = mean(losses.slice(-5));
  assert.ok(tail < head - 0.2, `loss ${head.toFixed(3)} -> ${tail.toFixed(3)} should fall by more than 0.2`);
});

/** RSS after a full garbage collection, so that only memory still referenced is counted. */
function settledRss(): number {
  collectGarbage();
  return process.memoryUsage().rss;
}

test('RSS after 200 training iterations is within 5% of its level after warm-up (iterations 20-50; no leak), every tensor disposed, none left to the finalizer', async () => {
  await collectAndFinalize();
  const liveBefore = liveTensors();
  const nativeBefore = nativeLiveTensors();
  const finalizedBefore = finalizedTensors();
  const nativeFinalizedBefore = nativeFinalizedTensors();
  // glibc's per-thread arenas settle over the first iterations and then swing by ~10 MiB between
  // samples (measured: 329-340 MiB); the warm-up level is the highest of four samples, not one.
  const warmUp: number[] = [];
  let rss200 = 0;
  await runSelfTest({
    iterations: 200,
    seed: 5,
    onStep: (i) => {
      if (i === 19 || i === 29 || i === 39 || i === 49) warmUp.push(settledRss());
      if (i === 199) rss200 = settledRss();
    },
  });
  const baseline = Math.max(...warmUp);
  assert.ok(rss200 <= baseline * 1.05, `RSS ${(baseline / 2 ** 20).toFixed(1)} MiB after warm-up (samples ${warmUp.map((r) => (r / 2 ** 20).toFixed(1)).join(', ')}), ${(rss200 / 2 ** 20).toFixed(1)} MiB after 200`);
  await collectAndFinalize();
  assert.equal(liveTensors(), liveBefore);
  assert.equal(nativeLiveTensors(), nativeBefore);
  // Released means disposed: not one tensor of 200 steps was left for the garbage collector's finalizer.
  assert.equal(finalizedTensors() - finalizedBefore, 0, 'tensors released by the JS finalizer instead of dispose()');
  assert.equal(nativeFinalizedTensors() - nativeFinalizedBefore, 0, 'native handles released by the GC finalizer instead of dispose()');
});
