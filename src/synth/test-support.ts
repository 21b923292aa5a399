/**
 * Measurements the synth tests make on generated volumes (not part of the public API): world
 * centroids through the affine, percentiles, 6-connected components, 6-neighbour adjacency.
 */
import { createHash } from 'node:crypto';
import type { Affine, Shape3 } from '../core/index.js';

/** Mean world position (RAS mm) of the voxels where `mask[n]` is true; null when none. */
export function worldCentroid(shape: Shape3, affine: Affine, mask: (n: number) => boolean): [number, number, number] | null {
  const [nz, ny, nx] = shape;
  let count = 0;
  let si = 0;
  let sj = 0;
  let sk = 0;
  for (let k = 0, n = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, n++) {
        if (!mask(n)) continue;
        count++;
        si += i;
        sj += j;
        sk += k;
      }
    }
  }
  if (count === 0) return null;
  const [i, j, k] = [si / count, sj / count, sk / count];
  return [0, 1, 2].map((r) => affine[r]![0] * i + affine[r]![1] * j + affine[r]![2] * k + affine[r]![3]) as [number, number, number];
}

/** numpy-style percentile (linear interpolation) of `values`. */
export function percentile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return Number.NaN;
  const position = (q / 100) * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.min(sorted.length - 1, low + 1);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

/** Values of `data` where `mask[n]` is true. */
export function valuesWhere(data: ArrayLike<number>, mask: (n: number) => boolean): number[] {
  const out: number[] = [];
  for (let n = 0; n < data.length; n++) if (mask(n)) out.push(data[n]!);
  return out;
}

/** Sizes (voxels) of the 6-connected components of `mask`, largest first. */
export function componentSizes(shape: Shape3, mask: Uint8Array): number[] {
  const [nz, ny, nx] = shape;
  const seen = new Uint8Array(mask.length);
  const sizes: number[] = [];
  const stack: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] === 0 || seen[start] === 1) continue;
    let size = 0;
    seen[start] = 1;
    stack.push(start);
    while (stack.length > 0) {
      const n = stack.pop()!;
      size++;
      for (const m of neighbours6(n, nz, ny, nx)) {
        if (mask[m] !== 0 && seen[m] === 0) {
          seen[m] = 1;
          stack.push(m);
        }
      }
    }
    sizes.push(size);
  }
  return sizes.sort((a, b) => b - a);
}

/** Offsets of the (up to six) face neighbours of voxel n. */
export function neighbours6(n: number, nz: number, ny: number, nx: number): number[] {
  const i = n % nx;
  const j = Math.floor(n / nx) % ny;
  const k = Math.floor(n / (nx * ny));
  const out: number[] = [];
  if (i > 0) out.push(n - 1);
  if (i < nx - 1) out.push(n + 1);
  if (j > 0) out.push(n - nx);
  if (j < ny - 1) out.push(n + nx);
  if (k > 0) out.push(n - nx * ny);
  if (k < nz - 1) out.push(n + nx * ny);
  return out;
}

/** sha256 of a typed array's bytes (little-endian machine order, as numpy '<' arrays). */
export function sha256(data: ArrayBufferView): string {
  return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}
