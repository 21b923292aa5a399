/**
 * Metrics on NIfTI files against DeepMind's surface-distance fed nibabel's get_zooms() (DESIGN.md
 * decision 6): test/fixtures/eval/spacing/ holds mask pairs on axis-aligned and oblique grids at
 * 0.5 to 3 mm with masks shifted by whole voxels and random blobs, and expected.json the library's
 * DSC, HD95 and NSD at 1, 1.5, 2 and 3 mm (make_surface_distance_fixtures.py, run on the library's
 * fetched source). The pairs are read through readNifti, so the spacing under test is the reader's.
 * On the oblique grids the float32 sform's column norms exceed pixdim by ~1e-8; spacing taken from
 * them pushes every distance that sits exactly on a tolerance out of NSD: before the spacing became
 * pixdim, 16 of the 21 oblique pairs failed here (1 mm voxels shifted by (0, 1, 2): NSD at 1 mm
 * 0.3713 instead of 0.7825; shifted by (1, 0, 0): 0.7759 instead of 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from '../cli/test-support.js';
import { readNifti, type NiftiImage } from '../io/index.js';
import { caseMetrics } from './caseMetrics.js';
import type { BinaryMask } from './mask.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = path.join(repoRoot, 'test/fixtures/eval/spacing');

interface ReferenceCase {
  name: string;
  kind: 'axis' | 'oblique';
  files: { gt: string; pred: string };
  shape_xyz: number[];
  zooms_xyz: number[];
  sform_norms_xyz: number[];
  dsc: number;
  hd95: number;
  nsd: Record<string, number>;
}
const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as { tolerances_mm: number[]; cases: ReferenceCase[] };

/**
 * The library's values and ours come from the same float64 formulas on the same float64 spacing
 * (pixdim's float32 values): only the order of area sums differs (numpy's pairwise sums against
 * our sequential ones), ~1e-15 relative. 1e-6 is the bar and leaves room for that on any CPU.
 */
const TOLERANCE = 1e-6;

function mask(image: NiftiImage): BinaryMask {
  return { data: Uint8Array.from(image.data as ArrayLike<number>, (v) => (Number(v) !== 0 ? 1 : 0)), shape: image.shape };
}

test('the fixtures cover 0.5 to 3 mm, oblique and axis-aligned, and the oblique sforms disagree with pixdim by float32 rounding only', () => {
  assert.equal(expected.cases.length, 42);
  assert.deepEqual(expected.tolerances_mm, [1, 1.5, 2, 3]);
  const oblique = expected.cases.filter((c) => c.kind === 'oblique');
  assert.equal(oblique.length, 21);
  for (const c of oblique) {
    const relative = c.sform_norms_xyz.map((norm, axis) => Math.abs(norm - c.zooms_xyz[axis]!) / c.zooms_xyz[axis]!);
    assert.ok(relative.some((r) => r > 0), `${c.name}: the sform's norms equal pixdim, the case tests nothing`);
    assert.ok(relative.every((r) => r < 1e-7), `${c.name}: ${relative.join(', ')}`);
  }
});

test('DSC, HD95 and NSD at 1, 1.5, 2, 3 mm of every pair read from NIfTI agree with surface-distance on get_zooms() to 1e-6', async () => {
  for (const c of expected.cases) {
    const gt = await readNifti(path.join(FIXTURES, c.files.gt));
    const pred = await readNifti(path.join(FIXTURES, c.files.pred));
    // The spacing is the header's pixdim exactly (z, y, x), no geometry note.
    assert.deepEqual(gt.spacing, [...c.zooms_xyz].reverse(), `${c.name} spacing`);
    assert.equal(gt.geometryNote, undefined, c.name);
    for (const toleranceMm of expected.tolerances_mm) {
      const m = caseMetrics(mask(pred), mask(gt), gt.spacing, { toleranceMm });
      const want = c.nsd[String(toleranceMm)]!;
      assert.ok(Math.abs(m.nsd - want) <= TOLERANCE, `${c.name} NSD at ${toleranceMm} mm: ${m.nsd} vs surface-distance ${want}`);
      assert.ok(Math.abs(m.hd95 - c.hd95) <= TOLERANCE, `${c.name} HD95: ${m.hd95} vs surface-distance ${c.hd95}`);
      assert.ok(Math.abs(m.dsc - c.dsc) <= TOLERANCE, `${c.name} DSC: ${m.dsc} vs surface-distance ${c.dsc}`);
    }
  }
});

test('`evaluate` on an oblique pair (1.5 x 0.9 x 3 mm, shifted by (0, 1, 2) voxels) reports surface-distance\'s NSD, HD95 and DSC', () => {
  const c = expected.cases.find((k) => k.name === 'oblique_1.5x0.9x3_shift012')!;
  const root = mkdtempSync(path.join(tmpdir(), 'lesionseg-spacing-'));
  try {
    for (const role of ['gt', 'pred'] as const) {
      mkdirSync(path.join(root, role));
      copyFileSync(path.join(FIXTURES, c.files[role]), path.join(root, role, 'case_001.nii.gz'));
    }
    for (const toleranceMm of [1, 1.5]) {
      const json = path.join(root, `metrics_${toleranceMm}.json`);
      const run = spawnSync(process.execPath, [...CLI, 'evaluate', '--gt', path.join(root, 'gt'), '--pred', path.join(root, 'pred'), '--tolerance', String(toleranceMm), '--json', json], { cwd: repoRoot, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const report = JSON.parse(readFileSync(json, 'utf8')) as { cases: { nsd: number; hd95: number; dsc: number; spacing_mm: number[] }[] };
      const row = report.cases[0]!;
      assert.deepEqual(row.spacing_mm, [...c.zooms_xyz].reverse());
      assert.ok(Math.abs(row.nsd - c.nsd[String(toleranceMm)]!) <= TOLERANCE, `NSD at ${toleranceMm} mm: ${row.nsd} vs ${c.nsd[String(toleranceMm)]}`);
      assert.ok(Math.abs(row.hd95 - c.hd95) <= TOLERANCE, `HD95 ${row.hd95} vs ${c.hd95}`);
      assert.ok(Math.abs(row.dsc - c.dsc) <= TOLERANCE, `DSC ${row.dsc} vs ${c.dsc}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
