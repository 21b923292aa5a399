/**
 * nnU-Net's SpatialTransform (batchgeneratorsv2 transforms/spatial/spatial.py as configured by
 * nnUNetTrainer.get_training_transforms; NNUNET.md section 4.1): rotation with p 0.2 (each axis
 * independently U(range)), scaling with p 0.2 (one factor U(0.7, 1.4) for all axes, > 1 zooms out),
 * no elastic deformation, output = the final patch taken around the centre of the sampled patch.
 *
 * The affine A = Rz @ Ry @ Rx @ S acts on voxel offsets from the centre (axis order z, y, x); the
 * output voxel i of size s reads the input at A((1 - s) / 2 + i) + S / 2 - 1/2. The grid is built in
 * libtorch and sampled with gridSample (bilinear = trilinear in 3D, zeros padding, alignCorners
 * false). The label map: each label present is one-hot encoded, resampled linearly, and the
 * per-voxel argmax wins (the lowest label on ties, found in a host loop); voxels whose sampling position lies outside the
 * input get -1. (batchgeneratorsv2 compares in float16 after scaling by 1000; we compare in float32,
 * which can only differ on near-ties.) Dummy 2D: one in-plane (y, x) transform for every slice,
 * its label maps voted on the host with gridSample's own corner weights, computed once for all
 * slices (plane_resample.ts: the same labels as the one-hot channels through gridSample).
 * Without rotation or scaling the transform is a plain centre crop (image padded 0, labels -1).
 * A cascade's previous-stage label map is resampled as the target's, on its own.
 */
import type { Rng } from '../../core/index.js';
import {
  abs,
  add,
  arange,
  fromArray,
  gridSample,
  gt,
  logicalOr,
  mul,
  reshape,
  scope,
  stack,
  unsqueeze,
  zeros,
  type Tensor,
} from '../../tensor/index.js';
import type { Triple } from '../planning_topology.js';
import { type ApplyContext, type AugmentMeta, type PatchSample, type Transform } from './augment_types.js';
import { cropAndPad } from './patch_sampler.js';
import { planeLabels, planeWeights } from './plane_resample.js';

export const SPATIAL_DEFAULTS = { pRotation: 0.2, pScaling: 0.2, scaleRange: [0.7, 1.4] as const };

export interface SpatialParams {
  /** Output shape [z, y, x]. */
  outputShape: Triple;
  dummy2d: boolean;
  /** Angles in radians about axes 0, 1, 2 (3D), or [angle] in the (y, x) plane (dummy 2D); null = none. */
  rotationRad: number[] | null;
  /** Isotropic grid scale (> 1 zooms out); null = none. */
  scale: number | null;
}

export function sampleSpatial(rng: Rng, meta: AugmentMeta): SpatialParams {
  const doRotation = rng.float() < SPATIAL_DEFAULTS.pRotation;
  const doScaling = rng.float() < SPATIAL_DEFAULTS.pScaling;
  const [low, high] = meta.rotationRangeRad;
  const axes = meta.dummy2d ? 1 : 3;
  const rotationRad = doRotation ? Array.from({ length: axes }, () => rng.uniform(low, high)) : null;
  const scale = doScaling ? rng.uniform(SPATIAL_DEFAULTS.scaleRange[0], SPATIAL_DEFAULTS.scaleRange[1]) : null;
  return { outputShape: [...meta.finalPatchSize], dummy2d: meta.dummy2d, rotationRad, scale };
}

type Matrix = number[][];

function multiply(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((total, value, k) => total + value * b[k]![j]!, 0)));
}

/** A = Rz @ Ry @ Rx @ S (3D, batchgeneratorsv2 create_affine_matrix_3d) or R @ S (2D). */
export function affineMatrix(params: SpatialParams): Matrix {
  const scale = params.scale ?? 1;
  if (params.dummy2d) {
    const angle = params.rotationRad?.[0] ?? 0;
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    return multiply([[c, -s], [s, c]], [[scale, 0], [0, scale]]);
  }
  const [ax, ay, az] = params.rotationRad ?? [0, 0, 0];
  const rx = [[1, 0, 0], [0, Math.cos(ax!), -Math.sin(ax!)], [0, Math.sin(ax!), Math.cos(ax!)]];
  const ry = [[Math.cos(ay!), 0, Math.sin(ay!)], [0, 1, 0], [-Math.sin(ay!), 0, Math.cos(ay!)]];
  const rz = [[Math.cos(az!), -Math.sin(az!), 0], [Math.sin(az!), Math.cos(az!), 0], [0, 0, 1]];
  const diag = [[scale, 0, 0], [0, scale, 0], [0, 0, scale]];
  return multiply(multiply(multiply(rz, ry), rx), diag);
}

