/**
 * Case geometry: grid shape and spacing per size preset, the affine, the world coordinate of every
 * grid line, and the sampled body / thorax dimensions that the anatomy is drawn from.
 *
 * Every size covers the same patient (same field of view); smaller sizes just use bigger voxels
 * (tiny = paper spacing x8 in-plane, small = x4). The affine is axis-aligned and stores the volume
 * in DICOM order, "LPS-like": voxel index i runs toward the patient's left (world x decreases),
 * j toward posterior (world y decreases), k toward superior; world coordinates are RAS+ mm, so
 * nibabel reports the orientation as ('L', 'P', 'S').
 */
import type { Affine, Rng, Shape3 } from '../core/index.js';
import type { SynthSize, Vec3 } from './types.js';

interface SizePreset {
  shape: Shape3;
  /** In-plane spacing factor relative to the paper preset's 0.6-0.8 mm. */
  inPlaneFactor: number;
  /** Scanner noise standard deviation, HU (bigger voxels average more photons). */
  noiseStdHu: number;
}

export const SIZE_PRESETS: Readonly<Record<SynthSize, SizePreset>> = {
  tiny: { shape: [32, 64, 64], inPlaneFactor: 8, noiseStdHu: 6 },
  small: { shape: [64, 128, 128], inPlaneFactor: 4, noiseStdHu: 10 },
  paper: { shape: [120, 512, 512], inPlaneFactor: 1, noiseStdHu: 18 },
};

/** Sampled body dimensions, mm (patient frame: x right, y anterior, z superior). */
export interface BodyDims {
  /** Skin ellipse semi-axes. */
  skinA: number;
  skinB: number;
  fatMm: number;
  muscleMm: number;
  /** Thickness of the rib layer between muscle and the pleural cavity. */
  ribMm: number;
  /** Pleural cavity ellipse semi-axes (inner border of the rib layer). */
  cavityA: number;
  cavityB: number;
  /** World z of the lowest lung point (posterior costophrenic recess) and lung height. */
  lungBaseZ: number;
  lungHeightMm: number;
}

export interface CaseGeometry {
  shape: Shape3;
  /** [sz, sy, sx] mm. */
  spacingMm: Shape3;
  affine: Affine;
  /** World coordinate of each grid line along x (length nx), y (ny) and z (nz), mm. */
  worldX: Float64Array;
  worldY: Float64Array;
  worldZ: Float64Array;
  body: BodyDims;
  noiseStdHu: number;
}

/** Sample the geometry of one case. Uses only `rng` (give it its own fork). */
export function sampleGeometry(rng: Rng, size: SynthSize): CaseGeometry {
  const preset = SIZE_PRESETS[size];
  const [nz, ny, nx] = preset.shape;
  const skinA = rng.uniform(150, 172);
  const skinB = rng.uniform(102, 122);
  // The scanner's field of view fits the patient: paper in-plane spacing 0.6-0.8 mm.
  const paperInPlane = Math.min(0.8, Math.max(rng.uniform(0.6, 0.8), (2 * skinA * 1.1) / 512));
  const inPlane = paperInPlane * preset.inPlaneFactor;
  // Cover the thorax plus some neck and upper abdomen: 300-340 mm; paper slices 2.5-2.8 mm.
  const coverageMm = rng.uniform(300, 340);
  const sliceMm = coverageMm / nz;
  const fatMm = rng.uniform(8, 22);
  const muscleMm = rng.uniform(9, 15);
  const ribMm = rng.uniform(9, 12);
  const cavityA = skinA - fatMm - muscleMm - ribMm;
  const cavityB = skinB - fatMm - muscleMm - ribMm;
  const tableZ = rng.uniform(-260, -140);
  const lungBaseZ = tableZ + coverageMm * rng.uniform(0.12, 0.17);
  const lungHeightMm = coverageMm * rng.uniform(0.7, 0.76);

  // Voxel (i, j, k) -> world: x = x0 - i*sx, y = y0 - j*sy, z = z0 + k*sz, centred in-plane.
  const x0 = ((nx - 1) / 2) * inPlane + rng.uniform(-5, 5);
  const y0 = ((ny - 1) / 2) * inPlane + rng.uniform(-5, 5);
  const affine: Affine = [
    [-inPlane, 0, 0, x0],
    [0, -inPlane, 0, y0],
    [0, 0, sliceMm, tableZ],
    [0, 0, 0, 1],
  ];
  const worldX = new Float64Array(nx);
  const worldY = new Float64Array(ny);
  const worldZ = new Float64Array(nz);
  for (let i = 0; i < nx; i++) worldX[i] = x0 - i * inPlane;
  for (let j = 0; j < ny; j++) worldY[j] = y0 - j * inPlane;
  for (let k = 0; k < nz; k++) worldZ[k] = tableZ + k * sliceMm;
  return {
    shape: [nz, ny, nx],
    spacingMm: [sliceMm, inPlane, inPlane],
    affine,
    worldX,
    worldY,
    worldZ,
    body: { skinA, skinB, fatMm, muscleMm, ribMm, cavityA, cavityB, lungBaseZ, lungHeightMm },
    noiseStdHu: preset.noiseStdHu,
  };
}

