/**
 * The tensor-level sliding window: against PyTorch's reference (make_infer_fixtures.py, same
 * weights) with and without mirroring, equal to one whole-volume forward pass where the volume fits
 * one window or the network is translation-equivariant, and with bounded memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readNpy } from '../io/index.js';
import { finalizedTensors, fromArray, liveTensors, manualSeed, nativeFinalizedTensors, noGrad, randn, reshape, scope, type Tensor } from '../tensor/index.js';
import { collectAndFinalize } from '../tensor/test-support.js';
import { slidingWindowPredict } from './slidingWindowPredict.js';
import { FIXTURES, PointwiseNetwork, TINY_CONFIG, TINY_PATCH, fixtureUNet } from './test-support.js';

function loadTensor(name: string): Tensor {
  const array = readNpy(path.join(FIXTURES, name));
  return fromArray(array.data as Float32Array, array.shape);
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

const cases = [
  { volume: 'volume_bigger.npy', logits: 'logits_bigger_tta.npy', mirrorAxes: [0, 1, 2] as const },
  { volume: 'volume_bigger.npy', logits: 'logits_bigger_notta.npy', mirrorAxes: [] as const },
  { volume: 'volume_smaller.npy', logits: 'logits_smaller_tta.npy', mirrorAxes: [0, 1, 2] as const },
  { volume: 'volume_smaller.npy', logits: 'logits_smaller_notta.npy', mirrorAxes: [] as const },
];

for (const c of cases) {
  test(`sliding window equals PyTorch's reference: ${c.logits}`, () => {
    const network = fixtureUNet();
    scope(() => {
      const volume = loadTensor(c.volume);
      const expected = readNpy(path.join(FIXTURES, c.logits));
      for (const windowsPerBatch of [1, 3]) {
        const logits = slidingWindowPredict([(x) => network.forward(x)[0]!], volume, { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: c.mirrorAxes, windowsPerBatch });
        assert.deepEqual(logits.shape, expected.shape);
        const error = maxAbsDifference(logits.toFloat32Array(), expected.data as Float32Array);
        assert.ok(error < 2e-5, `max |difference| ${error} (batch ${windowsPerBatch})`);
      }
    });
    network.dispose();
  });
}

test('a volume of exactly one window: windowed logits = one whole-volume forward pass (1e-5)', () => {
  const network = fixtureUNet();
  scope(() => {
    manualSeed(3);
    const volume = randn([1, ...TINY_PATCH]);
    const whole = noGrad(() => network.forward(reshape(volume, [1, 1, ...TINY_PATCH]))[0]!).toFloat32Array();
    const windowed = slidingWindowPredict([(x) => network.forward(x)[0]!], volume, { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: [] }).toFloat32Array();
    assert.ok(maxAbsDifference(windowed, whole) < 1e-5);
  });
  network.dispose();
});

test('a translation-equivariant (1x1x1 conv) network gives the whole-volume result with many windows, mirrored or not', () => {
  manualSeed(5);
  const network = new PointwiseNetwork(TINY_CONFIG);
  scope(() => {
    const volume = randn([1, 21, 45, 37]);
    const whole = noGrad(() => network.forward(reshape(volume, [1, 1, 21, 45, 37]))[0]!).toFloat32Array();
    for (const mirrorAxes of [[], [0, 1, 2]] as const) {
      const windowed = slidingWindowPredict([(x) => network.forward(x)[0]!], volume, { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes, windowsPerBatch: 4 }).toFloat32Array();
      assert.ok(maxAbsDifference(windowed, whole) < 1e-5, `mirror ${mirrorAxes.join(',')}`);
    }
  });
  network.dispose();
});

test('an ensemble of one network twice equals that network; of two networks, the mean of their logits', () => {
  manualSeed(8);
  const a = new PointwiseNetwork(TINY_CONFIG);
  const b = new PointwiseNetwork(TINY_CONFIG);
  scope(() => {
    const volume = randn([1, 10, 20, 18]);
    const options = { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: [] as const };
    const fa = (x: Tensor) => a.forward(x)[0]!;
    const fb = (x: Tensor) => b.forward(x)[0]!;
    const single = slidingWindowPredict([fa], volume, options).toFloat32Array();
    const twice = slidingWindowPredict([fa, fa], volume, options).toFloat32Array();
    assert.ok(maxAbsDifference(single, twice) < 1e-6);
    const other = slidingWindowPredict([fb], volume, options).toFloat32Array();
    const both = slidingWindowPredict([fa, fb], volume, options).toFloat32Array();
    assert.ok(maxAbsDifference(both, single.map((v, i) => (v + other[i]!) / 2)) < 1e-5);
  });
  a.dispose();
  b.dispose();
});

test('memory: live tensors stay bounded while many windows run, and return to the baseline after', () => {
  const network = fixtureUNet();
  const volume = randn([1, 40, 80, 72]).keep();
  const before = liveTensors();
  const seen: number[] = [];
  let windows = 0;
  const progress = { start: (_: string, total: number) => { windows = total; }, tick: () => seen.push(liveTensors()), stop: () => {} };
  const logits = slidingWindowPredict([(x) => network.forward(x)[0]!], volume, { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: [0], windowsPerBatch: 2, progress });
  assert.equal(windows, 9 * 9 * 8);
  assert.equal(seen.length, Math.ceil(windows / 2));
  // Per batch: the padded input view, weight maps and the two accumulators, never a window's output.
  assert.ok(Math.max(...seen) - before <= 6, `live tensors during the run: ${Math.min(...seen)}..${Math.max(...seen)} (baseline ${before})`);
  assert.equal(liveTensors(), before + 1);
  logits.dispose();
  volume.dispose();
  network.dispose();
});

/**
 * bf16 keeps 8 significant bits: rounding an fp32 value to it moves it by up to 2^-9 relative. Under
 * autocast each conv rounds its input and its weight to bf16 and its output back (3 roundings); the
 * norms in between rescale, so the relative error adds up over the convs (L), at most
 * L * 3 * 2^-9 of the logits' scale (max |fp32 logit|). Measured: 0.050 of 6.4 on an AMD EPYC with
 * AVX512-BF16, 0.150 on an AVX2-only EPYC, where oneDNN emulates bf16; the bound is 0.30 here.
 */