/**
 * The gridSample grid [1, ...outputShape, dims] (last axis in x, y(, z) order, normalised to
 * [-1, 1] of the input with alignCorners false) and the out-of-bounds mask [...outputShape].
 */
function buildGrid(matrix: Matrix, outputShape: number[], inputShape: number[], context: ApplyContext): { grid: Tensor; outside: Tensor } {
  const dims = outputShape.length;
  const device = context.device;
  // Centred coordinates of the output voxels along each axis, shaped to broadcast.
  const coordinates = outputShape.map((size, axis) => {
    const shape = outputShape.map((_, other) => (other === axis ? size : 1));
    return reshape(add(arange(0, size, 1, { dtype: 'float32', device }), (1 - size) / 2), shape);
  });
  const components: Tensor[] = [];
  let outside: Tensor | null = null;
  for (let e = 0; e < dims; e++) {
    // Row e of A applied to the coordinates, divided by half the input size (the centre is 0).
    let value = zeros(outputShape, { device });
    for (let d = 0; d < dims; d++) {
      const weight = matrix[e]![d]!;
      if (weight !== 0) value = add(value, mul(coordinates[d]!, weight / (inputShape[e]! / 2)));
    }
    components.push(value);
    // Outside iff |n| > 1 - 1/size (batchgeneratorsv2 _compute_out_of_bounds_mask, alignCorners false).
    const beyond = gt(abs(value), 1 - 1 / inputShape[e]!);
    outside = outside === null ? beyond : logicalOr(outside, beyond);
  }
  return { grid: unsqueeze(stack(components.reverse(), -1), 0), outside: outside! };
}

/** Sorted distinct values of an int8 array. */
export function distinctLabels(seg: Int8Array): number[] {
  const seen = new Uint8Array(256);
  for (let i = 0; i < seg.length; i++) seen[seg[i]! + 128] = 1;
  const labels: number[] = [];
  for (let v = 0; v < 256; v++) if (seen[v] === 1) labels.push(v - 128);
  return labels;
}

/** One float32 channel per label (in `labels` order, each [...seg's shape]): 1 where seg has that label. */
export function oneHotChannels(seg: Int8Array, labels: readonly number[]): Float32Array {
  const channelOf = new Int16Array(256).fill(-1);
  labels.forEach((label, channel) => {
    channelOf[label + 128] = channel;
  });
  const voxels = seg.length;
  const out = new Float32Array(labels.length * voxels);
  for (let i = 0; i < voxels; i++) {
    const channel = channelOf[seg[i]! + 128]!;
    if (channel < 0) throw new RangeError(`label ${seg[i]} at voxel ${i} is not among [${labels.join(', ')}]`);
    out[channel * voxels + i] = 1;
  }
  return out;
}

/**
 * The label map from the resampled one-hot channels [labels, planes, ...plane]: per voxel the label
 * whose channel is largest, the first (lowest) label on ties as torch argmax picks it, and -1 where
 * the sampling position lies outside the input (`outside` [...plane], the same for every plane).
 * A host loop: libtorch's argmax over the leading axis of this layout is strided and several
 * times slower than the whole resampling.
 */
export function winningLabels(resampled: Float32Array, labels: readonly number[], outside: Uint8Array, planes: number): Int8Array {
  const planeVoxels = outside.length;
  const voxels = planes * planeVoxels;
  if (resampled.length !== labels.length * voxels) throw new RangeError(`resampled has ${resampled.length} values, expected ${labels.length} x ${voxels}`);
  const result = new Int8Array(voxels);
  for (let plane = 0; plane < planes; plane++) {
    for (let j = 0; j < planeVoxels; j++) {
      const i = plane * planeVoxels + j;
      if (outside[j] === 1) {
        result[i] = -1;
        continue;
      }
      let best = resampled[i]!;
      let winner = 0;
      for (let l = 1; l < labels.length; l++) {
        const value = resampled[l * voxels + i]!;
        if (value > best) {
          best = value;
          winner = l;
        }
      }
      result[i] = labels[winner]!;
    }
  }
  return result;
}

