/**
 * Exact Euclidean distance transform with anisotropic spacing, in linear time.
 *
 * Felzenszwalb & Huttenlocher's separable method ("Distance Transforms of Sampled Functions",
 * 2012): the squared distance is built one axis at a time, axis 0 (z) first, then y, then x; along
 * an axis the result is the lower envelope of the parabolas f(q) + ((p - q) * spacing)^2.
 *
 * The squared distance of a point to its nearest site is accumulated as
 * ((dz*sz)^2 + (dy*sy)^2) + (dx*sx)^2, the same terms in the same order as
 * scipy.ndimage.distance_transform_edt(sampling=...) uses, so that distances that are exact in
 * real numbers (a 3 mm tolerance hit by 2 voxels of 1.5 mm) come out bit-identical to scipy's,
 * and a `<=` tolerance test agrees with the reference library.
 *
 * Memory: the first pass stores the integer distance along z (Uint16), then each z-slice is
 * finished in a Float64 slice buffer, so a 300x400x300 grid needs ~2 bytes per point, and
 * `distancesAtPoints` only finishes the slices and rows that hold query points.
 */
import { InputError, type Shape3 } from '../core/index.js';

/** Marks "no site in this column" in the z pass; grids must have fewer points along z. */
const NO_SITE = 0xffff;

/** Reusable buffers for the 1D lower-envelope pass over lines of up to `maxLength` points. */
class EnvelopeScratch {
  /** f along the line (input). */
  readonly values: Float64Array;
  /** Site of each envelope parabola, and its height f(site) + (site * spacing)^2. */
  readonly sites: Int32Array;
  readonly heights: Float64Array;
  /** Parabola k is lowest from crossing k to crossing k + 1; crossing k = num[k] / den[k], den > 0. */
  readonly crossingNum: Float64Array;
  readonly crossingDen: Float64Array;
  constructor(maxLength: number) {
    this.values = new Float64Array(maxLength);
    this.sites = new Int32Array(maxLength);
    this.heights = new Float64Array(maxLength);
    this.crossingNum = new Float64Array(maxLength + 1);
    this.crossingDen = new Float64Array(maxLength + 1);
  }
}

/**
 * Builds the lower envelope of the parabolas f(q) + ((p - q) * spacing)^2 over q in [0, n) with
 * finite f(q) (f is `scratch.values`). Returns the number of parabolas in the envelope (0 when
 * every f is infinite); `scratch.sites[k]` is the k-th parabola's site. Crossings are kept as
 * fractions and compared by cross-multiplication: a division per point would cost more than the
 * rest of the pass (double division is slow and sits on the loop's critical path).
 */
function buildEnvelope(n: number, spacing: number, scratch: EnvelopeScratch): number {
  const f = scratch.values;
  const sites = scratch.sites;
  const heights = scratch.heights;
  const crossingNum = scratch.crossingNum;
  const crossingDen = scratch.crossingDen;
  const spacingSquared = spacing * spacing;
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    const heightQ = fq + q * q * spacingSquared;
    if (k < 0) {
      k = 0;
      sites[0] = q;
      heights[0] = heightQ;
      continue;
    }
    let num = 0;
    let den = 0;
    for (;;) {
      const r = sites[k]!;
      // The parabolas of r and q cross at num / den (index units).
      num = heightQ - heights[k]!;
      den = 2 * spacingSquared * (q - r);
      // Parabola r is hidden when that crossing is left of where r starts (the first never is).
      if (k > 0 && num * crossingDen[k]! <= crossingNum[k]! * den) k--;
      else break;
    }
    k++;
    sites[k] = q;
    heights[k] = heightQ;
    crossingNum[k] = num;
    crossingDen[k] = den;
  }
  return k + 1;
}

/** Index of the envelope parabola lowest at p, starting the search at k (p ascending). */
function advance(k: number, count: number, p: number, scratch: EnvelopeScratch): number {
  const crossingNum = scratch.crossingNum;
  const crossingDen = scratch.crossingDen;
  while (k + 1 < count && crossingNum[k + 1]! < p * crossingDen[k + 1]!) k++;
  return k;
}

