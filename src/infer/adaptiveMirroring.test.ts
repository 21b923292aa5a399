/**
 * Adaptive mirroring: the top-two margins and the window rule on hand-made logits; the sliding
 * window under the rule mirrors exactly the windows the rule names (a hand-made two-class
 * network whose margin is the input's magnitude), and its extremes are the two exact modes: a
 * rule that selects every window gives full mirroring's logits bit for bit, one that selects none
 * the un-mirrored logits bit for bit (the tiny U-Net of the PyTorch fixtures, whose full
 * mirroring slidingWindowPredict.test.ts checks against PyTorch).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cat, fromArray, manualSeed, mul, randn, scope, type Tensor } from '../tensor/index.js';
import { ADAPTIVE_MIRROR_RULE, FULL_MIRROR_RULE, centralRegion, mirrorRuleOf, needsMirroring, topTwoMargins } from './adaptiveMirroring.js';
import { gaussianImportanceMap } from './gaussian.js';
import { slidingWindowPredict, type WindowCounts } from './slidingWindowPredict.js';
import { TINY_PATCH, fixtureUNet } from './test-support.js';

test('topTwoMargins: the largest class logit minus the second, per voxel (3 classes, 4 voxels)', () => {
  // Planes of class 0, 1, 2 over voxels 0..3.
  const logits = Float32Array.from([
    1, 5, -2, 0,
    3, 5, -1, 0,
    2, 0, -7, 0,
  ]);
  assert.deepEqual([...topTwoMargins(logits, 3, 4)], [1, 0, 1, 0]);
  assert.deepEqual([...topTwoMargins(Float32Array.from([4, 2]), 1, 2)], [Infinity, Infinity]);
});

test('centralRegion: the voxels whose Gaussian weight is at least the fraction of the peak', () => {
  const weights = Float32Array.from([1, 4, 10, 4, 1]);
  assert.deepEqual([...centralRegion(weights, 1)], [2]);
  assert.deepEqual([...centralRegion(weights, 0.4)], [1, 2, 3]);
  assert.deepEqual([...centralRegion(weights, 0)], [0, 1, 2, 3, 4]);
  assert.throws(() => centralRegion(weights, 1.5), /in \[0, 1\]/);
  // The patch's map peaks at one voxel, its centre (floor(size / 2) per axis).
  assert.deepEqual([...centralRegion(gaussianImportanceMap([4, 8, 8]), 1)], [(2 * 8 + 4) * 8 + 4]);
});

test('needsMirroring: a gap below the margin (or not finite) inside the region, and only there', () => {
  // Two classes over 5 voxels: gaps 6, 6, 0.5, 6, NaN.
  const logits = Float32Array.from([0, 0, 0, 0, 0, 6, -6, 0.5, 6, NaN]);
  assert.equal(needsMirroring(logits, 2, 5, Uint32Array.from([0, 1, 3]), 1), false);
  assert.equal(needsMirroring(logits, 2, 5, Uint32Array.from([0, 2]), 1), true);
  assert.equal(needsMirroring(logits, 2, 5, Uint32Array.from([0, 2]), 0.5), false, 'a gap equal to the margin is far enough');
  assert.equal(needsMirroring(logits, 2, 5, Uint32Array.from([4]), 1), true, 'NaN logits');
  assert.equal(needsMirroring(logits, 2, 5, Uint32Array.from([0]), Infinity), true, 'the full rule');
  assert.equal(mirrorRuleOf('full'), FULL_MIRROR_RULE);
  assert.equal(mirrorRuleOf('adaptive'), ADAPTIVE_MIRROR_RULE);
});

/**
 * Two classes: logits (0, x) of the input x, voxel by voxel, so the top-two gap is |x| and a
 * flipped window's logits are the flipped logits (mirroring changes nothing but the pass count).
 */
const gapNetwork = (x: Tensor): Tensor => cat([mul(x, 0), x], 1);

