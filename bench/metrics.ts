/**
 * Benchmark: caseMetrics (DSC, NSD@3mm, HD95, confusion counts, volumes) on one 512x512x300 pair of
 * lesion-like masks, against the numpy/scipy reference implementation of the surface-distance
 * algorithm (test/fixtures/eval/surface_reference.py via bench/metrics_scipy.py) on the same masks
 * in the same run. Prints one JSON object: timings, their ratio, and both sets of values.
 *
 *   node --import tsx bench/metrics.ts [--repeats N] [--no-reference] [--full-box]
 *
 * --full-box adds one voxel in two opposite corners of both masks, so the corner grid is the whole
 * 512x512x300 volume (the worst case for the distance transform).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo, Rng, type Shape3 } from '../src/core/index.js';
import { caseMetrics } from '../src/eval/index.js';

const SHAPE: Shape3 = [300, 512, 512];
const SPACING_MM: Shape3 = [1.0, 0.7, 0.7];

interface Lobe {
  centre: [number, number, number];
  radii: [number, number, number];
}

/** A lesion is a few overlapping ellipsoids (lumpy, like a ground-glass patch). */
function lesions(rng: Rng, count: number): Lobe[][] {
  const out: Lobe[][] = [];
  for (let l = 0; l < count; l++) {
    const side = rng.bernoulli(0.5) ? 0.3 : 0.7;
    const centre: [number, number, number] = [rng.uniform(60, 240), rng.uniform(150, 360), rng.uniform(side * 512 - 60, side * 512 + 60)];
    const size = rng.uniform(6, 30);
    const lobes: Lobe[] = [];
    for (let k = 0; k < 4; k++) {
      lobes.push({
        centre: [centre[0] + rng.normal(0, size / 3), centre[1] + rng.normal(0, size / 2), centre[2] + rng.normal(0, size / 2)],
        radii: [size * rng.uniform(0.5, 1.0) * 0.7, size * rng.uniform(0.6, 1.2), size * rng.uniform(0.6, 1.2)],
      });
    }
    out.push(lobes);
  }
  return out;
}

/** The prediction: each lesion slightly moved and resized, some missed, one false positive. */
function perturb(rng: Rng, truth: Lobe[][]): Lobe[][] {
  const out: Lobe[][] = [];
  for (const lesion of truth) {
    if (rng.bernoulli(0.15)) continue;
    const shift = [rng.normal(0, 1), rng.normal(0, 2), rng.normal(0, 2)];
    const scale = rng.uniform(0.85, 1.15);
    out.push(lesion.map((lobe) => ({
      centre: [lobe.centre[0] + shift[0]!, lobe.centre[1] + shift[1]!, lobe.centre[2] + shift[2]!],
      radii: [lobe.radii[0] * scale, lobe.radii[1] * scale, lobe.radii[2] * scale],
    })));
  }
  out.push(...lesions(rng, 1));
  return out;
}

function rasterise(lesionList: Lobe[][]): Uint8Array {
  const [nz, ny, nx] = SHAPE;
  const data = new Uint8Array(nz * ny * nx);
  for (const lobe of lesionList.flat()) {
    const [cz, cy, cx] = lobe.centre;
    const [rz, ry, rx] = lobe.radii;
    for (let z = Math.max(0, Math.ceil(cz - rz)); z <= Math.min(nz - 1, Math.floor(cz + rz)); z++) {
      const tz = ((z - cz) / rz) ** 2;
      for (let y = Math.max(0, Math.ceil(cy - ry)); y <= Math.min(ny - 1, Math.floor(cy + ry)); y++) {
        const tzy = tz + ((y - cy) / ry) ** 2;
        if (tzy > 1) continue;
        const half = rx * Math.sqrt(1 - tzy);
        const row = (z * ny + y) * nx;
        for (let x = Math.max(0, Math.ceil(cx - half)); x <= Math.min(nx - 1, Math.floor(cx + half)); x++) data[row + x] = 1;
      }
    }
  }
  return data;
}

/** A numpy .npy (format 1.0) of uint8 data with the given C-order shape. */
function npyBytes(data: Uint8Array, shape: Shape3): Buffer {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), data]);
}

function main(): void {
  const args = process.argv.slice(2);
  const repeatsIndex = args.indexOf('--repeats');
  const repeats = repeatsIndex >= 0 ? Number(args[repeatsIndex + 1]) : 3;
  const runReference = !args.includes('--no-reference');
  const fullBox = args.includes('--full-box');

  const rng = new Rng(20240611);
  const truth = lesions(rng.fork('truth'), 14);
  const ref = { data: rasterise(truth), shape: SHAPE };
  const pred = { data: rasterise(perturb(rng.fork('pred'), truth)), shape: SHAPE };
  if (fullBox) {
    for (const mask of [ref, pred]) {
      mask.data[0] = 1;
      mask.data[mask.data.length - 1] = 1;
    }
  }

  const seconds: number[] = [];
  let metrics = caseMetrics(pred, ref, SPACING_MM, { toleranceMm: 3 });
  for (let r = 0; r < repeats; r++) {
    const start = process.hrtime.bigint();
    metrics = caseMetrics(pred, ref, SPACING_MM, { toleranceMm: 3 });
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  seconds.sort((a, b) => a - b);
  const ours = {
    seconds_min: seconds[0],
    seconds_median: seconds[Math.floor(seconds.length / 2)],
    dsc: metrics.dsc,
    nsd_3mm: metrics.nsd,
    hd95_mm: metrics.hd95,
    pred_surface_mm2: metrics.predSurfaceMm2,
    ref_surface_mm2: metrics.refSurfaceMm2,
    tp: metrics.tp,
    fp: metrics.fp,
    fn: metrics.fn,
  };

  let reference: Record<string, number> | undefined;
  if (runReference) {
    const dir = mkdtempSync(join(tmpdir(), 'lesionseg-bench-metrics-'));
    try {
      writeFileSync(join(dir, 'pred.npy'), npyBytes(pred.data, SHAPE));
      writeFileSync(join(dir, 'ref.npy'), npyBytes(ref.data, SHAPE));
      const script = fileURLToPath(new URL('./metrics_scipy.py', import.meta.url));
      const output = execFileSync('/usr/bin/python3', [script, join(dir, 'pred.npy'), join(dir, 'ref.npy'), SPACING_MM.join(','), '3'], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      reference = JSON.parse(output) as Record<string, number>;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const result = {
    benchmark: 'eval.caseMetrics',
    shape: SHAPE,
    full_box: fullBox,
    spacing_mm: SPACING_MM,
    ref_voxels: metrics.tp + metrics.fn,
    pred_voxels: metrics.tp + metrics.fp,
    repeats,
    ours,
    reference: reference ?? null,
    speedup_vs_reference: reference ? (reference.seconds as number) / (ours.seconds_min as number) : null,
    max_abs_difference: reference
      ? Math.max(
          Math.abs(ours.dsc - (reference.dsc as number)),
          Math.abs(ours.nsd_3mm - (reference.nsd_3mm as number)),
          Math.abs(ours.hd95_mm - (reference.hd95_mm as number)),
        )
      : null,
  };
  console.log(JSON.stringify({ cpu: cpuInfo(), ...result }, null, 2));
}

main();
