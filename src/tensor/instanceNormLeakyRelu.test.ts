/**
 * The addon's fused instance norm + leaky ReLU against the composed ops it replaces
 * (instanceNorm then leakyRelu, each checked against PyTorch 1.13 by ops.test.ts): output and the
 * gradients of input, weight and bias. Tolerance as ops.test.ts: relative 1e-5 with an absolute
 * floor of 1e-5 times the largest reference magnitude (the two sum in a different order; both
 * accumulate the statistics in double). Where the kernel does not apply (no affine, float64, fp32
 * under autocast) the op is the composed one, so the results are equal bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from './index.js';

interface Case { shape: number[]; offset: number }

/** Forward and gradients of f at fixed inputs: [output, dx, dweight, dbias]. */
function run(f: (x: T.Tensor, w: T.Tensor, b: T.Tensor) => T.Tensor, x0: T.Tensor, w0: T.Tensor, b0: T.Tensor, dy: T.Tensor): Float32Array[] {
  return T.scope(() => {
    const x = T.clone(x0).setRequiresGrad(true);
    const w = T.clone(w0).setRequiresGrad(true);
    const b = T.clone(b0).setRequiresGrad(true);
    const y = f(x, w, b);
    T.sum(T.mul(y, dy)).backward();
    return [y, x.grad!, w.grad!, b.grad!].map((t) => T.cast(t, 'float32').toFloat32Array());
  });
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: size`);
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < expected.length; i++) {
    const bound = 1e-5 * Math.abs(expected[i]!) + 1e-5 * scale;
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= bound, `${what}: element ${i} is ${actual[i]}, the composed ops give ${expected[i]}`);
  }
}

const composed = (x: T.Tensor, w: T.Tensor, b: T.Tensor): T.Tensor => T.leakyRelu(T.instanceNorm(x, w, b, 1e-5), 0.01);
const fused = (x: T.Tensor, w: T.Tensor, b: T.Tensor): T.Tensor => T.instanceNormLeakyRelu(x, w, b, 1e-5, 0.01);

// Planes of 7 (under one 8-lane step), 1331 (over one 1024-term block) and 4096 voxels; an offset
// mean as a conv with bias gives; weights of both signs so the ReLU cuts on both sides.
const CASES: Case[] = [
  { shape: [2, 3, 11, 11, 11], offset: 3 },
  { shape: [1, 4, 1, 1, 7], offset: -1 },
  { shape: [2, 2, 16, 16, 16], offset: 0.5 },
];

for (const c of CASES) {
  test(`instanceNormLeakyRelu ${c.shape.join('x')}: output and gradients equal the composed ops`, () => {
    T.manualSeed(7);
    T.scope(() => {
      const channels = c.shape[1]!;
      const x = T.add(T.mul(T.randn(c.shape), 2), c.offset);
      const w = T.randn([channels]);
      const b = T.mul(T.randn([channels]), 0.5);
      const dy = T.randn(c.shape);
      const expected = run(composed, x, w, b, dy);
      const actual = run(fused, x, w, b, dy);
      for (const [i, name] of ['output', 'd/dx', 'd/dweight', 'd/dbias'].entries()) assertClose(actual[i]!, expected[i]!, name);
    });
  });
}

// A plane of one voxel normalises to 0: the output is leaky_relu(beta), and only beta has a
// gradient (sum over the batch of dy times the ReLU's slope). Computed here by hand: the composed
// ops are further from it (x * a + (beta - mean * a) cancels two values of ~x / sqrt(eps)).
test('instanceNormLeakyRelu on planes of one voxel: leaky_relu(beta), gradient to beta only', () => {
  T.scope(() => {
    const beta = [0.25, -2];
    const x = T.fromArray(new Float32Array([3, -1, 0.5, 7, -4, 2]), [3, 2, 1, 1, 1]);
    const dy = T.fromArray(new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2, 1, 1, 1]);
    const [y, dx, dw, db] = run(fused, x, T.fromArray(new Float32Array([1.5, -0.5]), [2]), T.fromArray(new Float32Array(beta), [2]), dy);
    assert.deepEqual([...y!], [0.25, -0.02, 0.25, -0.02, 0.25, -0.02].map(Math.fround));
    assert.deepEqual([...dx!].map((v) => v + 0), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...dw!].map((v) => v + 0), [0, 0]);
    assert.deepEqual([...db!], [1 + 3 + 5, (2 + 4 + 6) * 0.01].map(Math.fround));
  });
});

test('instanceNormLeakyRelu where the kernel does not apply (float64, no affine, autocast) is the composed op', () => {
  T.manualSeed(3);
  T.scope(() => {
    const x = T.randn([2, 3, 4, 5, 6]);
    const w = T.randn([3]);
    const b = T.randn([3]);
    const equal = (a: T.Tensor, e: T.Tensor) => assert.deepEqual(T.cast(a, 'float32').toFloat32Array(), T.cast(e, 'float32').toFloat32Array());
    const x64 = T.cast(x, 'float64'), w64 = T.cast(w, 'float64'), b64 = T.cast(b, 'float64');
    equal(T.instanceNormLeakyRelu(x64, w64, b64, 1e-5, 0.01), T.leakyRelu(T.instanceNorm(x64, w64, b64, 1e-5), 0.01));
    equal(T.instanceNormLeakyRelu(x, null, null, 1e-5, 0.01), T.leakyRelu(T.instanceNorm(x, null, null, 1e-5), 0.01));
    // bf16 takes ops_fused_bf16.cpp's kernel where the CPU has AVX-512 (instanceNormLeakyReluBf16.test.ts);
    // an fp32 input under autocast, the composed ops.
    const device = { type: 'cpu' } as const;
    equal(
      T.autocast({ device, dtype: 'bfloat16' }, () => T.instanceNormLeakyRelu(x, w, b, 1e-5, 0.01)),
      T.autocast({ device, dtype: 'bfloat16' }, () => T.leakyRelu(T.instanceNorm(x, w, b, 1e-5), 0.01)),
    );
  });
});