/** A volume [1, 8, 16, 16] of 5 with one voxel of 0.25 at (z, y, x). */
function volumeWithLowGapAt(z: number, y: number, x: number): Tensor {
  const data = new Float32Array(8 * 16 * 16).fill(5);
  data[(z * 16 + y) * 16 + x] = 0.25;
  return fromArray(data, [1, 8, 16, 16]);
}

test('the sliding window mirrors exactly the windows whose central region holds a gap below the margin', () => {
  // Patch 4 x 8 x 8, step 0.5: window starts z 0, 2, 4 and y, x 0, 4, 8 (27 windows, 8 passes each when mirrored).
  const cases = [
    // The whole window as region: the windows holding (4, 8, 8) start at z 2 or 4, y 4 or 8, x 4 or 8.
    { voxel: [4, 8, 8], centralWeight: 0, mirrored: 8 },
    // Only the peak voxel (start + (2, 4, 4)): one window, starting at (2, 4, 4).
    { voxel: [4, 8, 8], centralWeight: 1, mirrored: 1 },
    // (3, 7, 7) is no window's peak voxel; it lies in windows starting at z 0 or 2, y 0 or 4, x 0 or 4.
    { voxel: [3, 7, 7], centralWeight: 1, mirrored: 0 },
    { voxel: [3, 7, 7], centralWeight: 0, mirrored: 8 },
  ] as const;
  for (const c of cases) {
    let counts: WindowCounts | null = null;
    scope(() => {
      const logits = slidingWindowPredict([gapNetwork], volumeWithLowGapAt(c.voxel[0], c.voxel[1], c.voxel[2]), {
        patchSize: [4, 8, 8], numClasses: 2, mirrorAxes: [0, 1, 2], windowsPerBatch: 2,
        mirrorRule: { margin: 1, centralWeight: c.centralWeight }, onWindows: (w) => { counts = w; },
      });
      // Mirroring a pointwise network changes nothing: class 1's logit is the input everywhere.
      const values = logits.toFloat32Array();
      assert.ok(Math.abs(values[8 * 16 * 16 + (c.voxel[0] * 16 + c.voxel[1]) * 16 + c.voxel[2]]! - 0.25) < 1e-6);
    });
    assert.deepEqual(counts, { total: 27, run: 27, passes: 27 + 7 * c.mirrored, mirrored: c.mirrored, batch: 2 }, `voxel ${c.voxel.join(',')}, central weight ${c.centralWeight}`);
  }
});

test('a rule that selects every window is full mirroring bit for bit; one that selects none is no mirroring bit for bit (tiny U-Net)', () => {
  const network = fixtureUNet();
  const forward = (x: Tensor): Tensor => network.forward(x)[0]!;
  scope(() => {
    manualSeed(5);
    const volume = randn([1, 12, 40, 36]);
    const run = (mirrorAxes: readonly (0 | 1 | 2)[], margin: number): { logits: Float32Array; counts: WindowCounts } => {
      let counts: WindowCounts | null = null;
      const logits = slidingWindowPredict([forward], volume, {
        patchSize: TINY_PATCH, numClasses: 3, mirrorAxes, windowsPerBatch: 3, mirrorRule: { margin, centralWeight: 0 }, onWindows: (w) => { counts = w; },
      }).toFloat32Array();
      return { logits, counts: counts! };
    };
    const full = run([0, 1, 2], Infinity);
    const every = run([0, 1, 2], 1e30);
    const none = run([0, 1, 2], 0);
    const plain = run([], Infinity);
    // 12 x 40 x 36 with patch 8 x 16 x 16: 2 x 4 x 4 windows.
    assert.deepEqual(full.counts, { total: 32, run: 32, passes: 256, mirrored: 32, batch: 3 });
    assert.deepEqual(every.counts, full.counts);
    assert.deepEqual(none.counts, { total: 32, run: 32, passes: 32, mirrored: 0, batch: 3 });
    assert.deepEqual(plain.counts, none.counts);
    assert.deepEqual(every.logits, full.logits);
    assert.deepEqual(none.logits, plain.logits);
    assert.notDeepEqual(full.logits, plain.logits);
  });
  network.dispose();
});
