/**
 * The lesion kinds drawn into a healthy thorax:
 * - covid: 3-8 bilateral ground-glass opacities (-700..-300 HU), mostly peripheral (subpleural) and
 *   in the lower lungs, patchy (noise-thresholded ellipsoids clipped to the lung), some with a
 *   consolidated core (-100..40 HU);
 * - tumor: one solid lobulated nodule or mass (0..60 HU), equivalent diameter 1-5 cm, inside a lung;
 * - gtv: one larger irregular mass (4.5-8 cm) at a hilum that reaches into the mediastinum;
 * - effusion: see effusion.ts.
 */
import { Rng } from '../core/index.js';
import type { Anatomy } from './anatomy.js';
import { blobNoise, rasterizeBlob, sampleLobes, type BlobSpec, type RasterizedBlob } from './blob.js';
import { drawEffusion } from './effusion.js';
import { equivalentDiameterMm, voxelVolumeMl, worldToOffset, type CaseGeometry } from './geometry.js';
import { LUNG_LABEL, TISSUE, type LesionKind, type LesionRecord, type Side, type Vec3 } from './types.js';

/** Draw the lesions of `kind` into `anatomy` (HU, tissues, lungs) and `label`; returns their records. */
export function drawLesions(kind: LesionKind, rng: Rng, geometry: CaseGeometry, anatomy: Anatomy, label: Uint8Array): LesionRecord[] {
  switch (kind) {
    case 'covid':
      return drawCovid(rng, geometry, anatomy, label);
    case 'tumor':
      return [drawTumor(rng, geometry, anatomy, label)];
    case 'gtv':
      return [drawGtv(rng, geometry, anatomy, label)];
    case 'effusion':
      return drawEffusion(rng, geometry, anatomy, label);
  }
}

function drawCovid(rng: Rng, geometry: CaseGeometry, anatomy: Anatomy, label: Uint8Array): LesionRecord[] {
  const count = rng.int(3, 9);
  const records: LesionRecord[] = [];
  for (let n = 0; n < count; n++) {
    // The first two lesions guarantee bilateral disease; the rest pick a side at random.
    const side: Side = n === 0 ? 'left' : n === 1 ? 'right' : rng.bernoulli(0.5) ? 'left' : 'right';
    const peripheral = rng.bernoulli(0.8);
    const center = sampleLungPoint(rng, geometry, anatomy, side, {
      lowT: 0.04,
      highT: 0.9,
      lowerBias: 1.8,
      minRelativeRadius: peripheral ? 0.72 : 0,
    });
    if (center === null) continue;
    const consolidated = rng.bernoulli(0.4);
    const spec: BlobSpec = {
      center,
      radiiMm: [rng.uniform(12, 30), rng.uniform(12, 30), rng.uniform(14, 36)],
      lobeDirections: [],
      lobeAmplitudes: [],
      noiseAmplitude: 1.1,
      threshold: 0.2,
      baseHu: rng.uniform(-620, -430),
      textureHu: 220,
      coreThreshold: consolidated ? 0.75 : Infinity,
      coreHu: rng.uniform(-60, 10),
    };
    const blob = rasterizeBlob(geometry, spec, anatomy.lungs, blobNoise(rng, spec, 9), blobNoise(rng, spec, 6));
    const voxels = commit(anatomy, label, blob, { keepBrighter: true, clampHu: [-700, 40] });
    records.push(record(geometry, consolidated ? 'ggo+consolidation' : 'ggo', side, center, voxels));
  }
  return records;
}

