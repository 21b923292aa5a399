/**
 * NSCLC-like pleural effusion: fluid (0..20 HU) that settles in the dependent pleural space of a
 * supine patient, i.e. POSTERIOR (low world y in RAS) and at the lung BASES. In each slice below the
 * fluid top it fills the lung region up to a depth above the posterior chest wall, deepest next to
 * the spine and thinning laterally: a crescent. The fluid replaces lung, so the lung mask shrinks
 * (the lung is compressed) where the fluid is. One side in 65% of cases, both in the rest.
 */
import type { Rng } from '../core/index.js';
import { lungT, type Anatomy } from './anatomy.js';
import { smoothProfile } from './filters.js';
import { equivalentDiameterMm, voxelVolumeMl, type CaseGeometry } from './geometry.js';
import { LUNG_LABEL, TISSUE, type LesionRecord, type Side, type Vec3 } from './types.js';

export function drawEffusion(rng: Rng, geometry: CaseGeometry, anatomy: Anatomy, label: Uint8Array): LesionRecord[] {
  const first: Side = rng.bernoulli(0.5) ? 'left' : 'right';
  const sides: Side[] = rng.bernoulli(0.35) ? ['left', 'right'] : [first];
  const records: LesionRecord[] = [];
  for (const side of sides) {
    const depthMm = rng.uniform(25, 55);
    const topT = rng.uniform(0.35, 0.6);
    const fluidHu = rng.uniform(6, 14);
    records.push(fillSide(rng, geometry, anatomy, label, side, depthMm, topT, fluidHu));
  }
  return records;
}

function fillSide(
  rng: Rng,
  geometry: CaseGeometry,
  anatomy: Anatomy,
  label: Uint8Array,
  side: Side,
  depthMm: number,
  topT: number,
  fluidHu: number,
): LesionRecord {
  const [nz, ny, nx] = geometry.shape;
  const { worldX, worldY, worldZ } = geometry;
  const { cavityA, cavityB } = geometry.body;
  const { hu, tissues, lungs } = anatomy;
  const sideLabel = LUNG_LABEL[side];
  const texture = smoothProfile(rng, nx, Math.max(2, 20 / geometry.spacingMm[2]));
  let count = 0;
  const sum: Vec3 = [0, 0, 0];
  for (let k = 0; k < nz; k++) {
    const z = worldZ[k]!;
    const t = lungT(geometry, z);
    if (t >= topT) continue;
    const depthHere = depthMm * (t <= 0 ? 1 : (1 - t / topT) ** 0.6);
    for (let j = 0; j < ny; j++) {
      const y = worldY[j]!;
      const rowBase = (k * ny + j) * nx;
      for (let i = 0; i < nx; i++) {
        const n = rowBase + i;
        if (lungs[n] !== sideLabel) continue;
        const x = worldX[i]!;
        const u = x / cavityA;
        const across = u * u < 1 ? Math.sqrt(1 - u * u) : 0;
        const posteriorWallY = -cavityB * across;
        // Thickest next to the spine, thinning toward the lateral wall.
        const depth = depthHere * (0.35 + 0.65 * Math.sqrt(across));
        if (y - posteriorWallY > depth) continue;
        lungs[n] = 0;
        label[n] = 1;
        tissues[n] = TISSUE.fluid;
        hu[n] = fluidHu + 3 * texture[i]!;
        count++;
        sum[0] += x;
        sum[1] += y;
        sum[2] += z;
      }
    }
  }
  const volumeMl = count * voxelVolumeMl(geometry);
  const center: Vec3 = count > 0 ? [sum[0] / count, sum[1] / count, sum[2] / count] : [0, 0, 0];
  return {
    type: 'effusion',
    side,
    centerMm: [round2(center[0]), round2(center[1]), round2(center[2])],
    volumeMl: Math.round(volumeMl * 10000) / 10000,
    equivalentDiameterMm: round2(equivalentDiameterMm(volumeMl)),
  };
}

const round2 = (v: number): number => Math.round(v * 100) / 100;
