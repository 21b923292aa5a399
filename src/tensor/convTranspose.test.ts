/**
 * The transposed convolution whose kernel equals its stride (nnU-Net's up-sampling; the addon's
 * ConvTransposeNonOverlapping in native/src/ops_nn.cpp, a batched product and one permutation)
 * against a float64 loop of its definition: y[b][o][d*kd+i][h*kh+j][w*kw+l] = bias[o] +
 * sum over c of x[b][c][d][h][w] * weight[c][o][i][j][l], and the gradients of sum(y * dy). Batch 2 (a
 * product that mixed the batch's items would fail), anisotropic (1x2x2) and isotropic (2x2x2) kernels.
 * fp32: the sums run over Cin = 3 terms (y, dx: Cout*k terms), relative error ~1e-7, bound
 * 1e-5 (|ref| + the sum of |terms|). bf16 under autocast: the product takes bf16 inputs and the reference
 * the same rounded values; libtorch's bf16 product of so few terms may round each partial sum to
 * bf16 (Cin roundings of at most 2^-9 S, S the sum of |terms|), then the bias (rounded) is added and
 * the sum rounded: |y - ref| <= 2^-9 ((Cin + 1) S + 2 |bias|), taken with a factor 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from './index.js';

const [batch, cin, cout] = [2, 3, 2];
const spatial = [2, 3, 2];

/** Round to bfloat16, nearest even. */
function bf16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16) << 16;
  return f[0]!;
}

/** The definition in float64: [y, |y| terms, dx, dw, db] for x [B,Cin,D,H,W], weight [Cin,Cout,kd,kh,kw], dy. */
function reference(x: Float32Array, weight: Float32Array, bias: Float32Array, dy: Float32Array, k: number[]) {
  const [D, H, W] = spatial as [number, number, number];
  const [kd, kh, kw] = k as [number, number, number];
  const [OD, OH, OW] = [D * kd, H * kh, W * kw];
  const y = new Float64Array(batch * cout * OD * OH * OW), magnitude = new Float64Array(y.length);
  const dx = new Float64Array(x.length), dw = new Float64Array(weight.length), db = new Float64Array(cout);
  for (let b = 0; b < batch; b++) for (let o = 0; o < cout; o++) for (let z = 0; z < OD; z++) for (let r = 0; r < OH; r++) for (let s = 0; s < OW; s++) {
    const out = (((b * cout + o) * OD + z) * OH + r) * OW + s;
    const [d, i, h, j, w, l] = [Math.floor(z / kd), z % kd, Math.floor(r / kh), r % kh, Math.floor(s / kw), s % kw];
    let sum = bias[o]!, abs = Math.abs(bias[o]!);
    db[o] = db[o]! + dy[out]!;
    for (let c = 0; c < cin; c++) {
      const xi = (((b * cin + c) * D + d) * H + h) * W + w;
      const wi = (((c * cout + o) * kd + i) * kh + j) * kw + l;
      sum += x[xi]! * weight[wi]!;
      abs += Math.abs(x[xi]! * weight[wi]!);
      dx[xi] = dx[xi]! + dy[out]! * weight[wi]!;
      dw[wi] = dw[wi]! + dy[out]! * x[xi]!;
    }
    y[out] = sum;
    magnitude[out] = abs;
  }
  return { y, magnitude, dx, dw, db };
}

function assertWithin(actual: Float32Array, expected: Float64Array, bound: (i: number) => number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= bound(i), `${what}[${i}] = ${actual[i]}, float64 gives ${expected[i]}`);
  }
}

for (const k of [[1, 2, 2], [2, 2, 2]]) {
  test(`convTranspose3d, kernel = stride ${k.join('x')}, batch 2: output and gradients equal the float64 definition (fp32; bf16 under autocast)`, () => {
    T.manualSeed(3);
    T.scope(() => {
      const x0 = T.randn([batch, cin, ...spatial]);
      const w0 = T.randn([cin, cout, ...k]);
      const b0 = T.randn([cout]);
      const out = [batch, cout, ...spatial.map((n, a) => n * k[a]!)];
      const dy = T.cast(T.cast(T.randn(out), 'bfloat16'), 'float32');
      const [xs, ws, bs, dys] = [x0, w0, b0, dy].map((t) => t.toFloat32Array()) as [Float32Array, Float32Array, Float32Array, Float32Array];

      const x = T.clone(x0).setRequiresGrad(true), w = T.clone(w0).setRequiresGrad(true), b = T.clone(b0).setRequiresGrad(true);
      const y = T.convTranspose3d(x, w, b, { stride: k });
      assert.deepEqual(y.shape, out);
      T.sum(T.mul(y, dy)).backward();
      const ref = reference(xs, ws, bs, dys, k);
      const tight = (r: Float64Array) => (i: number) => 1e-5 * (Math.abs(r[i]!) + 1);
      assertWithin(y.toFloat32Array(), ref.y, (i) => 1e-5 * (Math.abs(ref.y[i]!) + ref.magnitude[i]!), 'fp32 y');
      assertWithin(x.grad!.toFloat32Array(), ref.dx, tight(ref.dx), 'fp32 dx');
      assertWithin(w.grad!.toFloat32Array(), ref.dw, tight(ref.dw), 'fp32 dw');
      assertWithin(b.grad!.toFloat32Array(), ref.db, tight(ref.db), 'fp32 db');

      // bf16: the product in bf16 (x and weight rounded), the bias added to the bf16 product.
      const yb = T.autocast({ device: { type: 'cpu' }, dtype: 'bfloat16' }, () => T.convTranspose3d(x0, w0, b0, { stride: k }));
      assert.equal(yb.dtype, 'bfloat16');
      const refb = reference(xs.map(bf16), ws.map(bf16), new Float32Array(cout), dys, k);
      const product = T.cast(yb, 'float32').toFloat32Array();
      const planes = out.slice(2).reduce((a, n) => a * n, 1);
      assertWithin(product, refb.y.map((v, i) => v + bs[Math.floor(i / planes) % cout]!),
        (i) => 2 ** -8 * ((cin + 1) * refb.magnitude[i]! + 2 * Math.abs(bs[Math.floor(i / planes) % cout]!)), 'bf16 y');
    });
  });
}
