/**
 * Array-level image operations used by the phantom: a separable Gaussian blur along one axis
 * (scipy.ndimage.gaussian_filter1d semantics with mode='nearest'), fast approximately-Gaussian
 * scanner noise, smooth random 1-D profiles and lattice value noise for lesion textures, and the
 * Radiopaedia intensity convention.
 */
import type { Rng, Shape3 } from '../core/index.js';
import { RADIOPAEDIA_WINDOW_HU } from './types.js';

/** Normalised Gaussian kernel of standard deviation `sigma` voxels, radius round(truncate*sigma). */
export function gaussianKernel(sigma: number, truncate = 4): Float64Array {
  const radius = Math.max(0, Math.round(truncate * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let n = -radius; n <= radius; n++) {
    const w = Math.exp((-0.5 * n * n) / (sigma * sigma));
    kernel[n + radius] = w;
    sum += w;
  }
  for (let n = 0; n < kernel.length; n++) kernel[n]! /= sum;
  return kernel;
}

/**
 * Blur `data` (array order [z, y, x]) in place along `axis` (0 = z, 1 = y, 2 = x) with a Gaussian
 * of `sigma` voxels; edges repeat the border value (scipy mode='nearest').
 */
export function blurAxis(data: Float32Array, shape: Shape3, axis: 0 | 1 | 2, sigma: number, truncate = 4): void {
  if (!(sigma > 0)) return;
  const kernel = gaussianKernel(sigma, truncate);
  const radius = (kernel.length - 1) / 2;
  if (radius === 0) return;
  const [nz, ny, nx] = shape;
  const length = shape[axis];
  const stride = axis === 0 ? ny * nx : axis === 1 ? nx : 1;
  const line = new Float64Array(length + 2 * radius);
  // Every line along `axis` starts at one (outer, inner) pair of the other two axes.
  const starts: number[] = [];
  if (axis === 0) for (let o = 0; o < ny * nx; o++) starts.push(o);
  else if (axis === 1) for (let z = 0; z < nz; z++) for (let x = 0; x < nx; x++) starts.push(z * ny * nx + x);
  else for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) starts.push((z * ny + y) * nx);
  for (const start of starts) {
    for (let n = 0; n < length; n++) line[n + radius] = data[start + n * stride]!;
    const first = line[radius]!;
    const last = line[radius + length - 1]!;
    for (let n = 0; n < radius; n++) {
      line[n] = first;
      line[radius + length + n] = last;
    }
    for (let n = 0; n < length; n++) {
      let acc = 0;
      for (let m = 0; m < kernel.length; m++) acc += kernel[m]! * line[n + m]!;
      data[start + n * stride] = acc;
    }
  }
}

/**
 * Add zero-mean noise of standard deviation `std` to every voxel. Each sample is the sum of four
 * 16-bit uniforms (Irwin-Hall), rescaled: close enough to Gaussian for scanner noise and ~10x
 * cheaper than Box-Muller.
 */
export function addNoise(data: Float32Array, std: number, rng: Rng): void {
  // Sum of four U(0,1) has mean 2 and variance 4/12.
  const scale = std / Math.sqrt(4 / 12) / 65536;
  const offset = 2 * 65536;
  for (let n = 0; n < data.length; n++) {
    const a = rng.nextUint32();
    const b = rng.nextUint32();
    const sum = (a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16);
    data[n]! += (sum - offset) * scale;
  }
}

/** A smooth random profile of `length` samples: N(0,1) values every `cellSamples`, linearly interpolated. */
export function smoothProfile(rng: Rng, length: number, cellSamples: number): Float32Array {
  const knots = Math.ceil(length / cellSamples) + 2;
  const values = new Float64Array(knots);
  for (let n = 0; n < knots; n++) values[n] = rng.normal();
  const out = new Float32Array(length);
  for (let n = 0; n < length; n++) {
    const u = n / cellSamples;
    const k = Math.floor(u);
    const f = u - k;
    const s = f * f * (3 - 2 * f);
    out[n] = values[k]! * (1 - s) + values[k + 1]! * s;
  }
  return out;
}

/**
 * Lattice value noise in [0, 1] over a box in world mm: uniform random values on a grid of
 * `cellMm` cells, smoothstep-interpolated. Sample it over a voxel box with `fill`.
 */
export class ValueNoise {
  private readonly values: Float32Array;
  private readonly dims: [number, number, number];
  private readonly origin: [number, number, number];
  private readonly cellMm: number;

  constructor(rng: Rng, boxMinMm: readonly number[], boxMaxMm: readonly number[], cellMm: number) {
    this.cellMm = cellMm;
    this.origin = [boxMinMm[0]! - cellMm, boxMinMm[1]! - cellMm, boxMinMm[2]! - cellMm];
    this.dims = [0, 1, 2].map((a) => Math.ceil((boxMaxMm[a]! - boxMinMm[a]!) / cellMm) + 3) as [number, number, number];
    this.values = new Float32Array(this.dims[0] * this.dims[1] * this.dims[2]);
    for (let n = 0; n < this.values.length; n++) this.values[n] = rng.float();
  }

  /** Noise at world (x, y, z) mm; points outside the box are clamped to it. */
  at(x: number, y: number, z: number): number {
    const [dx, dy, dz] = this.dims;
    const fx = clampIndex((x - this.origin[0]) / this.cellMm, dx);
    const fy = clampIndex((y - this.origin[1]) / this.cellMm, dy);
    const fz = clampIndex((z - this.origin[2]) / this.cellMm, dz);
    const ix = Math.floor(fx);
    const iy = Math.floor(fy);
    const iz = Math.floor(fz);
    const sx = smooth(fx - ix);
    const sy = smooth(fy - iy);
    const sz = smooth(fz - iz);
    const v = this.values;
    const base = (iz * dy + iy) * dx + ix;
    const rowY = dx;
    const rowZ = dx * dy;
    const c00 = v[base]! + (v[base + 1]! - v[base]!) * sx;
    const c01 = v[base + rowY]! + (v[base + rowY + 1]! - v[base + rowY]!) * sx;
    const c10 = v[base + rowZ]! + (v[base + rowZ + 1]! - v[base + rowZ]!) * sx;
    const c11 = v[base + rowZ + rowY]! + (v[base + rowZ + rowY + 1]! - v[base + rowZ + rowY]!) * sx;
    const c0 = c00 + (c01 - c00) * sy;
    const c1 = c10 + (c11 - c10) * sy;
    return c0 + (c1 - c0) * sz;
  }
}

function smooth(f: number): number {
  return f * f * (3 - 2 * f);
}

function clampIndex(u: number, dim: number): number {
  return u < 0 ? 0 : u > dim - 1.000001 ? dim - 1.000001 : u;
}

/** HU -> Radiopaedia 0..255: window [-1250, 250], rescale, round. */
export function huToRadiopaedia(hu: number): number {
  const [low, high] = RADIOPAEDIA_WINDOW_HU;
  const clamped = hu < low ? low : hu > high ? high : hu;
  return Math.round(((clamped - low) * 255) / (high - low));
}

/** Radiopaedia 0..255 -> approximate HU. */
export function radiopaediaToHu(value: number): number {
  const [low, high] = RADIOPAEDIA_WINDOW_HU;
  return (value * (high - low)) / 255 + low;
}
