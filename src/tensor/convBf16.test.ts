/**
 * The addon's bf16 weight gradient of 3x3x3 convolutions (padding 1) and 1x3x3 ones (padding 0, 1, 1)
 * (native/src/conv_bf16.cpp: AVX512-BF16
 * dot products, taken under bf16 autocast where the CPU has them, per plane where H*W >= 4096 and
 * over the whole volume where D*H*W <= 2048; both cases and both kernel depths here) against
 * a float64 reference of the same bf16 values, and against ATen's own bf16 path (setBf16Kernels(false)),
 * which must meet the same bound. On a CPU without AVX512-BF16 both runs are ATen's path: the
 * assertions hold there too.
 *
 * Bound: both paths sum the products of bf16 values (exact in fp32) in fp32, then round the sum to
 * bf16 (8 significant bits: relative error <= 2^-9). The fp32 sums run in chains of at most
 * L = H*W/32 + B*D + threads additions (lanes of a plane, then planes, then threads; oneDNN's are
 * shorter; over a whole volume: D*H*W/32 + B), each adding <= 2^-24 times the sum of |terms| S. So
 * |dw - ref| <= 2^-9 |ref| + L 2^-24 S,
 * taken here with a factor 2 on each. A missing or misplaced row edge (the masks) moves a weight by
 * ~sqrt(D H) |g x| ~ 10, far above L 2^-24 S (~0.01 here); so does a 1x3x3 kernel reading the
 * neighbouring plane (a wrong depth offset), and the hand count with all ones tells each apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from './index.js';

const device = { type: 'cpu' } as const;

/** Round to bfloat16, nearest even (as the addon and ATen do). */
function bf16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16) << 16;
  return f[0]!;
}

/** "Same" padding of a kd x 3 x 3 kernel (kd 3 or 1). */
const samePadding = (kd: number): number[] => [kd >> 1, 1, 1];

/** Under bf16 autocast, conv3d ("same" padding) of fp32 leaves, backward of sum(y * dy): [y, dx, dw, db] as float32. */
function autocastConv(x0: T.Tensor, w0: T.Tensor, b0: T.Tensor | null, dy: T.Tensor, kernels: boolean): Float32Array[] {
  const previous = T.setBf16Kernels(kernels);
  try {
    return T.scope(() => {
      const x = T.clone(x0).setRequiresGrad(true);
      const w = T.clone(w0).setRequiresGrad(true);
      const b = b0 === null ? null : T.clone(b0).setRequiresGrad(true);
      const y = T.autocast({ device, dtype: 'bfloat16' }, () => T.conv3d(x, w, b, { padding: samePadding(w0.shape[2]!) }));
      assert.equal(y.dtype, 'bfloat16');
      T.sum(T.mul(T.cast(y, 'float32'), dy)).backward();
      const out = [y, x.grad!, w.grad!, ...(b === null ? [] : [b.grad!])];
      return out.map((t) => T.cast(t, 'float32').toFloat32Array());
    });
  } finally {
    T.setBf16Kernels(previous);
  }
}

