import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Shape3 } from '../core/index.js';
import { InputError } from '../core/index.js';
import { surfaceDistances, totalArea } from './surface.js';
import {
  hausdorff95,
  normalizedSurfaceDice,
  robustHausdorffFromDistances,
  surfaceDiceFromDistances,
} from './surfaceMetrics.js';
import type { BinaryMask } from './mask.js';

type Num = number | 'NaN' | 'Infinity';
interface SurfaceCase {
  name: string;
  shape: Shape3;
  spacing: Shape3;
  pred: number[];
  ref: number[];
  nsd: Record<string, Num>;
  hd: Record<string, Num>;
  pred_area_mm2: number;
  ref_area_mm2: number;
  pred_points: number;
  ref_points: number;
  pred_to_ref_weighted_sum: Num;
  ref_to_pred_weighted_sum: Num;
}
const here = (path: string): URL => new URL(path, import.meta.url);
const fixtures = JSON.parse(readFileSync(here('../../test/fixtures/eval/eval_fixtures.json'), 'utf8')) as { surface: SurfaceCase[] };
const golden = JSON.parse(readFileSync(here('../../test/fixtures/eval/surface-dice-golden.json'), 'utf8')) as {
  cases: { name: string; shape: Shape3; spacing: Shape3; gt: string; pred: string; nsd_1mm: Num; nsd_3mm: Num; surface_area_gt_mm2: number; surface_area_pred_mm2: number }[];
};

const value = (v: Num): number => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v);
function close(actual: number, expected: Num, tolerance: number, what: string): void {
  const e = value(expected);
  if (Number.isNaN(e)) assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  else if (!Number.isFinite(e)) assert.equal(actual, e, what);
  else assert.ok(Math.abs(actual - e) <= tolerance, `${what}: ${actual} vs ${e}`);
}
function maskFrom(shape: Shape3, indices: number[]): BinaryMask {
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (const i of indices) data[i] = 1;
  return { data, shape };
}
function weightedSum(d: Float64Array, a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i]! * a[i]!;
  return s;
}

test('surface points, areas and distances match the reference on every fixture case', () => {
  assert.equal(fixtures.surface.length, 15);
  for (const c of fixtures.surface) {
    const sd = surfaceDistances(maskFrom(c.shape, c.pred), maskFrom(c.shape, c.ref), c.spacing);
    assert.equal(sd.areasPred.length, c.pred_points, `${c.name} pred points`);
    assert.equal(sd.areasRef.length, c.ref_points, `${c.name} ref points`);
    close(totalArea(sd.areasPred), c.pred_area_mm2, 1e-9, `${c.name} pred area`);
    close(totalArea(sd.areasRef), c.ref_area_mm2, 1e-9, `${c.name} ref area`);
    if (c.ref_points > 0) close(weightedSum(sd.distancesPredToRef, sd.areasPred), c.pred_to_ref_weighted_sum, 1e-7, `${c.name} pred->ref`);
    if (c.pred_points > 0) close(weightedSum(sd.distancesRefToPred, sd.areasRef), c.ref_to_pred_weighted_sum, 1e-7, `${c.name} ref->pred`);
  }
});

test('NSD at 0, 1, 1.5, 2 and 3 mm and robust Hausdorff at 50/95/100 % match the reference', () => {
  for (const c of fixtures.surface) {
    const sd = surfaceDistances(maskFrom(c.shape, c.pred), maskFrom(c.shape, c.ref), c.spacing);
    for (const [tolerance, expected] of Object.entries(c.nsd)) {
      close(surfaceDiceFromDistances(sd, Number(tolerance)), expected, 1e-6, `${c.name} NSD@${tolerance}`);
    }
    for (const [percent, expected] of Object.entries(c.hd)) {
      // Both empty: the library gives +inf, we give NaN on purpose (see surfaceMetrics.ts).
      const want = c.pred.length + c.ref.length === 0 ? 'NaN' : expected;
      close(robustHausdorffFromDistances(sd, Number(percent)), want, 1e-6, `${c.name} HD${percent}`);
    }
  }
});

