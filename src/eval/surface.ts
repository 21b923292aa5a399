/**
 * Surfaces on the voxel-corner grid and the distances between two of them, as the surface-distance
 * library (google-deepmind/surface-distance, compute_surface_distances) defines them.
 *
 * Every voxel corner gets a code from the 8 voxels around it (bit 128 for voxel (z-1, y-1, x-1),
 * 64 for (z-1, y-1, x), 32 (z-1, y, x-1), 16 (z-1, y, x), 8 (z, y-1, x-1), 4 (z, y-1, x),
 * 2 (z, y, x-1), 1 (z, y, x)); voxels outside the image count as background. A corner whose code
 * is neither 0 nor 255 is a surface point, with the surfel area of its code (surfelTable.ts).
 * Distances between surfaces are exact Euclidean distances (mm) between corner points.
 *
 * Only the corners around the bounding box of the union of both masks are visited, like the
 * library's crop; the distance transform only finishes the slices and rows that hold the other
 * surface's points (edt.ts).
 */
import type { Shape3 } from '../core/index.js';
import { distancesAtPoints } from './edt.js';
import { checkMaskPair, checkSpacing, shapeOf, type BinaryMask } from './mask.js';
import { surfelAreaTable } from './surfelTable.js';

/** Per surface point of each mask: the distance (mm) to the other surface and the point's area. */
export interface SurfaceDistances {
  /** Distance from each pred surface point to the nearest ref surface point (Infinity if ref is empty). */
  distancesPredToRef: Float64Array;
  /** Surfel area (mm^2) of each pred surface point, same order. */
  areasPred: Float64Array;
  distancesRefToPred: Float64Array;
  areasRef: Float64Array;
  /** Neighbourhood code of each point (same orders), so that equal-area points can be grouped. */
  codesPred: Uint8Array;
  codesRef: Uint8Array;
}

/** Inclusive voxel bounding box [lo, hi] of the union of two masks, or undefined when both are empty. */
function unionBoundingBox(a: Uint8Array, b: Uint8Array, shape: Shape3): { lo: Shape3; hi: Shape3 } | undefined {
  const [nz, ny, nx] = shape;
  const lo: Shape3 = [nz, ny, nx];
  const hi: Shape3 = [-1, -1, -1];
  let index = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      let first = -1;
      let last = -1;
      for (let x = 0; x < nx; x++, index++) {
        if ((a[index]! | b[index]!) !== 0) {
          if (first < 0) first = x;
          last = x;
        }
      }
      if (first < 0) continue;
      if (z < lo[0]) lo[0] = z;
      hi[0] = z;
      if (y < lo[1]) lo[1] = y;
      if (y > hi[1]) hi[1] = y;
      if (first < lo[2]) lo[2] = first;
      if (last > hi[2]) hi[2] = last;
    }
  }
  return hi[0] < 0 ? undefined : { lo, hi };
}

/** Growable list of surface points (corner index + code). */
class PointList {
  indices = new Int32Array(1024);
  codes = new Uint8Array(1024);
  length = 0;
  push(index: number, code: number): void {
    if (this.length === this.indices.length) {
      const indices = new Int32Array(this.length * 2);
      indices.set(this.indices);
      this.indices = indices;
      const codes = new Uint8Array(this.length * 2);
      codes.set(this.codes);
      this.codes = codes;
    }
    this.indices[this.length] = index;
    this.codes[this.length] = code;
    this.length++;
  }
}

interface CornerSurface {
  /** 1 at surface corners of the grid. */
  sites: Uint8Array;
  indices: Int32Array;
  codes: Uint8Array;
}

/**
 * Surface corners of `mask` on the corner grid of the voxel box [lo, hi]: corner (i, j, k) of the
 * grid sits between voxels lo + (i-1, j-1, k-1) and lo + (i, j, k).
 */