function drawTumor(rng: Rng, geometry: CaseGeometry, anatomy: Anatomy, label: Uint8Array): LesionRecord {
  const side: Side = rng.bernoulli(0.5) ? 'left' : 'right';
  let radius = rng.uniform(8, 21);
  let center: Vec3 | null = null;
  // Find a lung point with room for the nodule; shrink it if the lung has none.
  while (center === null) {
    center = sampleLungPoint(rng, geometry, anatomy, side, { lowT: 0.2, highT: 0.85, lowerBias: 1, minRelativeRadius: 0, clearanceMm: radius * 1.35 });
    if (center === null) radius *= 0.85;
    if (radius < 5) throw new Error('synth: no room for a tumour in the lung (phantom geometry bug)');
  }
  const lobes = sampleLobes(rng, rng.int(3, 6), 0.08, 0.22);
  const aspectY = rng.uniform(0.85, 1.15);
  const aspectZ = rng.uniform(0.85, 1.15);
  const baseHu = rng.uniform(22, 40);
  const spec = (r: number): BlobSpec => ({
    center: center!,
    radiiMm: [r, r * aspectY, r * aspectZ],
    ...lobes,
    noiseAmplitude: 0.15,
    threshold: 0,
    baseHu,
    textureHu: 25,
    coreThreshold: Infinity,
    coreHu: 0,
  });
  const blob = drawSized(rng, geometry, spec, radius, anatomy.lungs, [11, 49]);
  const voxels = commit(anatomy, label, blob, { keepBrighter: false, clampHu: [0, 60] });
  return record(geometry, 'nodule', side, center, voxels);
}

function drawGtv(rng: Rng, geometry: CaseGeometry, anatomy: Anatomy, label: Uint8Array): LesionRecord {
  const side: Side = rng.bernoulli(0.5) ? 'left' : 'right';
  const lateral = side === 'left' ? -1 : 1;
  const radius = rng.uniform(22, 36);
  const hilum = anatomy.params.hilum[side];
  const center: Vec3 = [hilum[0] + lateral * radius * rng.uniform(0.35, 0.6), hilum[1] + rng.uniform(-10, 10), hilum[2] + rng.uniform(-15, 15)];
  // The mass may grow from the lung into the mediastinum (not into heart, bone or the wall).
  const allowed = new Uint8Array(anatomy.tissues.length);
  for (let n = 0; n < allowed.length; n++) {
    const tissue = anatomy.tissues[n]!;
    allowed[n] = anatomy.lungs[n] !== 0 || tissue === TISSUE.mediastinum ? 1 : 0;
  }
  const lobes = sampleLobes(rng, rng.int(3, 7), 0.12, 0.3);
  const aspectY = rng.uniform(0.8, 1.1);
  const aspectZ = rng.uniform(0.9, 1.3);
  const baseHu = rng.uniform(30, 45);
  const spec = (r: number): BlobSpec => ({
    center,
    radiiMm: [r, r * aspectY, r * aspectZ],
    ...lobes,
    noiseAmplitude: 0.35,
    threshold: 0,
    baseHu,
    textureHu: 25,
    coreThreshold: Infinity,
    coreHu: 0,
  });
  const blob = drawSized(rng, geometry, spec, radius, allowed, [35, 95]);
  const voxels = commit(anatomy, label, blob, { keepBrighter: false, clampHu: [0, 60] });
  return record(geometry, 'central-mass', side, center, voxels);
}

/** Rasterise, then rescale and redraw (up to 4 times) until the equivalent diameter is in range. */
function drawSized(
  rng: Rng,
  geometry: CaseGeometry,
  spec: (radiusMm: number) => BlobSpec,
  radiusMm: number,
  allowed: Uint8Array,
  diameterRangeMm: [number, number],
): RasterizedBlob {
  const shapeRng = rng.fork('shape');
  let radius = radiusMm;
  let blob: RasterizedBlob | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    // The same noise fields on every attempt, so only the size changes.
    const attemptRng = new Rng(shapeRng.getState());
    const current = spec(radius);
    blob = rasterizeBlob(geometry, current, allowed, blobNoise(attemptRng, current, 10), blobNoise(attemptRng, current, 7));
    const diameter = equivalentDiameterMm(blob.offsets.length * voxelVolumeMl(geometry));
    const [low, high] = diameterRangeMm;
    if (diameter >= low && diameter <= high) break;
    const target = (low + high) / 2;
    radius *= diameter > 0 ? Math.min(2, Math.max(0.5, target / diameter)) : 1.5;
  }
  return blob!;
}