function checkGrid(shape: Shape3, spacingMm: Shape3, length: number, what: string): void {
  const [nz, ny, nx] = shape;
  if (![nz, ny, nx].every((d) => Number.isInteger(d) && d >= 1)) {
    throw new InputError(`${what}: shape must be three positive integers, got [${shape.join(', ')}]`);
  }
  if (length !== nz * ny * nx) {
    throw new InputError(`${what}: ${length} values do not fill shape [${shape.join(', ')}]`);
  }
  if (!spacingMm.every((s) => Number.isFinite(s) && s > 0)) {
    throw new InputError(`${what}: spacing must be three positive finite mm values, got [${spacingMm.join(', ')}]`);
  }
  if (nz >= NO_SITE) throw new InputError(`${what}: at most ${NO_SITE - 1} points along axis 0, got ${nz}`);
}

/** First pass: integer distance along axis 0 from each point to the nearest site in its column. */
function distanceAlongAxis0(sites: Uint8Array, shape: Shape3): Uint16Array {
  const [nz, ny, nx] = shape;
  const sliceSize = ny * nx;
  const steps = new Uint16Array(nz * sliceSize);
  // Forward sweep over whole slices keeps memory access contiguous.
  for (let i = 0; i < sliceSize; i++) steps[i] = sites[i] !== 0 ? 0 : NO_SITE;
  for (let z = 1; z < nz; z++) {
    const base = z * sliceSize;
    for (let i = 0; i < sliceSize; i++) {
      const index = base + i;
      if (sites[index] !== 0) steps[index] = 0;
      else {
        const above = steps[index - sliceSize]!;
        steps[index] = above === NO_SITE ? NO_SITE : above + 1;
      }
    }
  }
  for (let z = nz - 2; z >= 0; z--) {
    const base = z * sliceSize;
    for (let i = 0; i < sliceSize; i++) {
      const index = base + i;
      const below = steps[index + sliceSize]!;
      if (below !== NO_SITE && below + 1 < steps[index]!) steps[index] = below + 1;
    }
  }
  return steps;
}

/** Side of the square tiles of the slice transposes (keeps both sides of a tile in cache). */
const TILE = 32;

/**
 * Second pass for one z-slice: squared distances (mm^2) using axes 0 and 1, written to `slice`
 * (ny * nx values, x fastest). Columns along y are strided in memory, so the slice is transposed
 * in tiles into `columns` (y fastest), each column is finished in place, and the result is
 * transposed back. `columns` rows are `columnStride` long (ny, made odd so that a power-of-two
 * ny does not map a whole tile onto one set of cache lines).
 */
function finishAxis1(
  steps: Uint16Array,
  z: number,
  shape: Shape3,
  spacingMm: Shape3,
  slice: Float64Array,
  columns: Float64Array,
  scratch: EnvelopeScratch,
): void {
  const [, ny, nx] = shape;
  const [sz, sy] = spacingMm;
  const base = z * ny * nx;
  const columnStride = ny | 1;
  for (let y0 = 0; y0 < ny; y0 += TILE) {
    const y1 = Math.min(ny, y0 + TILE);
    for (let x0 = 0; x0 < nx; x0 += TILE) {
      const x1 = Math.min(nx, x0 + TILE);
      for (let y = y0; y < y1; y++) {
        const row = base + y * nx;
        for (let x = x0; x < x1; x++) {
          const step = steps[row + x]!;
          const dz = step * sz;
          columns[x * columnStride + y] = step === NO_SITE ? Infinity : dz * dz;
        }
      }
    }
  }
  const f = scratch.values;
  for (let x = 0; x < nx; x++) {
    const start = x * columnStride;
    for (let y = 0; y < ny; y++) f[y] = columns[start + y]!;
    const count = buildEnvelope(ny, sy, scratch);
    if (count === 0) continue; // the column stays all Infinity
    let k = 0;
    for (let y = 0; y < ny; y++) {
      k = advance(k, count, y, scratch);
      const site = scratch.sites[k]!;
      const dy = (y - site) * sy;
      columns[start + y] = f[site]! + dy * dy;
    }
  }
  for (let x0 = 0; x0 < nx; x0 += TILE) {
    const x1 = Math.min(nx, x0 + TILE);
    for (let y0 = 0; y0 < ny; y0 += TILE) {
      const y1 = Math.min(ny, y0 + TILE);
      for (let x = x0; x < x1; x++) {
        const column = x * columnStride;
        for (let y = y0; y < y1; y++) slice[y * nx + x] = columns[column + y]!;
      }
    }
  }
}