test('bf16 autocast: float32 logits within the bf16 rounding bound of the fp32 result', () => {
  const network = fixtureUNet();
  const convLayers = [...network.namedParameters()].filter(([, parameter]) => parameter.value.shape.length === 5).length;
  assert.equal(convLayers, 8, 'the tiny U-Net: 2 + 2 encoder convs, 1 transposed conv, 2 decoder convs, 1 head');
  scope(() => {
    const volume = loadTensor('volume_bigger.npy');
    const options = { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes: [] as const };
    const fp32 = slidingWindowPredict([(x) => network.forward(x)[0]!], volume, options);
    const bf16 = slidingWindowPredict([(x) => network.forward(x)[0]!], volume, { ...options, precision: 'bf16' });
    assert.equal(bf16.dtype, 'float32');
    const reference = fp32.toFloat32Array();
    let scale = 0;
    for (const v of reference) scale = Math.max(scale, Math.abs(v));
    const bound = convLayers * 3 * 2 ** -9 * scale;
    const error = maxAbsDifference(bf16.toFloat32Array(), reference);
    assert.ok(error > 0, 'bf16 differs from fp32 at all (autocast took effect)');
    assert.ok(error <= bound, `bf16 vs fp32: max |difference| ${error} > ${bound.toFixed(3)} (L ${convLayers}, logit scale ${scale.toFixed(2)})`);
  });
  network.dispose();
});

test('every window releases its tensors by dispose (none left to the GC finalizer), with and without mirroring', async () => {
  const network = fixtureUNet();
  await collectAndFinalize();
  const live = liveTensors();
  const finalized = finalizedTensors();
  const nativeFinalized = nativeFinalizedTensors();
  for (const mirrorAxes of [[], [0, 1, 2]] as const) {
    scope(() => {
      const volume = loadTensor('volume_bigger.npy');
      slidingWindowPredict([(x) => network.forward(x)[0]!], volume, { patchSize: TINY_PATCH, numClasses: 3, mirrorAxes, windowsPerBatch: 2 });
    });
  }
  await collectAndFinalize();
  assert.equal(liveTensors(), live, 'no tensor of the windows is still alive');
  assert.equal(finalizedTensors() - finalized, 0, 'tensors released by the JS finalizer instead of dispose()');
  assert.equal(nativeFinalizedTensors() - nativeFinalized, 0, 'native handles released by the GC finalizer instead of dispose()');
  network.dispose();
});
