/**
 * The healthy thorax, drawn slice by slice from analytic shapes in world mm: skin, subcutaneous
 * fat, chest-wall muscle, ribs, sternum and spine, the pleural cavity with two lungs, the
 * mediastinum (trachea, descending aorta), the heart, and the diaphragm domes with the upper
 * abdomen below them. Writes base HU (with smooth texture), tissue codes and left/right lung labels.
 *
 * Lung height is normalised as t = (z - lungBaseZ) / lungHeightMm: 0 at the posterior
 * costophrenic recess, 1 at the apex.
 */
import type { Rng } from '../core/index.js';
import { smoothProfile } from './filters.js';
import type { CaseGeometry } from './geometry.js';
import { LUNG_LABEL, TISSUE, type Vec3 } from './types.js';

export interface AnatomyParams {
  heartCenter: Vec3;
  heartRadii: Vec3;
  /** Dome height above lungBaseZ, mm. */
  domeLeftMm: number;
  domeRightMm: number;
  spineY: number;
  spineRadius: number;
  /** Normalised lung height of the hila. */
  hilumT: number;
  hilum: { left: Vec3; right: Vec3 };
  lungHu: number;
  trachea: { x: number; y: number; radius: number; fromZ: number };
  aorta: { x: number; y: number; radius: number };
  /** Rib pattern along z. */
  ribPeriodMm: number;
  ribPhaseMm: number;
  ribSlopeMm: number;
}

export interface Anatomy {
  params: AnatomyParams;
  /** Float HU before lesions, blur and noise, array order [z, y, x]. */
  hu: Float32Array;
  tissues: Uint8Array;
  /** 0 / LUNG_LABEL.left / LUNG_LABEL.right. */
  lungs: Uint8Array;
}

/** Normalised lung height of world z. */
export function lungT(geometry: CaseGeometry, z: number): number {
  return (z - geometry.body.lungBaseZ) / geometry.body.lungHeightMm;
}

/** Half-width (|x|, mm) of the mediastinum between the lungs at height t and depth y. */
export function mediastinumHalfWidth(geometry: CaseGeometry, params: AnatomyParams, y: number, t: number): number {
  const { cavityB } = geometry.body;
  let half = 13 + 16 * Math.exp(-(((t - params.hilumT) / 0.16) ** 2));
  if (y > cavityB * 0.35) half *= 0.6; // anterior junction: the lungs nearly meet in front
  if (y < params.spineY + params.spineRadius + 18) half = Math.max(half, params.spineRadius + 9);
  if (t > 0.8) half = Math.max(half, 17);
  return half;
}

/** Lung cross-section scale at height t: 1 below t = 0.68, closing to 0 at the apex. */
function apexScale(t: number): number {
  if (t <= 0.68) return 1;
  const u = (t - 0.68) / 0.32;
  return u >= 1 ? 0 : Math.sqrt(1 - u * u);
}

/** World z of the diaphragm surface at (x, y) (lungs lie above it). */
export function domeZ(geometry: CaseGeometry, params: AnatomyParams, x: number, y: number): number {
  const { cavityA, cavityB, lungBaseZ } = geometry.body;
  const height = x < 0 ? params.domeLeftMm : params.domeRightMm;
  const u = (Math.abs(x) - cavityA * 0.42) / (cavityA * 0.62);
  const v = (y - cavityB * 0.1) / (cavityB * 1.02);
  const shape = 1 - u * u - v * v;
  return lungBaseZ + height * (shape > 0 ? shape : 0);
}

