/**
 * Pure geometry of sliding-window inference, as nnU-Net tiles a volume (nnunetv2 inference/
 * sliding_window_prediction.py, NNUNET.md section 5): the window starts per axis, the boxes of all
 * windows, and the zero padding that makes a volume at least one patch large.
 */

export type Triple = [number, number, number];

/** numpy's `np.round` (halves go to the even neighbour), which nnU-Net uses for the window starts. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * Window starts along one axis: n = ceil((size - patch) / (patch * stepFraction)) + 1 windows,
 * spread evenly so the first starts at 0 and the last ends at `size` (start round(step * i) with
 * step = (size - patch) / (n - 1)). `size` must be >= `patch` (pad first).
 * e.g. slidingWindowSteps(256, 128, 0.5) -> [0, 64, 128].
 */
/**
 * Windows along one axis of `size` voxels (padded to at least `patch`): nnU-Net's step count,
 * ceil((size - patch) / (patch * step)) + 1, computed without listing the windows.
 */
export function windowCountPerAxis(size: number, patch: number, stepFraction: number): number {
  if (size <= patch) return 1;
  return Math.ceil((size - patch) / (patch * stepFraction)) + 1;
}

export function slidingWindowSteps(size: number, patch: number, stepFraction = 0.5): number[] {
  if (!Number.isInteger(size) || !Number.isInteger(patch) || patch < 1) {
    throw new RangeError(`slidingWindowSteps: size ${size} and patch ${patch} must be positive integers`);
  }
  if (size < patch) throw new RangeError(`slidingWindowSteps: size ${size} is smaller than the patch ${patch}; pad the volume first`);
  if (!(stepFraction > 0 && stepFraction <= 1)) throw new RangeError(`slidingWindowSteps: step fraction must be in (0, 1], got ${stepFraction}`);
  const count = windowCountPerAxis(size, patch, stepFraction);
  if (count === 1) return [0];
  const step = (size - patch) / (count - 1);
  return Array.from({ length: count }, (_, i) => roundHalfEven(step * i));
}

/** One window: its start per axis [z, y, x] (its size is the patch). */
export interface WindowBox {
  start: Triple;
}

/**
 * Every window of a (padded) volume, z slowest then y then x, as nnU-Net orders its slicers. The
 * step fraction is one for all axes or one per axis (a 2D network's windows are one slice deep and
 * step 1 along z: every slice, as nnU-Net's predictor walks the slices of a 2D configuration).
 */
export function slidingWindowBoxes(shape: readonly number[], patch: readonly number[], stepFraction: number | readonly number[] = 0.5): WindowBox[] {
  const stepOf = (axis: number): number => (typeof stepFraction === 'number' ? stepFraction : stepFraction[axis]!);
  const [sz, sy, sx] = [0, 1, 2].map((axis) => slidingWindowSteps(shape[axis]!, patch[axis]!, stepOf(axis))) as [number[], number[], number[]];
  const boxes: WindowBox[] = [];
  for (const z of sz) for (const y of sy) for (const x of sx) boxes.push({ start: [z, y, x] });
  return boxes;
}

/** Padding of one axis: `before` zeros in front, `after` behind. */
export interface AxisPadding {
  before: number;
  after: number;
}

/**
 * The zero padding that makes `shape` at least `patch` on every axis (acvl_utils `pad_nd_image`):
 * the missing voxels d are split d // 2 before and the rest after; axes already large enough get none.
 */
export function paddingToPatch(shape: readonly number[], patch: readonly number[]): [AxisPadding, AxisPadding, AxisPadding] {
  return [0, 1, 2].map((axis) => {
    const missing = Math.max(0, patch[axis]! - shape[axis]!);
    return { before: Math.floor(missing / 2), after: missing - Math.floor(missing / 2) };
  }) as [AxisPadding, AxisPadding, AxisPadding];
}

/** The shape after `paddingToPatch`. */
export function paddedShape(shape: readonly number[], padding: readonly AxisPadding[]): Triple {
  return [0, 1, 2].map((axis) => shape[axis]! + padding[axis]!.before + padding[axis]!.after) as Triple;
}
