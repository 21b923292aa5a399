/**
 * Where a training patch is cut from a case, and the cut itself (nnunetv2 nnUNetDataLoader
 * `get_bbox` + acvl_utils `crop_and_pad_nd`, NNUNET.md section 3). Pure functions on host arrays:
 * - random: lower bound uniform in [-needToPad // 2, shape + needToPad // 2 + needToPad % 2 - patch];
 * - forced foreground: a label uniform among those with stored locations, a stored voxel uniform
 *   among that label's, lower bound = max(random lower limit, voxel - patch // 2) (the upper side is
 *   not clamped: the crop pads); a case without foreground falls back to random. The dataset's
 *   ignore label is never such a label (nnU-Net collects class locations of its foreground labels
 *   only, which leave the ignore label out), even if a cache stored locations for it;
 * - the crop pads the image with 0 and the label map with -1 ("outside").
 */
import type { Rng } from '../../core/index.js';
import { hostCropInto } from '../../tensor/index.js';
import type { Triple } from '../planning_topology.js';

export type ClassLocations = Record<string, readonly (readonly [number, number, number])[]>;

export interface PatchChoice {
  /** Lower corner [z, y, x] of the sampled patch in case voxels (may be negative: padding). */
  lowerBound: Triple;
  /** The label the patch was centred on, or null for a random patch. */
  foregroundLabel: number | null;
}

/** Sample j of a batch of `batchSize` must contain foreground iff j >= round(B * (1 - p)). */
export function isForcedForeground(sampleIndex: number, batchSize: number, oversampleForeground: number): boolean {
  return !(sampleIndex < pythonRound(batchSize * (1 - oversampleForeground)));
}

/** Python 3 round(): halves go to the even neighbour (round(2.5) = 2), as nnU-Net's rule uses it. */
export function pythonRound(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The padding the sampler may add per axis: enlarged - final, raised so the patch fits the case. */
export function needToPad(caseShape: Triple, sampledPatch: Triple, finalPatch: Triple): Triple {
  return [0, 1, 2].map((axis) => {
    const base = sampledPatch[axis]! - finalPatch[axis]!;
    return base + caseShape[axis]! < sampledPatch[axis]! ? sampledPatch[axis]! - caseShape[axis]! : base;
  }) as Triple;
}

/** Labels (ascending) that have at least one stored location, the ignore label left out. */
export function presentLabels(classLocations: ClassLocations, ignoreLabel: number | null = null): number[] {
  return Object.keys(classLocations)
    .filter((key) => (classLocations[key]?.length ?? 0) > 0)
    .map(Number)
    .filter((label) => label !== ignoreLabel)
    .sort((a, b) => a - b);
}

/** nnU-Net get_bbox: the lower corner of the sampled patch (`ignoreLabel`: the dataset's, or null). */
export function choosePatch(
  rng: Rng,
  caseShape: Triple,
  sampledPatch: Triple,
  finalPatch: Triple,
  forceForeground: boolean,
  classLocations: ClassLocations,
  ignoreLabel: number | null = null,
): PatchChoice {
  const pad = needToPad(caseShape, sampledPatch, finalPatch);
  const lower = pad.map((p) => 0 - Math.ceil(p / 2)); // Python -p // 2, without a -0
  const upper = [0, 1, 2].map((axis) => caseShape[axis]! + Math.floor(pad[axis]! / 2) + (pad[axis]! % 2) - sampledPatch[axis]!);
  const labels = forceForeground ? presentLabels(classLocations, ignoreLabel) : [];
  if (labels.length === 0) {
    return { lowerBound: [0, 1, 2].map((axis) => rng.int(lower[axis]!, upper[axis]! + 1)) as Triple, foregroundLabel: null };
  }
  const label = rng.choice(labels);
  const voxels = classLocations[String(label)]!;
  const voxel = voxels[rng.int(0, voxels.length)]!;
  const lowerBound = [0, 1, 2].map((axis) => Math.max(lower[axis]!, voxel[axis]! - Math.floor(sampledPatch[axis]! / 2))) as Triple;
  return { lowerBound, foregroundLabel: label };
}

/**
 * Crop [C, z, y, x] at `lowerBound` with size `patch`, filling what lies outside the case with
 * `padValue` (crop_and_pad_nd). Works for Float32Array images and Int8Array label maps. The crop is
 * written into `target` when given (C x patch values, e.g. a sample's slot of a batch), else into a new array.
 */
export function cropAndPad<T extends Float32Array | Int8Array>(
  source: T,
  channels: number,
  caseShape: Triple,
  lowerBound: Triple,
  patch: Triple,
  padValue: number,
  target?: T,
): T {
  const length = channels * patch[0] * patch[1] * patch[2];
  if (target !== undefined && target.length !== length) throw new RangeError(`cropAndPad: target has ${target.length} values, the crop ${length}`);
  const output = target ?? new (source.constructor as new (length: number) => T)(length);
  // Whole rows copied in the addon (memcpy), the padding filled only where the patch reaches beyond the case.
  hostCropInto(source, channels, caseShape, lowerBound, patch, padValue, output);
  return output;
}