export function sampleAnatomyParams(rng: Rng, geometry: CaseGeometry): AnatomyParams {
  const { cavityB, lungBaseZ, lungHeightMm } = geometry.body;
  const domeRightMm = rng.uniform(50, 68);
  const domeLeftMm = domeRightMm - rng.uniform(8, 18);
  const spineRadius = rng.uniform(15, 19);
  const spineY = -cavityB + spineRadius * 0.35;
  const hilumT = rng.uniform(0.5, 0.6);
  const heartRadii: Vec3 = [rng.uniform(52, 62), rng.uniform(42, 52), rng.uniform(48, 58)];
  const heartCenter: Vec3 = [
    -rng.uniform(15, 30),
    rng.uniform(8, 24),
    lungBaseZ + domeLeftMm * 0.55 + heartRadii[2] * 0.75,
  ];
  const params: AnatomyParams = {
    heartCenter,
    heartRadii,
    domeLeftMm,
    domeRightMm,
    spineY,
    spineRadius,
    hilumT,
    hilum: { left: [0, 0, 0], right: [0, 0, 0] },
    lungHu: rng.uniform(-865, -830),
    trachea: { x: 0, y: spineY + spineRadius + 20, radius: rng.uniform(8, 10), fromZ: lungBaseZ + (hilumT + 0.06) * lungHeightMm },
    aorta: { x: -(spineRadius + 14), y: spineY + 6, radius: rng.uniform(11, 14) },
    ribPeriodMm: rng.uniform(24, 30),
    ribPhaseMm: rng.uniform(0, 30),
    ribSlopeMm: rng.uniform(20, 35),
  };
  const hilumY = rng.uniform(-cavityB * 0.15, cavityB * 0.05);
  const hilumZ = lungBaseZ + hilumT * lungHeightMm;
  const hilumHalf = mediastinumHalfWidth(geometry, params, hilumY, hilumT) + 4;
  params.hilum = { left: [-hilumHalf, hilumY, hilumZ], right: [hilumHalf, hilumY, hilumZ] };
  return params;
}

