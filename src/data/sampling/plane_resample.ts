/**
 * The dummy-2D spatial transform's label maps on the host: one in-plane bilinear grid (gridSample's,
 * zeros padding, alignCorners false) applied to every slice. The corner offsets and weights of a
 * grid point are computed once for all slices, and a voxel whose four corners hold one label takes
 * it without arithmetic; libtorch needed one resampled one-hot channel per label and an argmax.
 *
 * The weights are libtorch's own, bit for bit: its vectorised 2D bilinear CPU kernel
 * (aten GridSamplerKernel.cpp) computes, in float32, x = (g + 1) * (W / 2) - 1/2 (the product and
 * the subtraction fused, one rounding: libtorch's build contracts them to an FMA), w = x - floor x,
 * e = 1 - w (likewise n, s along y), corner weights nw = s e, ne = s w, sw = n e, se = n w, and
 * out = nw v_nw + ne v_ne + sw v_sw + se v_se with corners outside the input read as 0. On one-hot
 * channels every product is exact, so a label's resampled value is the float32 running sum, in
 * corner order, of the weights of the corners holding it, which is what `planeLabels` compares:
 * the largest sum wins, the lowest label on ties (torch argmax over ascending labels), -1 where the
 * sampling position lies outside the input. transforms.test.ts checks these sums and the winners
 * against gridSample of the one-hot channels, value for value.
 */

import { hostPlaneLabels } from '../../tensor/index.js';

const f32 = Math.fround;

/** Per output point of an in-plane grid: the nw corner's offset, the 4 corner weights, which corners lie inside. */
export interface PlaneWeights {
  /** Input plane [height, width]. */
  inputShape: [number, number];
  /** y_n * width + x_w per point (may be negative or past the plane where corners are outside). */
  offset: Int32Array;
  /** [nw, ne, sw, se] per point, float32 as libtorch computes them. */
  weights: Float32Array;
  /** Bit k set when corner k (nw, ne, sw, se) lies inside the input plane. */
  inside: Uint8Array;
}

/** The weights of a gridSample grid [points, 2] (x, y in [-1, 1], alignCorners false) over an input plane [height, width]. */
export function planeWeights(grid: Float32Array, height: number, width: number): PlaneWeights {
  const points = grid.length / 2;
  const offset = new Int32Array(points);
  const weights = new Float32Array(4 * points);
  const inside = new Uint8Array(points);
  const scaleX = f32(width / 2);
  const scaleY = f32(height / 2);
  for (let i = 0; i < points; i++) {
    const x = f32(f32(grid[2 * i]! + 1) * scaleX - 0.5);
    const y = f32(f32(grid[2 * i + 1]! + 1) * scaleY - 0.5);
    const xw = Math.floor(x);
    const yn = Math.floor(y);
    const w = f32(x - xw);
    const e = f32(1 - w);
    const n = f32(y - yn);
    const s = f32(1 - n);
    weights[4 * i] = s * e;
    weights[4 * i + 1] = s * w;
    weights[4 * i + 2] = n * e;
    weights[4 * i + 3] = n * w;
    const west = xw >= 0 && xw < width;
    const east = xw + 1 >= 0 && xw + 1 < width;
    const north = yn >= 0 && yn < height;
    const south = yn + 1 >= 0 && yn + 1 < height;
    inside[i] = (west && north ? 1 : 0) | (east && north ? 2 : 0) | (west && south ? 4 : 0) | (east && south ? 8 : 0);
    offset[i] = yn * width + xw;
  }
  return { inputShape: [height, width], offset, weights, inside };
}

/**
 * The resampled label map [planes, points] of int8 label planes [planes, height, width]: per point
 * the label whose corners' weights sum (float32, corner order) largest, the lowest label on ties,
 * and -1 where `outside` [points] is 1; written into `into` (planes x points values) when given.
 */
export function planeLabels(seg: Int8Array, planes: number, table: PlaneWeights, outside: Uint8Array, into?: Int8Array): Int8Array {
  const [height, width] = table.inputShape;
  const { offset, weights, inside } = table;
  const points = offset.length;
  if (into !== undefined && into.length !== planes * points) throw new RangeError(`planeLabels: the target has ${into.length} values, expected ${planes * points}`);
  const out = into ?? new Int8Array(planes * points);
  // The vote runs in the addon (host_kernels.cpp): a point whose four corners lie inside and hold
  // one label takes it; otherwise each distinct label among the inside corners sums its corners'
  // weights in float32, in corner order, and the largest sum wins (the lowest label on ties).
  hostPlaneLabels(seg, planes, height, width, offset, weights, inside, outside, out);
  return out;
}
