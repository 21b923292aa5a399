/**
 * The addon's bf16 instance norm + leaky ReLU (native/src/ops_fused_bf16.cpp: bf16 in and out, fp32
 * arithmetic, AVX-512 where the CPU has it) against ATen's composed bf16 ops (setBf16Kernels(false):
 * instance_norm then leaky_relu_, as the op runs without AVX-512), on a bf16 activation with fp32
 * affine parameters as under autocast. Without AVX-512 both runs are the composed ops and equal.
 *
 * Bounds (bf16 keeps 8 significant bits: one rounding moves a value by <= 2^-9 of it):
 * - output: each side rounds its fp32 result to bf16 (the composed ops twice for negative values:
 *   the norm's output, then its product with the slope), and their fp32 statistics differ by
 *   ~1e-6 relative: |a - b| <= 2^-7 |b| + 2^-7 max|b| (4 roundings' worth, floor for values near 0);
 * - input gradient: the composed backward rounds the ReLU's gradient g and dx to bf16, and
 *   g - mean(g) - xhat mean(g xhat) cancels: |a - b| <= 2^-7 |b| + 2^-7 max|b|;
 * - weight / bias gradients: sums over the plane of g xhat and g, with g rounded to bf16 on the
 *   composed side (<= 2^-9 |g| per term): |a - b| <= 2^-8 sum |dy xhat| and 2^-8 sum |dy|.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from './index.js';

const device = { type: 'cpu' } as const;

/** Under bf16 autocast: y = instanceNormLeakyRelu(x) and the gradients of sum(y * dy): [y, dx, dw, db] as float32. */
function run(x0: T.Tensor, w0: T.Tensor, b0: T.Tensor, dy: T.Tensor, kernels: boolean): Float32Array[] {
  const previous = T.setBf16Kernels(kernels);
  try {
    return T.scope(() => {
      const x = T.clone(x0).setRequiresGrad(true);
      const w = T.clone(w0).setRequiresGrad(true);
      const b = T.clone(b0).setRequiresGrad(true);
      const y = T.autocast({ device, dtype: 'bfloat16' }, () => T.instanceNormLeakyRelu(x, w, b, 1e-5, 0.01));
      assert.equal(y.dtype, 'bfloat16');
      y.backward(dy);
      assert.equal(x.grad!.dtype, 'bfloat16');
      assert.equal(w.grad!.dtype, 'float32');
      return [y, x.grad!, w.grad!, b.grad!].map((t) => T.cast(t, 'float32').toFloat32Array());
    });
  } finally {
    T.setBf16Kernels(previous);
  }
}

const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