/** Voxel volume in mL. */
export function voxelVolumeMl(geometry: CaseGeometry): number {
  const [sz, sy, sx] = geometry.spacingMm;
  return (sz * sy * sx) / 1000;
}

/** Diameter (mm) of the sphere with volume `volumeMl`. */
export function equivalentDiameterMm(volumeMl: number): number {
  return Math.cbrt((6 * volumeMl * 1000) / Math.PI);
}

/** World RAS mm of a (fractional) voxel index given in array order [k, j, i]. */
export function indexToWorld(affine: Affine, k: number, j: number, i: number): Vec3 {
  const out: Vec3 = [0, 0, 0];
  for (let r = 0; r < 3; r++) {
    const row = affine[r]!;
    out[r] = row[0] * i + row[1] * j + row[2] * k + row[3];
  }
  return out;
}

/** Fractional voxel index [k, j, i] of world (x, y, z) mm (the affine is axis-aligned). */
export function worldToIndex(geometry: CaseGeometry, x: number, y: number, z: number): Vec3 {
  const a = geometry.affine;
  return [(z - a[2][3]) / a[2][2], (y - a[1][3]) / a[1][1], (x - a[0][3]) / a[0][0]];
}

/** Flat offset of the voxel nearest to world (x, y, z), or -1 outside the grid. */
export function worldToOffset(geometry: CaseGeometry, x: number, y: number, z: number): number {
  const [nz, ny, nx] = geometry.shape;
  const [kf, jf, if_] = worldToIndex(geometry, x, y, z);
  const k = Math.round(kf);
  const j = Math.round(jf);
  const i = Math.round(if_);
  if (k < 0 || k >= nz || j < 0 || j >= ny || i < 0 || i >= nx) return -1;
  return (k * ny + j) * nx + i;
}

/** Inclusive, clamped voxel box covering the world box [minMm, maxMm]; empty when k0 > k1 etc. */
export interface VoxelBox {
  k0: number;
  k1: number;
  j0: number;
  j1: number;
  i0: number;
  i1: number;
}

export function voxelBox(geometry: CaseGeometry, minMm: Vec3, maxMm: Vec3): VoxelBox {
  const [nz, ny, nx] = geometry.shape;
  const a = worldToIndex(geometry, minMm[0], minMm[1], minMm[2]);
  const b = worldToIndex(geometry, maxMm[0], maxMm[1], maxMm[2]);
  const range = (p: number, q: number, n: number): [number, number] => [
    Math.max(0, Math.ceil(Math.min(p, q))),
    Math.min(n - 1, Math.floor(Math.max(p, q))),
  ];
  const [k0, k1] = range(a[0], b[0], nz);
  const [j0, j1] = range(a[1], b[1], ny);
  const [i0, i1] = range(a[2], b[2], nx);
  return { k0, k1, j0, j1, i0, i1 };
}
