/**
 * nnU-Net's filtering augmentations, run in libtorch (NNUNET.md section 4):
 * - Gaussian blur (p 0.2): each channel with p 0.5, sigma ~ U(0.5, 1) drawn per axis; separable
 *   kernel of odd size round_to_odd(6 sigma + 0.5), normalised, reflect padding
 *   (batchgeneratorsv2 noise/gaussian_blur.py); a 2d configuration's patch (one slice) is blurred
 *   over y and x only (sigma 0 along z: that axis is not blurred);
 * - low-resolution simulation (p 0.25): each channel with p 0.5, one zoom U(0.5, 1) for all axes
 *   (axis 0 kept in dummy-2D mode); downsample nearest-exact to round(shape * zoom), upsample back
 *   trilinear (batchgeneratorsv2 spatial/low_resolution.py);
 * - mirroring: each allowed axis flipped with p 0.5 (image and labels, a cascade's previous stage too),
 *   on the host by swapping planes and rows and reversing rows in place (a permutation: the same values).
 * On the CPU the blur runs in the addon (hostBlurAxis: fused multiply-adds in kernel order, without
 * conv3d's unfolded copies; libtorch's values bit for bit on the EPYC measured, within float32
 * summation order on any CPU: transforms.test.ts), elsewhere in libtorch on the device.
 * With ApplyContext.reuseInput the results are written into the input's arrays.
 */
import { conv3d, fromArray, hostBlurAxis, hostFlipInPlace, interpolate, pad, scope } from '../../tensor/index.js';
import type { Triple } from '../planning_topology.js';
import { sampleChannels, type ApplyContext, type PatchSample, type Transform } from './augment_types.js';
import { pythonRound } from './patch_sampler.js';

export interface BlurParams {
  channels: { channel: number; sigmas: Triple }[];
}

export interface LowResolutionParams {
  channels: { channel: number; zoom: Triple }[];
}

export interface MirrorParams {
  axes: number[];
}

/** batchgeneratorsv2 _round_to_nearest_odd. */
function roundToNearestOdd(value: number): number {
  const rounded = pythonRound(value);
  if (Math.abs(rounded % 2) === 1) return rounded;
  return value - rounded >= 0 ? rounded + 1 : rounded - 1;
}

/** The normalised 1D Gaussian kernel blur uses (truncated at 6 sigma). */
export function gaussianKernel1d(sigma: number, truncate = 6): Float32Array {
  const size = roundToNearestOdd(sigma * truncate + 0.5);
  const half = (size - 1) / 2;
  const values = Array.from({ length: size }, (_, i) => Math.exp(-0.5 * ((i - half) / sigma) ** 2));
  const total = values.reduce((a, b) => a + b, 0);
  return Float32Array.from(values, (v) => v / total);
}

function channelSlice(sample: PatchSample, channel: number): Float32Array {
  const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
  return sample.image.subarray(channel * size, (channel + 1) * size);
}

/** Two scratch volumes per thread for the host blur's passes (reused: no new array per blur). */
let scratch: [Float32Array, Float32Array] | null = null;

/**
 * The blur of one channel on the host (hostBlurAxis, libtorch's conv3d within float32 summation
 * order), pass by pass through the scratch volumes, into `target` (which may be `source` itself).
 * False where the addon cannot (no AVX2 or FMA): nothing written, libtorch does it.
 */
function blurOnHost(source: Float32Array, shape: Triple, sigmas: Triple, target: Float32Array): boolean {
  const axes = ([0, 1, 2] as const).filter((axis) => sigmas[axis] !== 0);
  if (axes.length === 0) {
    if (target !== source) target.set(source);
    return true;
  }
  if (scratch === null || scratch[0].length !== source.length) scratch = [new Float32Array(source.length), new Float32Array(source.length)];
  let current = source;
  for (const [pass, axis] of axes.entries()) {
    // The last pass goes straight into the target unless it would read the target itself.
    const last = pass === axes.length - 1 && current !== source;
    const out = last ? target : scratch[pass % 2]!;
    if (!hostBlurAxis(current, shape, axis, gaussianKernel1d(sigmas[axis]!), out)) return false;
    current = out;
  }
  if (current !== target) target.set(current);
  return true;
}

