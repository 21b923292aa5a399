/**
 * Pulmonary vessels: per lung, a few trees grown from the hilum by repeated bifurcation into
 * tapering tubes (each child thinner and shorter, turned 20-40 degrees), drawn only inside the
 * lung with a partial-volume edge so that vessels thinner than a voxel still show faintly.
 */
import type { Rng } from '../core/index.js';
import type { Anatomy } from './anatomy.js';
import { voxelBox, worldToOffset, type CaseGeometry } from './geometry.js';
import { TISSUE, type Side, type Vec3 } from './types.js';

export interface VesselSegment {
  start: Vec3;
  end: Vec3;
  startRadiusMm: number;
  endRadiusMm: number;
}

const VESSEL_HU = 40;
const MAX_SEGMENTS_PER_TREE = 300;

/** Grow the vessel trees of both lungs (pure: uses rng and the lung mask only). */
export function growVessels(rng: Rng, geometry: CaseGeometry, anatomy: Anatomy): VesselSegment[] {
  const inPlane = geometry.spacingMm[1];
  const minRadiusMm = Math.max(0.8, 0.3 * inPlane);
  const segments: VesselSegment[] = [];
  for (const side of ['left', 'right'] as Side[]) {
    const lateral = side === 'left' ? -1 : 1;
    const hilum = anatomy.params.hilum[side];
    // Root directions: up, down, front and back-down, all leaning lateral.
    const roots: Vec3[] = [
      [lateral * 0.6, 0.1, 0.8],
      [lateral * 0.55, -0.2, -0.8],
      [lateral * 0.6, 0.75, -0.2],
      [lateral * 0.55, -0.7, -0.45],
      [lateral * 0.9, 0.3, 0.3],
      [lateral * 0.9, -0.4, -0.1],
    ];
    for (const root of roots) {
      const direction = normalize(jitter(rng, root, 0.15));
      let budget = MAX_SEGMENTS_PER_TREE;
      const stack: { start: Vec3; direction: Vec3; radius: number; length: number }[] = [
        { start: hilum, direction, radius: rng.uniform(4.5, 6), length: rng.uniform(25, 35) },
      ];
      while (stack.length > 0 && budget > 0) {
        const branch = stack.pop()!;
        budget--;
        const endRadius = branch.radius * rng.uniform(0.88, 0.95);
        const end = add(branch.start, scale(branch.direction, branch.length));
        segments.push({ start: branch.start, end, startRadiusMm: branch.radius, endRadiusMm: endRadius });
        const childRadius = endRadius * rng.uniform(0.78, 0.88);
        const endOffset = worldToOffset(geometry, end[0], end[1], end[2]);
        if (childRadius < minRadiusMm || endOffset < 0 || anatomy.lungs[endOffset] === 0) continue;
        const axis = normalize(cross(branch.direction, randomUnit(rng)));
        const angle = rng.uniform(20, 40) * (Math.PI / 180);
        for (const sign of [1, -1]) {
          stack.push({
            start: end,
            direction: rotate(branch.direction, axis, sign * angle * rng.uniform(0.7, 1.1)),
            radius: childRadius,
            length: branch.length * rng.uniform(0.7, 0.85),
          });
        }
      }
    }
  }
  return segments;
}

/** Draw segments into the lung: HU blended by coverage, tissue VESSEL where coverage >= 0.5. */
export function drawVessels(geometry: CaseGeometry, anatomy: Anatomy, segments: readonly VesselSegment[]): void {
  const [, ny, nx] = geometry.shape;
  const { worldX, worldY, worldZ } = geometry;
  const { hu, tissues, lungs } = anatomy;
  const voxelMm = geometry.spacingMm[1];
  for (const segment of segments) {
    const { start: a, end: b } = segment;
    const pad = Math.max(segment.startRadiusMm, segment.endRadiusMm) + voxelMm;
    const box = voxelBox(
      geometry,
      [Math.min(a[0], b[0]) - pad, Math.min(a[1], b[1]) - pad, Math.min(a[2], b[2]) - pad],
      [Math.max(a[0], b[0]) + pad, Math.max(a[1], b[1]) + pad, Math.max(a[2], b[2]) + pad],
    );
    const d: Vec3 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    const lengthSquared = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
    for (let k = box.k0; k <= box.k1; k++) {
      const pz = worldZ[k]! - a[2];
      for (let j = box.j0; j <= box.j1; j++) {
        const py = worldY[j]! - a[1];
        const rowBase = (k * ny + j) * nx;
        for (let i = box.i0; i <= box.i1; i++) {
          const n = rowBase + i;
          if (lungs[n] === 0) continue;
          const px = worldX[i]! - a[0];
          let s = (px * d[0] + py * d[1] + pz * d[2]) / lengthSquared;
          s = s < 0 ? 0 : s > 1 ? 1 : s;
          const ex = px - s * d[0];
          const ey = py - s * d[1];
          const ez = pz - s * d[2];
          const distance = Math.sqrt(ex * ex + ey * ey + ez * ez);
          const radius = segment.startRadiusMm + (segment.endRadiusMm - segment.startRadiusMm) * s;
          let coverage = (radius - distance) / voxelMm + 0.5;
          if (coverage <= 0) continue;
          if (coverage > 1) coverage = 1;
          const blended = hu[n]! + (VESSEL_HU - hu[n]!) * coverage;
          if (blended > hu[n]!) hu[n] = blended;
          if (coverage >= 0.5) tissues[n] = TISSUE.vessel;
        }
      }
    }
  }
}

function add(a: Vec3, b: Vec3): Vec3 {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}

function scale(a: Vec3, s: number): Vec3 {
  return [a[0] * s, a[1] * s, a[2] * s];
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function normalize(a: Vec3): Vec3 {
  const length = Math.hypot(a[0], a[1], a[2]) || 1;
  return [a[0] / length, a[1] / length, a[2] / length];
}

function jitter(rng: Rng, a: Vec3, amount: number): Vec3 {
  return [a[0] + rng.normal(0, amount), a[1] + rng.normal(0, amount), a[2] + rng.normal(0, amount)];
}

export function randomUnit(rng: Rng): Vec3 {
  return normalize([rng.normal(), rng.normal(), rng.normal()]);
}

/** Rotate v about the unit axis by angle (Rodrigues). */
function rotate(v: Vec3, axis: Vec3, angle: number): Vec3 {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const k = axis;
  const kv = cross(k, v);
  const dot = k[0] * v[0] + k[1] * v[1] + k[2] * v[2];
  return normalize([
    v[0] * c + kv[0] * s + k[0] * dot * (1 - c),
    v[1] * c + kv[1] * s + k[1] * dot * (1 - c),
    v[2] * c + kv[2] * s + k[2] * dot * (1 - c),
  ]);
}
