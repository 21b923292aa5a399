/**
 * The shapes every augmentation shares (STYLE rule 8, batchgeneratorsv2): a transform first
 * `sample(rng, meta)`s its parameters as plain JSON, then `apply(sample, params)` is a pure function
 * of the patch and those parameters, so a batch can be replayed from its recorded parameters (with
 * ApplyContext.reuseInput it may also overwrite the patch it was given).
 */
import type { Device, Rng } from '../../core/index.js';
import type { Triple } from '../planning_topology.js';

/**
 * One training sample on the host: image float32 [C, z, y, x] and label map int8 [1, z, y, x];
 * a cascade's sample also carries the previous stage's label map [1, z, y, x], which the spatial
 * transforms and mirroring move as they move `seg` (nnU-Net stacks it as a second seg channel).
 */
export interface PatchSample {
  image: Float32Array;
  seg: Int8Array;
  previous?: Int8Array;
  channels: number;
  shape: Triple;
}

/** What sampling needs to know about the sample and the run. */
export interface AugmentMeta {
  channels: number;
  /** Shape of the sampled (enlarged) patch. */
  sampledPatchSize: Triple;
  /** Shape the spatial transform outputs. */
  finalPatchSize: Triple;
  dummy2d: boolean;
  rotationRangeRad: readonly [number, number];
  mirrorAxes: readonly number[];
  /** 2: a 2d configuration's patch, one slice deep (absent: 3D). */
  spatialDims?: 2;
  /** Channels whose normalisation used the nonzero mask (nnU-Net MaskImageTransform). */
  useMaskForNorm: readonly boolean[];
  /** A cascade stage: the previous stage's foreground labels (one-hot channels); 0 otherwise. */
  previousLabels: number;
}

/** Where libtorch-based transforms run their tensors, and whether they may overwrite their input. */
export interface ApplyContext {
  device: Device;
  /**
   * The sample's arrays are the caller's to give up (the loader's own crop, or an earlier step's
   * output): a transform may write its result into them instead of new arrays. The values are the
   * same either way; without it apply() leaves its input untouched.
   */
  reuseInput?: boolean;
  /**
   * Arrays of the output's size (image [C, ...outputShape], labels [...outputShape]) that a step
   * making new arrays (the spatial step when it resamples) writes its result into instead; every
   * value is overwritten. Steps that work in place ignore it.
   */
  output?: { image: Float32Array; seg: Int8Array };
}

export interface Transform<Params> {
  readonly name: string;
  sample(rng: Rng, meta: AugmentMeta): Params;
  apply(sample: PatchSample, params: Params, context: ApplyContext): PatchSample;
}

/**
 * batchgeneratorsv2 BGContrast: with probability 1/2 a factor below 1 (uniform in [low, 1)),
 * otherwise one above 1 (uniform in [max(low, 1), high)).
 */
export function sampleBgContrast(rng: Rng, low: number, high: number): number {
  if (rng.float() < 0.5 && low < 1) return rng.uniform(low, 1);
  return rng.uniform(Math.max(low, 1), high);
}

/** Channels chosen independently with probability p each. */
export function sampleChannels(rng: Rng, channels: number, probability: number): number[] {
  const chosen: number[] = [];
  for (let c = 0; c < channels; c++) if (rng.float() < probability) chosen.push(c);
  return chosen;
}

export function voxelsOf(shape: Triple): number {
  return shape[0] * shape[1] * shape[2];
}