export const gaussianBlur: Transform<BlurParams> = {
  name: 'gaussianBlur',
  sample: (rng, meta) => ({
    channels: sampleChannels(rng, meta.channels, 0.5).map((channel) => ({
      channel,
      sigmas: (meta.spatialDims === 2 ? [0, rng.uniform(0.5, 1), rng.uniform(0.5, 1)] : [rng.uniform(0.5, 1), rng.uniform(0.5, 1), rng.uniform(0.5, 1)]) as Triple,
    })),
  }),
  apply(sample, params, context: ApplyContext) {
    if (params.channels.length === 0) return sample;
    const image = context.reuseInput === true ? sample.image : sample.image.slice();
    const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
    for (const { channel, sigmas } of params.channels) {
      const target = image.subarray(channel * size, (channel + 1) * size);
      if (context.device.type === 'cpu' && blurOnHost(channelSlice(sample, channel), sample.shape, sigmas, target)) continue;
      scope(() => {
        let x = fromArray(channelSlice(sample, channel), [1, 1, ...sample.shape], { device: context.device });
        for (let axis = 0; axis < 3; axis++) {
          if (sigmas[axis] === 0) continue;
          const kernel = gaussianKernel1d(sigmas[axis]!);
          const kernelShape = [1, 1, 1, 1, 1];
          kernelShape[2 + axis] = kernel.length;
          const radius = (kernel.length - 1) / 2;
          // torch pad order: last axis first.
          const pads = [0, 0, 0, 0, 0, 0];
          pads[2 * (2 - axis)] = radius;
          pads[2 * (2 - axis) + 1] = radius;
          x = conv3d(pad(x, pads, 'reflect'), fromArray(kernel, kernelShape, { device: context.device }), null);
        }
        x.copyInto(target);
      });
    }
    return { ...sample, image };
  },
};

export const lowResolution: Transform<LowResolutionParams> = {
  name: 'lowResolution',
  sample: (rng, meta) => ({
    channels: sampleChannels(rng, meta.channels, 0.5).map((channel) => {
      const zoom = rng.uniform(0.5, 1);
      return { channel, zoom: [meta.dummy2d ? 1 : zoom, zoom, zoom] as Triple };
    }),
  }),
  apply(sample, params, context: ApplyContext) {
    if (params.channels.length === 0) return sample;
    const image = context.reuseInput === true ? sample.image : sample.image.slice();
    const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
    for (const { channel, zoom } of params.channels) {
      const lowShape = sample.shape.map((s, axis) => pythonRound(s * zoom[axis]!));
      scope(() => {
        const x = fromArray(channelSlice(sample, channel), [1, 1, ...sample.shape], { device: context.device });
        const low = interpolate(x, { size: lowShape, mode: 'nearest-exact' });
        interpolate(low, { size: [...sample.shape], mode: 'trilinear', alignCorners: false }).copyInto(image.subarray(channel * size, (channel + 1) * size));
      });
    }
    return { ...sample, image };
  },
};

/**
 * Flip `volumes` consecutive [z, y, x] volumes of `data` in place along `axes` (0 = z, 1 = y, 2 = x),
 * in the addon (host_kernels.cpp: planes swapped, rows swapped, rows reversed; no allocation).
 */
export function flipInPlace(data: Float32Array | Int8Array, volumes: number, shape: Triple, axes: readonly number[]): void {
  hostFlipInPlace(data, volumes, shape, [axes.includes(0), axes.includes(1), axes.includes(2)]);
}

export const mirror: Transform<MirrorParams> = {
  name: 'mirror',
  sample: (rng, meta) => ({ axes: meta.mirrorAxes.filter(() => rng.float() < 0.5) }),
  apply(sample, params, context: ApplyContext) {
    if (params.axes.length === 0) return sample;
    const own = context.reuseInput === true;
    const out: PatchSample = {
      ...sample,
      image: own ? sample.image : sample.image.slice(),
      seg: own ? sample.seg : sample.seg.slice(),
      ...(sample.previous === undefined ? {} : { previous: own ? sample.previous : sample.previous.slice() }),
    };
    flipInPlace(out.image, sample.channels, sample.shape, params.axes);
    flipInPlace(out.seg, 1, sample.shape, params.axes);
    if (out.previous !== undefined) flipInPlace(out.previous, 1, sample.shape, params.axes);
    return out;
  },
};
