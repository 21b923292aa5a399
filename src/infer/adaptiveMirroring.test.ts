/**
 * Adaptive mirroring: the top-two margins and the rule's decisions on hand-made logits (two windows
 * whose blend, shares and gaps are computed by hand); the sliding window under the rule mirrors
 * exactly the windows the rule names (a hand-made two-class network whose margin is the input's
 * magnitude, and the Gaussian's shares worked out in the comments), and its extremes are the two
 * exact modes: a rule that selects every window gives full mirroring's logits bit for bit, one
 * that selects none the un-mirrored logits bit for bit (the tiny U-Net of the PyTorch fixtures,
 * whose full mirroring slidingWindowPredict.test.ts checks against PyTorch; one network and an
 * ensemble of two).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cat, fromArray, manualSeed, mul, randn, scope, type Tensor } from '../tensor/index.js';
import { ADAPTIVE_MIRROR_RULE, FULL_MIRROR_RULE, MirrorDecisions, lastOverlapping, mirrorRuleOf, topTwoMargins } from './adaptiveMirroring.js';
import { gaussianImportanceMap } from './gaussian.js';
import { slidingWindowBoxes, type Triple } from './slidingWindow.js';
import { slidingWindowPredict, slidingWindowPredictAsync, type WindowCounts } from './slidingWindowPredict.js';
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

test('MirrorDecisions: the blend of the un-mirrored logits, each window\'s share of its weight, and the margin (hand-computed, two windows along x)', () => {
  // Volume 1 x 1 x 6, patch 1 x 1 x 4, windows at x 0 and 2 with weights [1, 2, 2, 1]: summed
  // weights [1, 2, 3, 3, 2, 1]; window 0's shares [1, 1, 2/3, 1/3], window 1's [1/3, 2/3, 1, 1] (x 2..5).
  const boxes = [{ start: [0, 0, 0] }, { start: [0, 0, 2] }] as { start: Triple }[];
  const weights = Float32Array.from([1, 2, 2, 1]);
  // Class planes (class 0, class 1) of each window: class 1 minus class 0 is
  // window 0: [5, 5, 2, -1], window 1: [-4, 5, 5, 5]. Blend at x 2: (2 x 2 + 1 x (-4)) / 3 = 0;
  // at x 3: (1 x (-1) + 2 x 5) / 3 = 3; everywhere else |5|.
  const logits = [Float32Array.from([0, 0, 0, 0, 5, 5, 2, -1]), Float32Array.from([0, 0, 0, 0, -4, 5, 5, 5])];
  const decide = (margin: number, share: number): boolean[] => {
    const d = new MirrorDecisions(boxes, [1, 1, 6], [1, 1, 4], weights, 2, { margin, share });
    assert.equal(d.decidable(0, 1), false, 'window 1 overlaps window 0');
    d.add(0, logits[0]!);
    d.add(1, logits[1]!);
    assert.equal(d.decidable(0, 2), true);
    return [d.needsMirroring(0), d.needsMirroring(1)];
  };
  // Gap 0 at x 2, where window 0 holds 2/3 and window 1 holds 1/3.
  assert.deepEqual(decide(1, 0.5), [true, false]);
  assert.deepEqual(decide(1, 0.3), [true, true]);
  assert.deepEqual(decide(1, 0.7), [false, false]);
  // Gap 3 at x 3 (window 1 holds 2/3 there): a margin above 3 names window 1 at share 0.5.
  assert.deepEqual(decide(3.5, 0.5), [true, true]);
  assert.deepEqual(decide(3, 0.5), [true, false], 'a gap equal to the margin is far enough');
  assert.deepEqual(decide(0, 0), [false, false], 'margin 0: no window');
  assert.deepEqual(decide(Infinity, 0), [true, true], 'the full rule');
  assert.deepEqual([...lastOverlapping(boxes, [1, 1, 4])], [1, 1]);
  assert.deepEqual([...lastOverlapping([...boxes, { start: [0, 0, 4] }], [1, 1, 2])], [0, 1, 2], 'boxes that only touch do not overlap');
  assert.throws(() => new MirrorDecisions(boxes, [1, 1, 6], [1, 1, 4], weights, 2, { margin: 1, share: 1.5 }), /in \[0, 1\]/);
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

test('the sliding window mirrors exactly the windows that hold the rule\'s share where the un-mirrored blend is within the margin', () => {
  // Patch 4 x 8 x 8, step 0.5: window starts z 0, 2, 4 and y, x 0, 4, 8 (27 windows, 8 passes each
  // when mirrored). The blend's gap is 0.25 at the one voxel and 5 elsewhere. The Gaussian's sigma
  // is 1/8 of the patch (0.5 voxel along z, 1 along y and x) around its peak (floor(size / 2)):
  // 2 voxels off along z or 4 along y or x is a factor e^-8, 3 voxels off along y or x instead of 1 e^-4.
  const cases = [
    // (4, 8, 8) lies in the 8 windows starting at z 2 or 4, y 4 or 8, x 4 or 8; only the one at
    // (2, 4, 4) has it at its peak, the others at least e^-8 below: its share is over 0.99.
    { voxel: [4, 8, 8], share: 0, mirrored: 8 },
    { voxel: [4, 8, 8], share: 0.5, mirrored: 1 },
    // (3, 7, 7): in the windows starting at z 0 or 2, y 0 or 4, x 0 or 4; the two at y, x 4 see it
    // 1 voxel off their peak along each axis and weigh the same, 4 others e^-4 of that, 2 e^-8:
    // each of the two holds 1 / (2 + 4 e^-4 + 2 e^-8) = 0.482.
    { voxel: [3, 7, 7], share: 0.5, mirrored: 0 },
    { voxel: [3, 7, 7], share: 0.45, mirrored: 2 },
    { voxel: [3, 7, 7], share: 0, mirrored: 8 },
  ] as const;
  for (const c of cases) {
    let counts: WindowCounts | null = null;
    scope(() => {
      const logits = slidingWindowPredict([gapNetwork], volumeWithLowGapAt(c.voxel[0], c.voxel[1], c.voxel[2]), {
        patchSize: [4, 8, 8], numClasses: 2, mirrorAxes: [0, 1, 2], windowsPerBatch: 2,
        mirrorRule: { margin: 1, share: c.share }, onWindows: (w) => { counts = w; }, shareUniformWindows: false,
      });
      // Mirroring a pointwise network changes nothing: class 1's logit is the input everywhere.
      const values = logits.toFloat32Array();
      assert.ok(Math.abs(values[8 * 16 * 16 + (c.voxel[0] * 16 + c.voxel[1]) * 16 + c.voxel[2]]! - 0.25) < 1e-6);
      assert.ok(Math.abs(values[8 * 16 * 16 + 5]! - 5) < 1e-6);
    });
    assert.deepEqual(counts, { total: 27, run: 27, passes: 27 + 7 * c.mirrored, mirrored: c.mirrored, batch: 2 }, `voxel ${c.voxel.join(',')}, share ${c.share}`);
  }
});

for (const precision of ['fp32', 'bf16'] as const) test(`a rule that selects every window is full mirroring bit for bit; one that selects none is no mirroring bit for bit (tiny U-Net, one network and two, ${precision}: the waiting windows' logits kept in the network's dtype)`, () => {
  const network = fixtureUNet();
  const forward = (x: Tensor): Tensor => network.forward(x)[0]!;
  // A second member of an ensemble: the same network, its logits halved.
  const half = (x: Tensor): Tensor => mul(network.forward(x)[0]!, 0.5);
  for (const networks of [[forward], [forward, half]]) {
    scope(() => {
      manualSeed(5);
      const volume = randn([1, 12, 40, 36]);
      const run = (mirrorAxes: readonly (0 | 1 | 2)[], margin: number, share = 0): { logits: Float32Array; counts: WindowCounts } => {
        let counts: WindowCounts | null = null;
        const logits = slidingWindowPredict(networks, volume, {
          patchSize: TINY_PATCH, numClasses: 3, mirrorAxes, windowsPerBatch: 3, mirrorRule: { margin, share }, precision, onWindows: (w) => { counts = w; },
        }).toFloat32Array();
        return { logits, counts: counts! };
      };
      const m = networks.length;
      const full = run([0, 1, 2], Infinity);
      const every = run([0, 1, 2], 1e30);
      const none = run([0, 1, 2], 0);
      const plain = run([], Infinity);
      const some = run([0, 1, 2], 0.001, 0.7);
      // 12 x 40 x 36 with patch 8 x 16 x 16: 2 x 4 x 4 windows.
      assert.deepEqual(full.counts, { total: 32, run: 32, passes: 256 * m, mirrored: 32 * m, batch: 3 });
      assert.deepEqual(every.counts, full.counts);
      assert.deepEqual(none.counts, { total: 32, run: 32, passes: 32 * m, mirrored: 0, batch: 3 });
      assert.deepEqual(plain.counts, none.counts);
      assert.deepEqual(every.logits, full.logits);
      assert.deepEqual(none.logits, plain.logits);
      assert.notDeepEqual(full.logits, plain.logits);
      // A margin between the two mirrors some windows, and its logits are neither extreme's.
      assert.ok(some.counts.mirrored! > 0 && some.counts.mirrored! < 32 * m, `${some.counts.mirrored} windows mirrored`);
      assert.notDeepEqual(some.logits, full.logits);
      assert.notDeepEqual(some.logits, plain.logits);
    });
  }
  network.dispose();
});

test('the asynchronous driver (onnxruntime engines) mirrors the same windows and gives the same logits', async () => {
  const network = fixtureUNet();
  const forward = (x: Tensor): Tensor => network.forward(x)[0]!;
  manualSeed(5);
  const volume = randn([1, 12, 40, 36]);
  const options = { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: [0, 1, 2] as const, windowsPerBatch: 3, mirrorRule: { margin: 0.001, share: 0.7 } };
  const counts: WindowCounts[] = [];
  const sync = slidingWindowPredict([forward], volume, { ...options, onWindows: (w) => counts.push(w) });
  const async = await slidingWindowPredictAsync([async (x) => forward(x)], volume, { ...options, onWindows: (w) => counts.push(w) });
  assert.deepEqual(async.toFloat32Array(), sync.toFloat32Array());
  assert.deepEqual(counts[1], counts[0]);
  assert.ok(counts[0]!.mirrored! > 0 && counts[0]!.mirrored! < 32);
  for (const t of [sync, async, volume]) t.dispose();
  network.dispose();
});

test('MirrorDecisions keeps about two patch depths of planes, and decides as the rule on whole-volume maps does (36 windows in 9 z-layers, 3 classes)', () => {
  // Volume 20 x 6 x 6, patch 4 x 4 x 4, step 0.5: z-starts 0, 2, .., 16 and y, x 0, 2 (36 windows, z-major).
  const shape: Triple = [20, 6, 6];
  const patch: Triple = [4, 4, 4];
  const boxes = slidingWindowBoxes(shape, patch, 0.5);
  assert.equal(boxes.length, 36);
  const weights = gaussianImportanceMap(patch);
  const P = weights.length;
  // Class 1 minus class 0 follows z - 9.6 (crossing 0 between planes 9 and 10) plus a little noise; class 2 stays below both.
  let seed = 12345;
  const noise = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.2;
  const logits = boxes.map((box) => {
    const l = new Float32Array(3 * P);
    let v = 0;
    for (let z = 0; z < 4; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++, v++) {
      l[v] = 0;
      l[P + v] = (box.start[0]! + z - 9.6) * 0.4 + noise();
      l[2 * P + v] = -5;
    }
    return l;
  });
  // The reference: whole-volume maps of the summed weights and the blend, added in window order, and the rule.
  const N = shape[0] * shape[1] * shape[2];
  const sum = new Float32Array(N);
  const blend = new Float32Array(3 * N);
  const voxelsOf = (box: { start: readonly number[] }, f: (v: number, o: number) => void): void => {
    let v = 0;
    for (let z = 0; z < 4; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++, v++) f(v, ((box.start[0]! + z) * 6 + box.start[1]! + y) * 6 + box.start[2]! + x);
  };
  boxes.forEach((box, i) => voxelsOf(box, (v, o) => {
    sum[o]! += weights[v]!;
    for (let k = 0; k < 3; k++) blend[k * N + o]! += weights[v]! * logits[i]![k * P + v]!;
  }));
  const rule = { margin: 0.5, share: 0.2 };
  const expected = boxes.map((box) => {
    let mirror = false;
    voxelsOf(box, (v, o) => {
      const values = [0, 1, 2].map((k) => blend[k * N + o]!).sort((a, b) => b - a);
      if (weights[v]! >= rule.share * sum[o]! && !(values[0]! - values[1]! >= rule.margin * sum[o]!)) mirror = true;
    });
    return mirror;
  });
  assert.ok(expected.some(Boolean) && !expected.every(Boolean), 'the case mirrors some windows, not all');
  // As the sliding window uses it: add window by window, decide every window as soon as it is decidable.
  const d = new MirrorDecisions(boxes, shape, patch, weights, 3, rule);
  const decided: boolean[] = [];
  let most = 0;
  boxes.forEach((_, i) => {
    d.add(i, logits[i]!);
    most = Math.max(most, d.planesHeld);
    while (decided.length <= i && d.decidable(decided.length, i + 1)) decided.push(d.needsMirroring(decided.length));
  });
  assert.deepEqual(decided, expected);
  assert.equal(d.needsMirroring(35), expected[35], 'asked again: the same answer');
  // The undecided windows and the last one added span at most 2 patch depths, far from the volume's 20 planes.
  assert.ok(most <= 2 * patch[0], `${most} planes held`);
  assert.throws(() => d.add(0, logits[0]!), /decided before it was added/);
});
