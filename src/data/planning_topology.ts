/**
 * Network topology from spacing and patch size, and the planner's memory proxy, as nnU-Net plans
 * them (nnunetv2 experiment_planning/experiment_planners/network_topology.py
 * `get_pool_and_conv_props`, and dynamic-network-architectures `compute_conv_feature_map_size`;
 * NNUNET.md section 1), for 3D patches and (for the 2d configuration) 2D ones: `poolAndConvPropsNd`
 * works on as many axes as the spacing has.
 */

export type Triple = [number, number, number];

export interface Topology {
  /** Down-sampling steps per axis. */
  poolsPerAxis: Triple;
  /** Per stage; stage 0 is [1, 1, 1]. */
  strides: Triple[];
  /** Per stage; the last (bottleneck) is [3, 3, 3]. */
  kernelSizes: Triple[];
  /** The patch padded up to a multiple of 2^poolsPerAxis on each axis. */
  patchSize: Triple;
  /** 2^poolsPerAxis. */
  divisibleBy: Triple;
}

/** The topology of a network with any number of spatial axes (2 for the 2d configuration). */
export interface TopologyNd {
  poolsPerAxis: number[];
  strides: number[][];
  kernelSizes: number[][];
  patchSize: number[];
  divisibleBy: number[];
}

export interface TopologyLimits {
  /** Smallest edge of the bottleneck feature map (nnU-Net: 4). */
  minFeatureMapSize: number;
  /** Most down-sampling steps per axis, one entry per axis (nnU-Net: unlimited). */
  maxPoolsPerAxis: readonly number[];
  /** Most stages in all (ours, for the small presets; nnU-Net: unlimited). */
  maxStages: number;
}

export const NNUNET_TOPOLOGY_LIMITS: Readonly<TopologyLimits> = Object.freeze({
  minFeatureMapSize: 4,
  maxPoolsPerAxis: [999999, 999999, 999999] as Triple,
  maxStages: 999999,
});

/** nnU-Net `pad_shape`: round each size up to a multiple of its factor (exact multiples unchanged). */
export function padShape(shape: readonly number[], divisibleBy: readonly number[]): Triple {
  return padShapeNd(shape, divisibleBy) as Triple;
}

function padShapeNd(shape: readonly number[], divisibleBy: readonly number[]): number[] {
  return shape.map((size, i) => {
    const factor = divisibleBy[i]!;
    const remainder = size % factor;
    return Math.trunc(remainder === 0 ? size : size + factor - remainder);
  });
}

/**
 * nnU-Net `get_pool_and_conv_props`: pool every axis that is at least 2 * minFeatureMapSize and
 * whose current spacing is within a factor 2 of the finest valid axis (a lone valid axis needs
 * 3 * minFeatureMapSize); an axis' kernel becomes 3 once its spacing is within a factor 2 of the
 * finest. Then the patch is padded up to the divisibility the pooling needs.
 */
export function poolAndConvProps(
  spacing: readonly number[],
  patchSize: readonly number[],
  limits: TopologyLimits = NNUNET_TOPOLOGY_LIMITS,
): Topology {
  if (spacing.length !== 3) throw new RangeError(`poolAndConvProps plans 3 axes, got ${spacing.length}`);
  return poolAndConvPropsNd(spacing, patchSize, limits) as Topology;
}