// [batch, in, out, D, H, W, kernel depth]: planes of 64 x 65 (4160 voxels, rows crossing the 32-voxel
// chunks) and a volume of 5 x 6 x 7 (210 voxels), each with a 3x3x3 and a 1x3x3 kernel.
const cases = [[2, 2, 4, 3, 64, 65], [2, 2, 4, 5, 6, 7]].flatMap((c) => [[...c, 3], [...c, 1]]);
for (const [batch, ci, co, d, h, w, kdepth] of cases as [number, number, number, number, number, number, number][]) {
  const taps = 9 * kdepth;
  const name = `${batch}x${ci}->${co} ${d}x${h}x${w}, kernel ${kdepth}x3x3`;
  test(`bf16 conv3d weight gradient ${name}, all ones: each weight counts its in-volume neighbours (hand count)`, () => {
    T.scope(() => {
      const x = T.ones([batch, ci, d, h, w]);
      const dy = T.ones([batch, co, d, h, w]);
      for (const kernels of [true, false]) {
        const [, , dw, db] = autocastConv(x, T.ones([co, ci, kdepth, 3, 3]), T.zeros([co]), dy, kernels);
        for (let o = 0; o < co; o++) for (let i = 0; i < ci; i++) for (let k = 0; k < taps; k++) {
          const [kd, kh, kw] = [Math.floor(k / 9), Math.floor(k / 3) % 3, k % 3];
          const count = batch * (d - Math.abs(kd - (kdepth >> 1))) * (h - Math.abs(kh - 1)) * (w - Math.abs(kw - 1));
          assert.equal(dw![(o * ci + i) * taps + k], bf16(count), `kernels ${kernels}: dw[${o}][${i}][${kd}][${kh}][${kw}]`);
        }
        assert.deepEqual([...db!], new Array(co).fill(bf16(batch * d * h * w)), `kernels ${kernels}: db`);
      }
    });
  });

  test(`bf16 conv3d gradients ${name} within the bf16 bound of a float64 reference, the addon and ATen alike`, () => {
    const [ci2, co2] = [2 * ci, 2 * co];
    T.manualSeed(11);
    T.scope(() => {
      const x = T.randn([batch, ci2, d, h, w]);
      const w0 = T.mul(T.randn([co2, ci2, kdepth, 3, 3]), 0.2);
      const b0 = T.randn([co2]);
      const dy = T.cast(T.cast(T.randn([batch, co2, d, h, w]), 'bfloat16'), 'float32');
      // The reference: the bf16 values the convolution sees, in float64.
      const x64 = T.cast(T.cast(x, 'bfloat16'), 'float64');
      const w64 = T.cast(T.cast(w0, 'bfloat16'), 'float64');
      const dy64 = T.cast(dy, 'float64');
      const weightGrad = (xs: T.Tensor, g: T.Tensor): Float32Array => T.scope(() => {
        const wr = T.clone(w64).setRequiresGrad(true);
        T.sum(T.mul(T.conv3d(xs, wr, null, { padding: samePadding(kdepth) }), g)).backward();
        return T.cast(wr.grad!, 'float32').toFloat32Array();
      });
      const ref = weightGrad(x64, dy64);
      const magnitude = weightGrad(T.abs(x64), T.abs(dy64));
      const chain = Math.max((h * w) / 32 + batch * d + T.getNumThreads(), (d * h * w) / 32 + batch);
      const withKernels = autocastConv(x, w0, b0, dy, true);
      const aten = autocastConv(x, w0, b0, dy, false);
      for (const [name, dw] of [['addon', withKernels[2]!], ['ATen', aten[2]!]] as const) {
        for (let i = 0; i < ref.length; i++) {
          const bound = 2 * 2 ** -9 * Math.abs(ref[i]!) + 2 * chain * 2 ** -24 * magnitude[i]!;
          assert.ok(Math.abs(dw[i]! - ref[i]!) <= bound, `${name}: dw[${i}] = ${dw[i]}, float64 gives ${ref[i]} (bound ${bound})`);
        }
      }
      // The forward and the input gradient are ATen's (oneDNN) on both paths: equal.
      assert.deepEqual(withKernels[0], aten[0]);
      assert.deepEqual(withKernels[1], aten[1]);
      // The bias gradient: the sum of dy over batch and volume, rounded to bf16.
      const dyValues = dy.toFloat32Array();
      const plane = d * h * w;
      for (let o = 0; o < co2; o++) {
        let s = 0;
        for (let b = 0; b < batch; b++) for (let i = 0; i < plane; i++) s += dyValues[(b * co2 + o) * plane + i]!;
        assert.ok(Math.abs(withKernels[3]![o]! - s) <= 2 ** -8 * Math.abs(s) + 1e-3, `db[${o}] = ${withKernels[3]![o]}, the sum is ${s}`);
      }
    });
  });
}

test('bf16 conv3d where the weight kernel does not apply (stride 2, 24x24 planes of a 2304-voxel volume, a 1x3x3 kernel padded in depth, no grad) is ATen conv3d', () => {
  T.manualSeed(5);
  T.scope(() => {
    const x = T.randn([2, 2, 4, 24, 24]);
    const w = T.randn([4, 2, 3, 3, 3]);
    const dy = T.randn([2, 4, 4, 24, 24]);
    const strided = T.randn([2, 4, 2, 12, 12]);
    // 1x3x3 with padding 1 in depth (not "same"), on planes of 64 x 65 the kernel would take: 6 output planes.
    const xPlanes = T.randn([2, 2, 4, 64, 65]);
    const flat = T.randn([4, 2, 1, 3, 3]);
    const padded = T.randn([2, 4, 6, 64, 65]);
    const cases: [T.Tensor, T.Tensor, T.Conv3dOptions, T.Tensor][] = [
      [x, w, { padding: [1, 1, 1] }, dy], [x, w, { padding: [1, 1, 1], stride: [2, 2, 2] }, strided], [xPlanes, flat, { padding: [1, 1, 1] }, padded],
    ];
    for (const [x, w, options, g] of cases) {
      const run = (kernels: boolean): Float32Array[] => {
        const previous = T.setBf16Kernels(kernels);
        try {
          return T.scope(() => {
            const wr = T.clone(w).setRequiresGrad(true);
            const y = T.autocast({ device, dtype: 'bfloat16' }, () => T.conv3d(x, wr, null, options));
            const noGrad = T.noGrad(() => T.autocast({ device, dtype: 'bfloat16' }, () => T.conv3d(x, wr, null, options)));
            T.sum(T.mul(T.cast(y, 'float32'), g)).backward();
            return [y, noGrad, wr.grad!].map((t) => T.cast(t, 'float32').toFloat32Array());
          });
        } finally {
          T.setBf16Kernels(previous);
        }
      };
      assert.deepEqual(run(true), run(false));
    }
    assert.equal(typeof T.bf16KernelsActive(), 'boolean');
    assert.equal(T.setBf16Kernels(false), true);
    assert.equal(T.bf16KernelsActive(), false);
    assert.equal(T.setBf16Kernels(true), false);
  });
});