test('golden values (COVID-19-CT-Seg benchmark evaluation code) are reproduced', () => {
  assert.equal(golden.cases.length, 5);
  const build = (shape: Shape3, spec: string): BinaryMask => {
    const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
    const voxel = /^voxel \[(\d+),\s*(\d+),\s*(\d+)\]$/.exec(spec);
    const slices = /^\[(.*)\]$/.exec(spec);
    if (voxel) data[(Number(voxel[1]) * shape[1] + Number(voxel[2])) * shape[2] + Number(voxel[3])] = 1;
    else if (spec !== 'empty' && slices) {
      const ranges = slices[1]!.split(',').map((part, axis) => {
        const [a, b] = part.trim().split(':');
        return [a ? Number(a) : 0, b ? Number(b) : shape[axis]!] as const;
      });
      for (let z = ranges[0]![0]; z < ranges[0]![1]; z++)
        for (let y = ranges[1]![0]; y < ranges[1]![1]; y++)
          for (let x = ranges[2]![0]; x < ranges[2]![1]; x++) data[(z * shape[1] + y) * shape[2] + x] = 1;
    } else if (spec !== 'empty') throw new Error(`unknown golden mask '${spec}'`);
    return { data, shape };
  };
  for (const c of golden.cases) {
    const pred = build(c.shape, c.pred);
    const ref = build(c.shape, c.gt);
    // The golden file rounds to 6 decimals (NSD) and 2 decimals (areas).
    close(normalizedSurfaceDice(pred, ref, c.spacing, 1), c.nsd_1mm, 5e-7, `${c.name} NSD@1`);
    close(normalizedSurfaceDice(pred, ref, c.spacing, 3), c.nsd_3mm, 5e-7, `${c.name} NSD@3`);
    const sd = surfaceDistances(pred, ref, c.spacing);
    close(totalArea(sd.areasRef), c.surface_area_gt_mm2, 0.005, `${c.name} gt area`);
    close(totalArea(sd.areasPred), c.surface_area_pred_mm2, 0.005, `${c.name} pred area`);
  }
});

test('hand-computed: a single voxel at [3, 2, 1] mm has 7 mm^2 of surface; neighbours 1 mm apart', () => {
  const shape: Shape3 = [3, 3, 4];
  const a = maskFrom(shape, [(1 * 3 + 1) * 4 + 1]);
  const b = maskFrom(shape, [(1 * 3 + 1) * 4 + 2]);
  const sd = surfaceDistances(a, b, [3, 2, 1]);
  // 8 corners, each 1/8 of sqrt((2*1)^2 + (3*1)^2 + (3*2)^2) = 7 mm^2.
  assert.equal(totalArea(sd.areasPred), 7);
  // Half of a's corners coincide with b's, the other half are 1 mm (one x step) away.
  assert.deepEqual(Array.from(sd.distancesPredToRef).sort(), [0, 0, 0, 0, 1, 1, 1, 1]);
  assert.equal(normalizedSurfaceDice(a, b, [3, 2, 1], 0.999), 0.5);
  assert.equal(normalizedSurfaceDice(a, b, [3, 2, 1], 1), 1); // inclusive tolerance
  assert.equal(hausdorff95(a, b, [3, 2, 1]), 1);
  assert.equal(hausdorff95(a, a, [3, 2, 1]), 0);
});

test('empty masks: one empty gives NSD 0 and HD95 Infinity, both empty NaN', () => {
  const shape: Shape3 = [4, 4, 4];
  const empty = maskFrom(shape, []);
  const one = maskFrom(shape, [21]);
  assert.equal(normalizedSurfaceDice(one, empty, [1, 1, 1]), 0);
  assert.equal(normalizedSurfaceDice(empty, one, [1, 1, 1]), 0);
  assert.equal(hausdorff95(one, empty, [1, 1, 1]), Infinity);
  assert.ok(Number.isNaN(normalizedSurfaceDice(empty, empty, [1, 1, 1])));
  assert.ok(Number.isNaN(hausdorff95(empty, empty, [1, 1, 1])));
});

test('bad input: shapes, spacing, tolerance and percent are checked', () => {
  const a = maskFrom([2, 2, 2], [0]);
  assert.throws(() => normalizedSurfaceDice(a, maskFrom([2, 2, 3], [0]), [1, 1, 1]), InputError);
  assert.throws(() => normalizedSurfaceDice(a, { data: new Uint8Array(7), shape: [2, 2, 2] }, [1, 1, 1]), /7 voxels/);
  assert.throws(() => normalizedSurfaceDice(a, a, [1, -1, 1]), InputError);
  assert.throws(() => normalizedSurfaceDice(a, a, [1, 1, 1], NaN), InputError);
  assert.throws(() => robustHausdorffFromDistances(surfaceDistances(a, a, [1, 1, 1]), 101), InputError);
});
