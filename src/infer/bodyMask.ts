/**
 * Pure geometry for skipping sliding windows that lie wholly outside the body (issue 14). A CT has
 * no zero background, so the crop to nonzero keeps the whole field of view, air included. The
 * body is the largest 6-connected component (faces only) of the voxels above an intensity
 * threshold (-500 HU by default, expressed on the CT-normalised grid); a window runs when it comes
 * within `marginVoxels` (Chebyshev distance) of the body, which is the same as testing it against the
 * body dilated by a cube of that radius. Every voxel of the dilated body therefore lies only in
 * windows that run, so its blended logits are exactly those of the full sliding window.
 */
import type { Triple, WindowBox, AxisPadding } from './slidingWindow.js';

/** The HU above which a voxel counts as body (fat is about -100, lung parenchyma -850, air -1000). */
export const BODY_THRESHOLD_HU = -500;

/** Windows this close (voxels, Chebyshev) to the body still run. */
export const BODY_MARGIN_VOXELS = 4;

/**
 * The body threshold on the CT-normalised scale, (clip(hu) - mean) / std with nnU-Net's CT
 * normalisation, or null when `hu` is not strictly inside the clip range (then every value below the
 * lower bound maps to one number and the threshold cannot be told apart: skip nothing).
 */
export function normalizedCtThreshold(
  ct: { mean: number; std: number; percentile_00_5: number; percentile_99_5: number },
  hu: number = BODY_THRESHOLD_HU,
): number | null {
  if (!(hu > ct.percentile_00_5 && hu < ct.percentile_99_5)) return null;
  return (hu - ct.mean) / Math.max(ct.std, 1e-8);
}

/**
 * 1 where a voxel of `data` (one channel, `shape` [z, y, x]) is above `threshold` and belongs to
 * the largest 6-connected component of such voxels; all zeros when none is above it.
 */
export function largestComponentAbove(data: Float32Array, shape: Triple, threshold: number): Uint8Array {
  const [nz, ny, nx] = shape;
  const voxels = nz * ny * nx;
  if (data.length < voxels) throw new RangeError(`largestComponentAbove: ${data.length} values for shape [${shape.join(', ')}]`);
  // label 0: below threshold; -1: above, not yet visited; k >= 1: component k.
  const labels = new Int32Array(voxels);
  for (let i = 0; i < voxels; i++) if (data[i]! > threshold) labels[i] = -1;
  const queue = new Int32Array(voxels);
  let best = 0;
  let bestSize = 0;
  let component = 0;
  for (let seed = 0; seed < voxels; seed++) {
    if (labels[seed] !== -1) continue;
    component++;
    let head = 0;
    let tail = 0;
    queue[tail++] = seed;
    labels[seed] = component;
    while (head < tail) {
      const i = queue[head++]!;
      const x = i % nx;
      const y = Math.floor(i / nx) % ny;
      const z = Math.floor(i / (nx * ny));
      const visit = (j: number): void => {
        if (labels[j] === -1) {
          labels[j] = component;
          queue[tail++] = j;
        }
      };
      if (x > 0) visit(i - 1);
      if (x < nx - 1) visit(i + 1);
      if (y > 0) visit(i - nx);
      if (y < ny - 1) visit(i + nx);
      if (z > 0) visit(i - nx * ny);
      if (z < nz - 1) visit(i + nx * ny);
    }
    if (tail > bestSize) {
      bestSize = tail;
      best = component;
    }
  }
  const mask = new Uint8Array(voxels);
  if (best > 0) for (let i = 0; i < voxels; i++) mask[i] = labels[i] === best ? 1 : 0;
  return mask;
}

/** Summed-volume table with one extra plane per axis: table[(z+1, y+1, x+1)] = count in [0..z, 0..y, 0..x]. */
function summedVolume(mask: Uint8Array, shape: Triple): Int32Array {
  const [nz, ny, nx] = shape;
  const sy = nx + 1;
  const sz = (ny + 1) * sy;
  const table = new Int32Array((nz + 1) * sz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      let row = 0;
      for (let x = 0; x < nx; x++) {
        row += mask[(z * ny + y) * nx + x]!;
        const at = (z + 1) * sz + (y + 1) * sy + (x + 1);
        table[at] = row + table[at - sy]! + table[at - sz]! - table[at - sy - sz]!;
      }
    }
  }
  return table;
}

/**
 * Which windows run: `true` where the window (a box of `patch` at `box.start` on the padded grid),
 * grown by `marginVoxels` on every side, holds a voxel of `mask` (on the unpadded grid `shape`,
 * placed at `padding[axis].before`). An empty mask runs every window (nothing was found to be
 * body, so nothing is known to be air).
 */
export function windowsTouchingMask(
  boxes: readonly WindowBox[],
  patch: Triple,
  mask: Uint8Array,
  shape: Triple,
  padding: readonly AxisPadding[],
  marginVoxels: number,
): boolean[] {
  if (!Number.isInteger(marginVoxels) || marginVoxels < 0) throw new RangeError(`marginVoxels must be a non-negative integer, got ${marginVoxels}`);
  const table = summedVolume(mask, shape);
  const [nz, ny, nx] = shape;
  const sy = nx + 1;
  const sz = (ny + 1) * sy;
  if (table[nz * sz + ny * sy + nx] === 0) return boxes.map(() => true);
  const at = (z: number, y: number, x: number): number => table[z * sz + y * sy + x]!;
  return boxes.map((box) => {
    const lo = [0, 1, 2].map((a) => Math.max(0, box.start[a]! - padding[a]!.before - marginVoxels));
    const hi = [0, 1, 2].map((a) => Math.min(shape[a]!, box.start[a]! - padding[a]!.before + patch[a]! + marginVoxels));
    if (lo.some((l, a) => l >= hi[a]!)) return false;
    const [z0, y0, x0] = lo as Triple;
    const [z1, y1, x1] = hi as Triple;
    const count = at(z1, y1, x1) - at(z0, y1, x1) - at(z1, y0, x1) - at(z1, y1, x0)
      + at(z0, y0, x1) + at(z0, y1, x0) + at(z1, y0, x0) - at(z0, y0, x0);
    return count > 0;
  });
}