// Planes of 8x16x17 = 2176 voxels (over one 2048-term block, not a multiple of 16 lanes) and of 7.
for (const shape of [[2, 3, 8, 16, 17], [3, 2, 1, 1, 7]]) {
  test(`bf16 instanceNormLeakyRelu ${shape.join('x')}: output and gradients within bf16 bounds of the composed ops`, () => {
    T.manualSeed(13);
    T.scope(() => {
      const [batch, channels] = [shape[0]!, shape[1]!];
      const plane = shape.slice(2).reduce((a, b) => a * b, 1);
      const x = T.cast(T.add(T.mul(T.randn(shape), 3), 1.5), 'bfloat16');
      const w = T.randn([channels]);
      const b = T.mul(T.randn([channels]), 0.5);
      const dy = T.cast(T.randn(shape), 'bfloat16');
      const [y, dx, dw, db] = run(x, w, b, dy, true);
      const [yRef, dxRef, dwRef, dbRef] = run(x, w, b, dy, false);
      for (const [name, actual, expected] of [['output', y!, yRef!], ['d/dx', dx!, dxRef!]] as const) {
        const floor = 2 ** -7 * maxAbs(expected);
        for (let i = 0; i < expected.length; i++) {
          assert.ok(Math.abs(actual[i]! - expected[i]!) <= 2 ** -7 * Math.abs(expected[i]!) + floor, `${name}[${i}] = ${actual[i]}, composed ${expected[i]}`);
        }
      }
      // Sums of |dy xhat| and |dy| per channel, xhat from the bf16 input in double.
      const xs = T.cast(x, 'float32').toFloat32Array(), dys = T.cast(dy, 'float32').toFloat32Array();
      const sumDyXhat = new Array(channels).fill(0), sumDy = new Array(channels).fill(0);
      for (let p = 0; p < batch * channels; p++) {
        let mean = 0, variance = 0;
        for (let i = 0; i < plane; i++) mean += xs[p * plane + i]! / plane;
        for (let i = 0; i < plane; i++) variance += (xs[p * plane + i]! - mean) ** 2 / plane;
        for (let i = 0; i < plane; i++) {
          sumDyXhat[p % channels] += Math.abs(dys[p * plane + i]! * (xs[p * plane + i]! - mean)) / Math.sqrt(variance + 1e-5);
          sumDy[p % channels] += Math.abs(dys[p * plane + i]!);
        }
      }
      for (let c = 0; c < channels; c++) {
        assert.ok(Math.abs(dw![c]! - dwRef![c]!) <= 2 ** -8 * sumDyXhat[c], `d/dweight[${c}] = ${dw![c]}, composed ${dwRef![c]}`);
        assert.ok(Math.abs(db![c]! - dbRef![c]!) <= 2 ** -8 * sumDy[c], `d/dbias[${c}] = ${db![c]}, composed ${dbRef![c]}`);
      }
    });
  });
}

// A plane of one voxel normalises to 0: y = leaky_relu(beta) in bf16, no gradient to x or the
// weight, and the bias gets the sum over the batch of dy times the ReLU's slope (hand computed).
test('bf16 instanceNormLeakyRelu on planes of one voxel: leaky_relu(beta), gradient to beta only', () => {
  T.scope(() => {
    const x = T.cast(T.fromArray(new Float32Array([3, -1, 0.5, 7, -4, 2]), [3, 2, 1, 1, 1]), 'bfloat16');
    const dy = T.cast(T.fromArray(new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2, 1, 1, 1]), 'bfloat16');
    const w = T.fromArray(new Float32Array([1.5, -0.5]), [2]);
    const b = T.fromArray(new Float32Array([0.25, -2]), [2]);
    for (const kernels of [true, false]) {
      const [y, dx, dw, db] = run(x, w, b, dy, kernels);
      // -2 * 0.01 rounded to bf16: 0xbca4 = -0.0200195...
      const negative = -(1 + 0x24 / 128) * 2 ** -6;
      assert.deepEqual([...y!], [0.25, negative, 0.25, negative, 0.25, negative]);
      assert.deepEqual([...dx!].map((v) => v + 0), [0, 0, 0, 0, 0, 0]);
      assert.deepEqual([...dw!].map((v) => v + 0), [0, 0]);
      assert.equal(db![0], 9);
      assert.ok(Math.abs(db![1]! - 0.12) <= 1e-3, `kernels ${kernels}: d/dbias[1] = ${db![1]}`);
    }
  });
});

test('bf16 instanceNormLeakyRelu with the kernels off is the composed ops, bit for bit', () => {
  T.manualSeed(4);
  T.scope(() => {
    const x = T.cast(T.randn([2, 3, 4, 5, 6]), 'bfloat16');
    const w = T.randn([3]);
    const b = T.randn([3]);
    const previous = T.setBf16Kernels(false);
    try {
      const fused = T.autocast({ device, dtype: 'bfloat16' }, () => T.instanceNormLeakyRelu(x, w, b, 1e-5, 0.01));
      const composed = T.autocast({ device, dtype: 'bfloat16' }, () => T.leakyRelu(T.instanceNorm(x, w, b, 1e-5), 0.01));
      assert.deepEqual(T.cast(fused, 'float32').toFloat32Array(), T.cast(composed, 'float32').toFloat32Array());
    } finally {
      T.setBf16Kernels(previous);
    }
  });
});