function cornerSurface(mask: Uint8Array, shape: Shape3, lo: Shape3, gridShape: Shape3): CornerSurface {
  const [, ny, nx] = shape;
  const [gz, gy, gx] = gridShape;
  const sites = new Uint8Array(gz * gy * gx);
  const points = new PointList();
  // columnBits[k] packs voxel x = lo[2] + k - 1 of the four voxel rows around the current corner row:
  // 64 for (z-1, y-1), 16 for (z-1, y), 4 for (z, y-1), 1 for (z, y). The voxel at x-1 weighs double.
  const columnBits = new Uint8Array(gx + 1);
  const addRow = (z: number, y: number, weight: number): void => {
    if (z < lo[0] || y < lo[1] || z >= lo[0] + gz - 1 || y >= lo[1] + gy - 1) return;
    const rowStart = (z * ny + y) * nx + lo[2];
    for (let k = 1; k < gx; k++) if (mask[rowStart + k - 1] !== 0) columnBits[k]! += weight;
  };
  let corner = 0;
  for (let i = 0; i < gz; i++) {
    const z = lo[0] + i;
    for (let j = 0; j < gy; j++, corner += gx) {
      const y = lo[1] + j;
      columnBits.fill(0);
      addRow(z - 1, y - 1, 64);
      addRow(z - 1, y, 16);
      addRow(z, y - 1, 4);
      addRow(z, y, 1);
      let previous = 0;
      for (let k = 0; k < gx; k++) {
        const current = columnBits[k + 1]!;
        const code = previous * 2 + current;
        previous = current;
        if (code !== 0 && code !== 255) {
          sites[corner + k] = 1;
          points.push(corner + k, code);
        }
      }
    }
  }
  return { sites, indices: points.indices.subarray(0, points.length), codes: points.codes.subarray(0, points.length) };
}

function areasOf(codes: Uint8Array, table: Float64Array): Float64Array {
  const areas = new Float64Array(codes.length);
  for (let i = 0; i < codes.length; i++) areas[i] = table[codes[i]!]!;
  return areas;
}

/**
 * Surface points of both masks with their areas and their distances to the other surface.
 * Arrays are in corner scan order (not sorted by distance as the library returns them); every
 * reduction here is order-independent or sorts for itself. Both masks empty: all arrays empty.
 * One empty: its arrays are empty and the other's distances are all Infinity (as the library).
 */
export function surfaceDistances(pred: BinaryMask, ref: BinaryMask, spacingMm: readonly number[]): SurfaceDistances {
  checkMaskPair(pred, ref, 'surfaceDistances');
  const spacing = checkSpacing(spacingMm, 'surfaceDistances');
  const shape = shapeOf(pred);
  const box = unionBoundingBox(pred.data, ref.data, shape);
  if (box === undefined) {
    return {
      distancesPredToRef: new Float64Array(0),
      areasPred: new Float64Array(0),
      distancesRefToPred: new Float64Array(0),
      areasRef: new Float64Array(0),
      codesPred: new Uint8Array(0),
      codesRef: new Uint8Array(0),
    };
  }
  // One more corner than voxels along each axis of the box.
  const gridShape: Shape3 = [box.hi[0] - box.lo[0] + 2, box.hi[1] - box.lo[1] + 2, box.hi[2] - box.lo[2] + 2];
  const table = surfelAreaTable(spacing);
  const predSurface = cornerSurface(pred.data, shape, box.lo, gridShape);
  const refSurface = cornerSurface(ref.data, shape, box.lo, gridShape);
  const distancesPredToRef = distancesToSurface(refSurface, predSurface.indices, gridShape, spacing);
  const distancesRefToPred = distancesToSurface(predSurface, refSurface.indices, gridShape, spacing);
  return {
    distancesPredToRef,
    areasPred: areasOf(predSurface.codes, table),
    distancesRefToPred,
    areasRef: areasOf(refSurface.codes, table),
    codesPred: predSurface.codes,
    codesRef: refSurface.codes,
  };
}

function distancesToSurface(target: CornerSurface, points: Int32Array, gridShape: Shape3, spacing: Shape3): Float64Array {
  if (target.indices.length === 0) return new Float64Array(points.length).fill(Infinity);
  return distancesAtPoints(target.sites, gridShape, spacing, points);
}

/** Sum of an area list (mm^2), in order. */
export function totalArea(areas: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < areas.length; i++) sum += areas[i]!;
  return sum;
}