/** Draw the healthy thorax. */
export function drawAnatomy(rng: Rng, geometry: CaseGeometry, params: AnatomyParams): Anatomy {
  const [nz, ny, nx] = geometry.shape;
  const { worldX, worldY, worldZ } = geometry;
  const { skinA, skinB, fatMm, muscleMm, cavityA, cavityB } = geometry.body;
  const total = nz * ny * nx;
  const hu = new Float32Array(total);
  const tissues = new Uint8Array(total);
  const lungs = new Uint8Array(total);
  // Smooth per-axis texture: cheap (separable) but breaks the flatness of every tissue.
  const inPlane = geometry.spacingMm[1];
  const textureX = smoothProfile(rng, nx, Math.max(2, 25 / inPlane));
  const textureY = smoothProfile(rng, ny, Math.max(2, 25 / inPlane));
  const textureZ = smoothProfile(rng, nz, Math.max(2, 25 / geometry.spacingMm[0]));
  const { heartCenter: hc, heartRadii: hr, spineY, spineRadius, trachea, aorta } = params;
  const fatA = skinA - fatMm;
  const fatB = skinB - fatMm;
  const muscleA = fatA - muscleMm;
  const muscleB = fatB - muscleMm;
  const ribWidth = 0.38;

  for (let k = 0; k < nz; k++) {
    const z = worldZ[k]!;
    const t = lungT(geometry, z);
    const scale = apexScale(t);
    const lungA = cavityA * scale;
    const lungB = cavityB * scale;
    const inCage = t > -0.2 && t < 1.08;
    const tz = textureZ[k]!;
    const dzHeart = (z - hc[2]) / hr[2];
    for (let j = 0; j < ny; j++) {
      const y = worldY[j]!;
      const skinHalf = halfWidth(skinA, skinB, y);
      const rowBase = (k * ny + j) * nx;
      if (skinHalf <= 0) {
        for (let i = 0; i < nx; i++) hu[rowBase + i] = -1000;
        continue;
      }
      const fatHalf = halfWidth(fatA, fatB, y);
      const muscleHalf = halfWidth(muscleA, muscleB, y);
      const cavityHalf = halfWidth(cavityA, cavityB, y);
      const lungHalf = lungA > 0 ? halfWidth(lungA, lungB, y) : 0;
      const mediastinumHalf = mediastinumHalfWidth(geometry, params, y, t);
      const tyz = textureY[j]! + tz;
      const dependent = (cavityB - y) / (2 * cavityB); // 0 anterior .. 1 posterior
      const ribPhase = (z - params.ribPhaseMm + params.ribSlopeMm * (y / cavityB)) / params.ribPeriodMm;
      const ribFrac = ribPhase - Math.floor(ribPhase);
      const dyHeart = (y - hc[1]) / hr[1];
      const spineDy = y - spineY;
      for (let i = 0; i < nx; i++) {
        const x = worldX[i]!;
        const ax = x < 0 ? -x : x;
        const n = rowBase + i;
        const texture = textureX[i]! + tyz;
        if (ax >= skinHalf) {
          hu[n] = -1000;
          continue;
        }
        let tissue: number = TISSUE.muscle;
        let value = 40 + 4 * texture;
        const inSpineBody = x * x + spineDy * spineDy < spineRadius * spineRadius;
        const inSpinousProcess = ax < 6 && spineDy < -spineRadius + 2 && spineDy > -spineRadius - 38;
        if (ax < fatHalf && (inSpineBody || inSpinousProcess)) {
          tissue = TISSUE.bone;
          const rim = inSpineBody ? Math.sqrt(x * x + spineDy * spineDy) / spineRadius : 0;
          value = rim > 0.85 ? 950 : 340 + 10 * texture;
        } else if (ax >= fatHalf) {
          tissue = TISSUE.fat;
          value = -85 + 5 * texture;
        } else if (ax >= muscleHalf) {
          tissue = TISSUE.muscle;
        } else if (ax >= cavityHalf) {
          const sternum = ax < 14 && y > 0 && t > 0.3 && t < 1.05;
          if (inCage && (sternum || (ribFrac < ribWidth && !(y > 0 && ax < 28)))) {
            tissue = TISSUE.bone;
            const edge = Math.abs((2 * ribFrac) / ribWidth - 1);
            value = sternum ? 420 + 10 * texture : 380 + 520 * edge * edge;
          }
        } else if (z < domeZ(geometry, params, x, y) || t < 0) {
          tissue = TISSUE.abdomen;
          value = (x > 0 ? 56 : 42) + 3 * texture; // liver on the right, spleen / stomach wall left
        } else if (ax >= lungHalf || t > 1) {
          tissue = TISSUE.muscle;
        } else {
          const dxHeart = (x - hc[0]) / hr[0];
          const dxTrachea = x - trachea.x;
          const dyTrachea = y - trachea.y;
          const dxAorta = x - aorta.x;
          const dyAorta = y - aorta.y;
          if (z > trachea.fromZ && dxTrachea * dxTrachea + dyTrachea * dyTrachea < trachea.radius * trachea.radius) {
            tissue = TISSUE.airway;
            value = -990;
          } else if (dxHeart * dxHeart + dyHeart * dyHeart + dzHeart * dzHeart < 1) {
            tissue = TISSUE.heart;
            value = 45 + 2 * texture;
          } else if (ax < mediastinumHalf || dxAorta * dxAorta + dyAorta * dyAorta < aorta.radius * aorta.radius) {
            tissue = TISSUE.mediastinum;
            value = 40 + 3 * texture;
          } else {
            tissue = TISSUE.lung;
            value = params.lungHu + 50 * dependent * dependent + 10 * texture;
            lungs[n] = x < 0 ? LUNG_LABEL.left : LUNG_LABEL.right;
          }
        }
        tissues[n] = tissue;
        hu[n] = value;
      }
    }
  }
  return { params, hu, tissues, lungs };
}

/** Half-width of an ellipse with semi-axes (a, b) at height y; 0 outside. */
function halfWidth(a: number, b: number, y: number): number {
  const u = y / b;
  return u >= 1 || u <= -1 ? 0 : a * Math.sqrt(1 - u * u);
}