interface CommitOptions {
  /** covid: overlapping lesions and vessels keep the brighter value. */
  keepBrighter: boolean;
  clampHu: [number, number];
}

/** Write a blob into label, tissues and HU; returns the number of newly labelled voxels. */
function commit(anatomy: Anatomy, label: Uint8Array, blob: RasterizedBlob, options: CommitOptions): number {
  const { hu, tissues } = anatomy;
  const [low, high] = options.clampHu;
  let added = 0;
  for (let m = 0; m < blob.offsets.length; m++) {
    const n = blob.offsets[m]!;
    let value = blob.hu[m]!;
    value = value < low ? low : value > high ? high : value;
    if (label[n] === 0) added++;
    label[n] = 1;
    hu[n] = options.keepBrighter && hu[n]! > value ? hu[n]! : value;
    tissues[n] = TISSUE.lesion;
  }
  return added;
}

function record(geometry: CaseGeometry, type: string, side: Side, center: Vec3, voxels: number): LesionRecord {
  const volumeMl = voxels * voxelVolumeMl(geometry);
  return {
    type,
    side,
    centerMm: [round2(center[0]), round2(center[1]), round2(center[2])],
    volumeMl: round4(volumeMl),
    equivalentDiameterMm: round2(equivalentDiameterMm(volumeMl)),
  };
}

const round2 = (v: number): number => Math.round(v * 100) / 100;
const round4 = (v: number): number => Math.round(v * 10000) / 10000;

interface LungPointOptions {
  lowT: number;
  highT: number;
  /** > 1 favours low (basal) points: t = lowT + (highT - lowT) * u^lowerBias. */
  lowerBias: number;
  /** Minimum of sqrt((x/cavityA)^2 + (y/cavityB)^2): 0.72 keeps points near the chest wall. */
  minRelativeRadius: number;
  /** Points this far (mm) along the 3 axes and 8 diagonals must be lung too. */
  clearanceMm?: number;
}

/** A random point inside the `side` lung, or null after 400 tries. */
function sampleLungPoint(rng: Rng, geometry: CaseGeometry, anatomy: Anatomy, side: Side, options: LungPointOptions): Vec3 | null {
  const { cavityA, cavityB, lungBaseZ, lungHeightMm } = geometry.body;
  const sideLabel = LUNG_LABEL[side];
  const sign = side === 'left' ? -1 : 1;
  for (let attempt = 0; attempt < 400; attempt++) {
    const t = options.lowT + (options.highT - options.lowT) * rng.float() ** options.lowerBias;
    const point: Vec3 = [sign * rng.uniform(0, cavityA), rng.uniform(-cavityB, cavityB), lungBaseZ + t * lungHeightMm];
    if (Math.hypot(point[0] / cavityA, point[1] / cavityB) < options.minRelativeRadius) continue;
    if (!isLung(geometry, anatomy, point, sideLabel)) continue;
    const clearance = options.clearanceMm;
    if (clearance !== undefined && !hasClearance(geometry, anatomy, point, sideLabel, clearance)) continue;
    return point;
  }
  return null;
}

function isLung(geometry: CaseGeometry, anatomy: Anatomy, point: Vec3, sideLabel: number): boolean {
  const offset = worldToOffset(geometry, point[0], point[1], point[2]);
  return offset >= 0 && anatomy.lungs[offset] === sideLabel;
}

function hasClearance(geometry: CaseGeometry, anatomy: Anatomy, point: Vec3, sideLabel: number, distanceMm: number): boolean {
  const s = distanceMm / Math.sqrt(3);
  const probes: Vec3[] = [
    [distanceMm, 0, 0], [-distanceMm, 0, 0], [0, distanceMm, 0], [0, -distanceMm, 0], [0, 0, distanceMm], [0, 0, -distanceMm],
    [s, s, s], [s, s, -s], [s, -s, s], [s, -s, -s], [-s, s, s], [-s, s, -s], [-s, -s, s], [-s, -s, -s],
  ];
  return probes.every((p) => isLung(geometry, anatomy, [point[0] + p[0], point[1] + p[1], point[2] + p[2]], sideLabel));
}
