/**
 * Windows of one value per channel share one forward pass: which windows count (hand-made volumes:
 * one voxel off, a NaN, two channels, two distinct values), their mirrored mean (hand-computed on
 * a 2 x 2 x 2 block), and the sliding window with sharing against every window run (the tiny U-Net
 * of the PyTorch fixtures on a volume that is mostly one value: no mirroring, full mirroring,
 * adaptive mirroring, an ensemble of two, the asynchronous driver): the same logits, the same
 * mirroring decisions, fewer passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromArray, liveTensors, manualSeed, mul, randn, scope, type Tensor } from '../tensor/index.js';
import type { Triple, WindowBox } from './slidingWindow.js';
import { slidingWindowPredict, slidingWindowPredictAsync, type SlidingWindowOptions, type WindowCounts } from './slidingWindowPredict.js';
import { TINY_PATCH, fixtureUNet } from './test-support.js';
import { findUniformWindows, uniformMirroredMean } from './uniformWindows.js';

test('findUniformWindows: one value per channel in every voxel; a voxel off or a NaN is not; equal inputs share one kind', () => {
  // Two channels, 2 x 4 x 8; windows 2 x 4 x 2 at x 0, 2, 4, 6.
  const shape = [2, 2, 4, 8];
  const data = new Float32Array(2 * 64);
  for (let z = 0; z < 2; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) {
    const v = (z * 4 + y) * 8 + x;
    data[v] = x < 4 ? -1.5 : 0.25; // channel 0: -1.5 left, 0.25 right
    data[64 + v] = 3; // channel 1: 3 everywhere
  }
  data[(1 * 4 + 3) * 8 + 3] = -1.25; // window at x 2: one voxel off in channel 0
  data[64 + (0 * 4 + 1) * 8 + 6] = NaN; // window at x 6: a NaN in channel 1
  const boxes: WindowBox[] = [0, 2, 4, 6].map((x) => ({ start: [0, 0, x] as Triple }));
  const found = scope(() => findUniformWindows(fromArray(data, shape), boxes, [2, 4, 2]));
  assert.deepEqual([...found.kind], [0, -1, 1, -1]);
  assert.deepEqual(found.values, [[-1.5, 3], [0.25, 3]]);
  // The same input twice is one kind.
  const again = scope(() => findUniformWindows(fromArray(data, shape), [boxes[0]!, boxes[2]!, boxes[0]!], [2, 4, 2]));
  assert.deepEqual([...again.kind], [0, 1, 0]);
});

test('uniformMirroredMean: the mean of the logits over their flips (hand-computed, 2 x 2 x 2)', () => {
  // Values 0..7 at (z, y, x) = 4z + 2y + x. Flipping along all combinations of the three axes
  // visits every voxel once: the mean is 3.5 everywhere. Along x only: (v + v') / 2 with v' the
  // x-neighbour: 0.5, 0.5, 2.5, 2.5, ...
  const values = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  const [all, alongX, none] = scope(() => {
    const logits = fromArray(values, [1, 1, 2, 2, 2]);
    return [[0, 1, 2], [2], []].map((axes) => uniformMirroredMean(logits, axes as (0 | 1 | 2)[]).toFloat32Array());
  });
  assert.deepEqual([...all!], new Array(8).fill(3.5));
  assert.deepEqual([...alongX!], [0.5, 0.5, 2.5, 2.5, 4.5, 4.5, 6.5, 6.5]);
  assert.deepEqual([...none!], [...values]);
});

/** 12 x 40 x 36, -1.4 everywhere (air after the CT normalisation) except a noisy block in one corner. */
function mostlyAir(): Tensor {
  return scope(() => {
    manualSeed(11);
    const noise = randn([1, 12, 40, 36]).toFloat32Array();
    const data = new Float32Array(12 * 40 * 36).fill(-1.4);
    for (let z = 0; z < 8; z++) for (let y = 0; y < 14; y++) for (let x = 0; x < 12; x++) data[(z * 40 + y) * 36 + x] = noise[(z * 40 + y) * 36 + x]!;
    return fromArray(data, [1, 12, 40, 36]);
  });
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

test('sliding window: windows of one value share a pass and give every window\'s logits (no, full and adaptive mirroring; one network and two)', () => {
  const network = fixtureUNet();
  // Logits scaled up, so that the classes are far apart in some windows and close in others.
  const forward = (x: Tensor): Tensor => mul(network.forward(x)[0]!, 100);
  const half = (x: Tensor): Tensor => mul(network.forward(x)[0]!, 50);
  const modes: { name: string; options: Partial<SlidingWindowOptions> }[] = [
    { name: 'no mirroring', options: { mirrorAxes: [] } },
    { name: 'full mirroring', options: { mirrorAxes: [0, 1, 2] } },
    // A margin that mirrors some windows and not others (measured: 14 of 32 mirrored).
    { name: 'adaptive', options: { mirrorAxes: [0, 1, 2], mirrorRule: { margin: 0.03, share: 0.3 } } },
  ];
  for (const networks of [[forward], [forward, half]]) for (const mode of modes) for (const windowsPerBatch of [2, 3] as const) {
    scope(() => {
      const volume = mostlyAir();
      const run = (share: boolean): { logits: Float32Array; counts: WindowCounts } => {
        let counts: WindowCounts | null = null;
        const logits = slidingWindowPredict(networks, volume, {
          patchSize: TINY_PATCH, numClasses: 3, windowsPerBatch, ...mode.options, shareUniformWindows: share, onWindows: (w) => { counts = w; },
        }).toFloat32Array();
        return { logits, counts: counts! };
      };
      const every = run(false);
      const shared = run(true);
      const label = `${mode.name}, ${networks.length} network(s), batch ${windowsPerBatch}`;
      // 2 x 4 x 4 windows of 8 x 16 x 16; those clear of the block (z >= 8, y >= 14 or x >= 12 throughout) are air.
      assert.equal(every.counts.total, 32);
      assert.equal(every.counts.uniform, undefined);
      assert.equal(shared.counts.uniform, 24, label);
      // The same logits up to float32 rounding: a window's mirrored passes may be stacked into
      // other batches (adaptive), whose kernels may sum in another order (measured: 0 apart
      // without and with full mirroring, 1 ulp of the largest logit with adaptive); 1e-6 of the
      // largest logit is 8 ulp.
      const largest = every.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(largest > 10);
      assert.ok(maxAbsDifference(shared.logits, every.logits) <= 1e-6 * largest, `${label}: ${maxAbsDifference(shared.logits, every.logits)} of ${largest}`);
      assert.equal(shared.counts.mirrored, every.counts.mirrored, label);
      // Every uniform window's passes are one pass of `windowsPerBatch` windows per network.
      const perWindow = every.counts.passes! / (32 * networks.length);
      if (mode.name !== 'adaptive') assert.equal(shared.counts.passes, (32 - 24) * perWindow * networks.length + windowsPerBatch * networks.length, label);
      else assert.ok(shared.counts.passes! < every.counts.passes!, label);
    });
  }
  network.dispose();
});

test('the asynchronous driver shares the same windows and gives the synchronous logits', async () => {
  const network = fixtureUNet();
  const forward = (x: Tensor): Tensor => network.forward(x)[0]!;
  const volume = mostlyAir();
  const options: SlidingWindowOptions = { patchSize: TINY_PATCH, numClasses: 3, windowsPerBatch: 2, mirrorAxes: [0, 1, 2], mirrorRule: { margin: 2, share: 0.3 } };
  const counts: WindowCounts[] = [];
  const before = liveTensors();
  const sync = scope(() => slidingWindowPredict([forward], volume, { ...options, onWindows: (w) => counts.push(w) }).toFloat32Array());
  assert.equal(liveTensors(), before);
  // The engine keeps only the logits (the network's other outputs are released by its scope).
  const result = await slidingWindowPredictAsync([async (x) => scope(() => forward(x))], volume, { ...options, onWindows: (w) => counts.push(w) });
  // The shared logits are released by both drivers: only the result is left.
  assert.equal(liveTensors(), before + 1);
  assert.deepEqual([...result.toFloat32Array()], [...sync]);
  result.dispose();
  volume.dispose();
  assert.deepEqual(counts[1], counts[0]);
  assert.equal(counts[0]!.uniform, 24);
  network.dispose();
});