/** `poolAndConvProps` on as many axes as `spacing` has (nnU-Net's function is the same for 2D patches). */
export function poolAndConvPropsNd(spacing: readonly number[], patchSize: readonly number[], limits: TopologyLimits = NNUNET_TOPOLOGY_LIMITS): TopologyNd {
  const axes = spacing.map((_, axis) => axis);
  const currentSpacing = [...spacing];
  const currentSize = [...patchSize];
  const strides: number[][] = [axes.map(() => 1)];
  const kernelSizes: number[][] = [];
  const poolsPerAxis = axes.map(() => 0);
  const kernel = axes.map(() => 1);
  const maxPools = (axis: number): number => limits.maxPoolsPerAxis[axis] ?? 999999;
  for (;;) {
    if (strides.length >= limits.maxStages) break;
    // An axis out of pooling steps no longer sets the reference spacing (nnU-Net filters it after
    // the spacing test, which is the same when the steps are unlimited, as nnU-Net plans them).
    let valid = axes.filter((axis) => currentSize[axis]! >= 2 * limits.minFeatureMapSize && poolsPerAxis[axis]! < maxPools(axis));
    if (valid.length < 1) break;
    const finestValid = Math.min(...valid.map((axis) => currentSpacing[axis]!));
    valid = valid.filter((axis) => currentSpacing[axis]! / finestValid < 2);
    if (valid.length === 1 && currentSize[valid[0]!]! < 3 * limits.minFeatureMapSize) break;
    if (valid.length < 1) break;
    const finest = Math.min(...currentSpacing);
    for (const axis of axes) if (kernel[axis] !== 3 && currentSpacing[axis]! / finest < 2) kernel[axis] = 3;
    const stride = axes.map(() => 1);
    for (const axis of valid) {
      stride[axis] = 2;
      poolsPerAxis[axis]! += 1;
      currentSpacing[axis]! *= 2;
      currentSize[axis] = Math.ceil(currentSize[axis]! / 2);
    }
    strides.push(stride);
    kernelSizes.push([...kernel]);
  }
  kernelSizes.push(axes.map(() => 3));
  const divisibleBy = poolsPerAxis.map((n) => 2 ** n);
  return { poolsPerAxis, strides, kernelSizes, patchSize: padShapeNd(patchSize, divisibleBy), divisibleBy };
}

/** Features per stage: min(base * 2^i, max) (nnU-Net: 32 .. 320). */
export function featuresPerStage(numStages: number, base: number, max: number): number[] {
  return Array.from({ length: numStages }, (_, i) => Math.min(base * 2 ** i, max));
}

export interface FeatureMapNetwork {
  featuresPerStage: readonly number[];
  strides: readonly (readonly number[])[];
  numClasses: number;
  /** Convolutions per encoder / decoder stage (2 / 2 for PlainConvUNet). */
  convsPerStage?: number;
  convsPerStageDecoder?: number;
  deepSupervision?: boolean;
}

/**
 * PlainConvUNet `compute_conv_feature_map_size(patch)`: the sum over every convolution,
 * transposed convolution and segmentation head output of channels * voxels (sizes by floor
 * division with the strides), for any number of axes. nnU-Net's planner builds the network without deep supervision.
 */
export function convFeatureMapSize(patchSize: readonly number[], network: FeatureMapNetwork): number {
  const convs = network.convsPerStage ?? 2;
  const decoderConvs = network.convsPerStageDecoder ?? 2;
  const deepSupervision = network.deepSupervision ?? false;
  const { strides } = network;
  const features = network.featuresPerStage;
  const voxels = (size: readonly number[]): number => size.reduce((product, n) => product * n, 1);
  let total = 0;
  // Encoder: stage s runs at the size after its own stride.
  const stageSizes: number[][] = [];
  let size = [...patchSize];
  for (let s = 0; s < strides.length; s++) {
    size = size.map((n, axis) => Math.floor(n / strides[s]![axis]!));
    stageSizes.push(size);
    total += convs * features[s]! * voxels(size);
  }
  // Decoder: one level per skip (every stage but the bottleneck), bottom-up.
  const levels = strides.length - 1;
  for (let level = 0; level < levels; level++) {
    const skip = levels - 1 - level;
    const skipVoxels = voxels(stageSizes[skip]!);
    total += decoderConvs * features[skip]! * skipVoxels;
    total += features[skip]! * skipVoxels; // transposed convolution output
    if (deepSupervision || level === levels - 1) total += network.numClasses * skipVoxels;
  }
  return total;
}