/**
 * Distances in mm from the given points of a grid to the nearest site (non-zero entry of `sites`).
 * `pointIndices` are linear indices (x fastest) in ascending order; the result has one distance
 * per point, Infinity when the grid has no site at all.
 */
export function distancesAtPoints(
  sites: Uint8Array,
  shape: Shape3,
  spacingMm: Shape3,
  pointIndices: Int32Array,
): Float64Array {
  checkGrid(shape, spacingMm, sites.length, 'distancesAtPoints');
  const [nz, ny, nx] = shape;
  const sx = spacingMm[2];
  const total = nz * ny * nx;
  const result = new Float64Array(pointIndices.length);
  for (let i = 0; i < pointIndices.length; i++) {
    const index = pointIndices[i]!;
    if (!(index >= 0 && index < total) || (i > 0 && index < pointIndices[i - 1]!)) {
      throw new InputError(`distancesAtPoints: point indices must be ascending and inside the grid (at ${i}: ${index})`);
    }
  }
  if (pointIndices.length === 0) return result;
  const steps = distanceAlongAxis0(sites, shape);
  const sliceSize = ny * nx;
  const slice = new Float64Array(sliceSize);
  const columns = new Float64Array(nx * (ny | 1));
  const scratch = new EnvelopeScratch(Math.max(ny, nx));
  const f = scratch.values;
  let i = 0;
  while (i < pointIndices.length) {
    const z = Math.floor(pointIndices[i]! / sliceSize);
    finishAxis1(steps, z, shape, spacingMm, slice, columns, scratch);
    const sliceEnd = (z + 1) * sliceSize;
    // Rows of this slice that hold query points: one envelope per row along x.
    while (i < pointIndices.length && pointIndices[i]! < sliceEnd) {
      const rowStart = Math.floor(pointIndices[i]! / nx) * nx;
      const rowEnd = rowStart + nx;
      const offset = rowStart - z * sliceSize;
      for (let x = 0; x < nx; x++) f[x] = slice[offset + x]!;
      const count = buildEnvelope(nx, sx, scratch);
      let k = 0;
      while (i < pointIndices.length && pointIndices[i]! < rowEnd) {
        const x = pointIndices[i]! - rowStart;
        if (count === 0) result[i] = Infinity;
        else {
          k = advance(k, count, x, scratch);
          const site = scratch.sites[k]!;
          const dx = (x - site) * sx;
          result[i] = Math.sqrt(f[site]! + dx * dx);
        }
        i++;
      }
    }
  }
  return result;
}

/**
 * Full distance map: distance in mm from every grid point to the nearest site (non-zero entry of
 * `sites`), like scipy.ndimage.distance_transform_edt(sites == 0, sampling=spacingMm); Infinity
 * everywhere when there is no site (where scipy returns meaningless values).
 */
export function distanceTransform(sites: Uint8Array, shape: Shape3, spacingMm: Shape3): Float64Array {
  checkGrid(shape, spacingMm, sites.length, 'distanceTransform');
  const all = new Int32Array(sites.length);
  for (let i = 0; i < all.length; i++) all[i] = i;
  return distancesAtPoints(sites, shape, spacingMm, all);
}
