/**
 * The five lung lobes of a phantom, split from its lung mask by fissure-like surfaces (no random
 * draw, so adding them changes no other stage's sampling and no voxel of the CT, the lesion label
 * or the lung mask).
 *
 * Each lung is measured in its own frame: h = height above the lung's lowest slice over its height
 * (0 base, 1 apex) and a = how far anterior over its front-to-back depth (0 back, 1 front), from the
 * world coordinates of the lung's own voxels. The oblique fissure of either lung is the plane
 * h = 0.75 - 0.6 a: it runs from high at the back down to the diaphragm at the front, as the
 * oblique fissure does; voxels above it form the upper lobe (left) or the upper and middle lobes
 * (right), voxels on or below it the lower lobe. The right lung's horizontal fissure is h = 0.55 in
 * front of the oblique one: below it the middle lobe, above it the upper lobe.
 *
 * Values follow TotalSegmentator's five lobe names in LOBE_LABEL's order (1..5); 0 outside the lungs.
 */
import type { Shape3 } from '../core/index.js';
import { LUNG_LABEL } from './types.js';

/** Lobe label values of `Phantom.lobes`, named as TotalSegmentator names its lobe masks. */
export const LOBE_LABEL = {
  lung_upper_lobe_left: 1,
  lung_lower_lobe_left: 2,
  lung_upper_lobe_right: 3,
  lung_middle_lobe_right: 4,
  lung_lower_lobe_right: 5,
} as const;
export type SynthLobeName = keyof typeof LOBE_LABEL;

/** The oblique fissure: h = OBLIQUE.atBack + OBLIQUE.slope * a. */
export const OBLIQUE_FISSURE = { atBack: 0.75, slope: -0.6 } as const;
/** The right lung's horizontal fissure: h = HORIZONTAL_FISSURE_H. */
export const HORIZONTAL_FISSURE_H = 0.55;

/** Which lobe a voxel at height fraction h and anterior fraction a of its lung belongs to. */
export function lobeOf(side: 'left' | 'right', h: number, a: number): number {
  const aboveOblique = h > OBLIQUE_FISSURE.atBack + OBLIQUE_FISSURE.slope * a;
  if (side === 'left') return aboveOblique ? LOBE_LABEL.lung_upper_lobe_left : LOBE_LABEL.lung_lower_lobe_left;
  if (!aboveOblique) return LOBE_LABEL.lung_lower_lobe_right;
  return h > HORIZONTAL_FISSURE_H ? LOBE_LABEL.lung_upper_lobe_right : LOBE_LABEL.lung_middle_lobe_right;
}

/**
 * The lobe label map of a lung mask (LUNG_LABEL values) on a grid whose voxel (k, j, i) lies at
 * world y = worldY[j] (+ anterior) and z = worldZ[k] (+ superior).
 */
export function splitLobes(lungs: Uint8Array, shape: Shape3, worldY: ArrayLike<number>, worldZ: ArrayLike<number>): Uint8Array {
  const [nz, ny, nx] = shape;
  const sides = [
    { side: 'left' as const, value: LUNG_LABEL.left },
    { side: 'right' as const, value: LUNG_LABEL.right },
  ];
  const extent = sides.map(() => ({ yMin: Infinity, yMax: -Infinity, zMin: Infinity, zMax: -Infinity }));
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const s = sides.findIndex((entry) => entry.value === lungs[(k * ny + j) * nx + i]);
        if (s < 0) continue;
        const e = extent[s]!;
        const y = worldY[j]!;
        const z = worldZ[k]!;
        if (y < e.yMin) e.yMin = y;
        if (y > e.yMax) e.yMax = y;
        if (z < e.zMin) e.zMin = z;
        if (z > e.zMax) e.zMax = z;
      }
    }
  }
  const out = new Uint8Array(lungs.length);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const n = (k * ny + j) * nx + i;
        const s = sides.findIndex((entry) => entry.value === lungs[n]);
        if (s < 0) continue;
        const e = extent[s]!;
        const h = e.zMax > e.zMin ? (worldZ[k]! - e.zMin) / (e.zMax - e.zMin) : 0.5;
        const a = e.yMax > e.yMin ? (worldY[j]! - e.yMin) / (e.yMax - e.yMin) : 0.5;
        out[n] = lobeOf(sides[s]!.side, h, a);
      }
    }
  }
  return out;
}