/** True when the transform neither rotates nor scales: it is then a plain centre crop. */
export function isPlainCrop(params: SpatialParams): boolean {
  return params.rotationRad === null && params.scale === null;
}

/** Lower corner, in the input patch, of the centre crop to `outputShape`. */
export function centreCropCorner(inputShape: Triple, outputShape: Triple): Triple {
  return [0, 1, 2].map((axis) => Math.floor(inputShape[axis]! / 2) - Math.floor(outputShape[axis]! / 2)) as Triple;
}

function centreCrop(sample: PatchSample, outputShape: Triple): PatchSample {
  // Already the output's size (the loader cropped the case directly to it): nothing to do.
  if (sample.shape.join() === outputShape.join()) return sample;
  const lowerBound = centreCropCorner(sample.shape, outputShape);
  return {
    image: cropAndPad(sample.image, sample.channels, sample.shape, lowerBound, outputShape, 0),
    seg: cropAndPad(sample.seg, 1, sample.shape, lowerBound, outputShape, -1),
    ...(sample.previous !== undefined ? { previous: cropAndPad(sample.previous, 1, sample.shape, lowerBound, outputShape, -1) } : {}),
    channels: sample.channels,
    shape: [...outputShape],
  };
}

export function applySpatial(sample: PatchSample, params: SpatialParams, context: ApplyContext): PatchSample {
  if (isPlainCrop(params)) return centreCrop(sample, params.outputShape);
  const { channels, shape } = sample;
  const out = params.outputShape;
  if (params.dummy2d && out[0] !== shape[0]) {
    throw new RangeError(`dummy-2D spatial transform keeps axis 0: input ${shape[0]} slices, output ${out[0]}`);
  }
  const device = context.device;
  return scope(() => {
    const matrix = affineMatrix(params);
    // Dummy 2D folds the slices into the channel axis and samples one (y, x) grid for all of them.
    const planes = params.dummy2d ? shape[0] : 1;
    const inputSpatial = params.dummy2d ? [shape[1], shape[2]] : [...shape];
    const outputSpatial = params.dummy2d ? [out[1], out[2]] : [...out];
    const { grid, outside } = buildGrid(matrix, outputSpatial, inputSpatial, context);
    const options = { mode: 'bilinear', paddingMode: 'zeros', alignCorners: false } as const;
    const image = fromArray(sample.image, [1, channels * planes, ...inputSpatial], { device });
    const outVoxels = out[0] * out[1] * out[2];
    const given = context.output;
    const target = given !== undefined && given.image.length === channels * outVoxels && given.seg.length === outVoxels ? given : undefined;
    const imageOut = target?.image ?? new Float32Array(channels * outVoxels);
    gridSample(image, grid, options).copyInto(imageOut);

    const outsideMask = outside.toTypedArray() as Uint8Array;
    // Each label map (the target, a cascade's previous stage) on its own, as batchgeneratorsv2 treats seg channels.
    let resampleLabels: (seg: Int8Array, into?: Int8Array) => Int8Array;
    if (params.dummy2d) {
      const table = planeWeights(grid.toFloat32Array(), shape[1], shape[2]);
      resampleLabels = (seg, into) => planeLabels(seg, planes, table, outsideMask, into);
    } else {
      resampleLabels = (seg, into) => {
        const labels = distinctLabels(seg);
        const oneHot = fromArray(oneHotChannels(seg, labels), [1, labels.length, ...inputSpatial], { device });
        const voted = winningLabels(gridSample(oneHot, grid, options).toFloat32Array(), labels, outsideMask, 1);
        into?.set(voted);
        return into ?? voted;
      };
    }
    const previous = sample.previous === undefined ? {} : { previous: resampleLabels(sample.previous) };
    return { image: imageOut, seg: resampleLabels(sample.seg, target?.seg), ...previous, channels, shape: [...out] as Triple };
  });
}

export const spatialTransform: Transform<SpatialParams> = {
  name: 'spatial',
  sample: sampleSpatial,
  apply: applySpatial,
};
