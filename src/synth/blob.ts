/**
 * One lesion shape drawn as a "blob": an ellipsoid envelope, optionally lobulated (radial bumps
 * toward a few random directions) and roughened by thresholded lattice noise, clipped to the
 * voxels a lesion may occupy. Rasterising returns the voxels and their HU without touching the
 * volume, so a caller can check the size and redraw before committing.
 */
import type { Rng } from '../core/index.js';
import { ValueNoise } from './filters.js';
import { voxelBox, type CaseGeometry } from './geometry.js';
import type { Vec3 } from './types.js';
import { randomUnit } from './vessels.js';

export interface BlobSpec {
  center: Vec3;
  /** Envelope semi-axes, mm [x, y, z]. */
  radiiMm: Vec3;
  /** Lobes: unit directions and relative bump amplitudes (0 = plain ellipsoid). */
  lobeDirections: Vec3[];
  lobeAmplitudes: number[];
  /** Inside where 1 - d^2 + noiseAmplitude * (noise - 0.5) > threshold (d = normalised radius). */
  noiseAmplitude: number;
  threshold: number;
  /** HU = baseHu + textureHu * (noise - 0.5); voxels with f > coreThreshold get coreHu instead. */
  baseHu: number;
  textureHu: number;
  coreThreshold: number;
  coreHu: number;
}

export interface RasterizedBlob {
  offsets: Int32Array;
  hu: Float32Array;
}

/** Random lobes: `count` directions with amplitudes in [low, high]. */
export function sampleLobes(rng: Rng, count: number, low: number, high: number): Pick<BlobSpec, 'lobeDirections' | 'lobeAmplitudes'> {
  const lobeDirections: Vec3[] = [];
  const lobeAmplitudes: number[] = [];
  for (let n = 0; n < count; n++) {
    lobeDirections.push(randomUnit(rng));
    lobeAmplitudes.push(rng.uniform(low, high));
  }
  return { lobeDirections, lobeAmplitudes };
}

/**
 * Voxels of the blob where `allowed[offset]` is non-zero. `noise` supplies the shape noise and
 * `texture` the HU texture; both are sampled in world mm.
 */
export function rasterizeBlob(
  geometry: CaseGeometry,
  spec: BlobSpec,
  allowed: Uint8Array,
  noise: ValueNoise,
  texture: ValueNoise,
): RasterizedBlob {
  const [, ny, nx] = geometry.shape;
  const { worldX, worldY, worldZ } = geometry;
  const [cx, cy, cz] = spec.center;
  const [rx, ry, rz] = spec.radiiMm;
  const maxLobe = spec.lobeAmplitudes.reduce((a, b) => a + b, 0);
  const reach = 1 + maxLobe + spec.noiseAmplitude;
  const box = voxelBox(
    geometry,
    [cx - rx * reach, cy - ry * reach, cz - rz * reach],
    [cx + rx * reach, cy + ry * reach, cz + rz * reach],
  );
  const offsets: number[] = [];
  const values: number[] = [];
  const lobeCount = spec.lobeDirections.length;
  for (let k = box.k0; k <= box.k1; k++) {
    const z = worldZ[k]!;
    const uz = (z - cz) / rz;
    for (let j = box.j0; j <= box.j1; j++) {
      const y = worldY[j]!;
      const uy = (y - cy) / ry;
      const rowBase = (k * ny + j) * nx;
      for (let i = box.i0; i <= box.i1; i++) {
        const n = rowBase + i;
        if (allowed[n] === 0) continue;
        const x = worldX[i]!;
        const ux = (x - cx) / rx;
        const d2 = ux * ux + uy * uy + uz * uz;
        if (d2 > reach * reach) continue;
        let radiusFactor = 1;
        if (lobeCount > 0 && d2 > 0) {
          const d = Math.sqrt(d2);
          for (let l = 0; l < lobeCount; l++) {
            const u = spec.lobeDirections[l]!;
            const cosine = (ux * u[0] + uy * u[1] + uz * u[2]) / d;
            if (cosine > 0) radiusFactor += spec.lobeAmplitudes[l]! * cosine ** 4;
          }
        }
        let f = 1 - d2 / (radiusFactor * radiusFactor);
        if (spec.noiseAmplitude > 0) f += spec.noiseAmplitude * (noise.at(x, y, z) - 0.5);
        if (f <= spec.threshold) continue;
        offsets.push(n);
        values.push(f > spec.coreThreshold ? spec.coreHu + 0.5 * spec.textureHu * (texture.at(x, y, z) - 0.5) : spec.baseHu + spec.textureHu * (texture.at(x, y, z) - 0.5));
      }
    }
  }
  return { offsets: Int32Array.from(offsets), hu: Float32Array.from(values) };
}

/** Noise fields covering the blob's reach, with `cellMm` cells. */
export function blobNoise(rng: Rng, spec: BlobSpec, cellMm: number): ValueNoise {
  const reach = 1 + spec.lobeAmplitudes.reduce((a, b) => a + b, 0) + spec.noiseAmplitude;
  const [cx, cy, cz] = spec.center;
  const [rx, ry, rz] = spec.radiiMm;
  return new ValueNoise(rng, [cx - rx * reach, cy - ry * reach, cz - rz * reach], [cx + rx * reach, cy + ry * reach, cz + rz * reach], cellMm);
}
