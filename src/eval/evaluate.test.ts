import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GRID_MISMATCH, identityAffine, InputError, type Shape3 } from '../core/index.js';
import { writeNifti } from '../io/index.js';
import { evaluateFolder } from './evaluateFolder.js';
import { evaluationCsv, writeEvaluation } from './evaluationReport.js';
import { parseSplit } from '../io/index.js';

type Num = number | 'NaN' | 'Infinity';
interface SurfaceCase {
  name: string;
  shape: Shape3;
  spacing: Shape3;
  pred: number[];
  ref: number[];
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  dsc: Num;
  nsd: Record<string, Num>;
  hd: Record<string, Num>;
}
interface LungCase {
  shape: Shape3;
  spacing: Shape3;
  lungs: number[];
  infection: number[];
  infection_ml: number;
  left_ml: number;
  right_ml: number;
  percent_left: number;
  percent_right: number;
  percent_both: number;
}
const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/eval/eval_fixtures.json', import.meta.url), 'utf8')) as {
  surface: SurfaceCase[];
  lungs: LungCase;
};
const value = (v: Num): number => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v);
function close(actual: number, expected: Num, what: string): void {
  const e = value(expected);
  if (Number.isNaN(e)) assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  else if (!Number.isFinite(e)) assert.equal(actual, e, what);
  else assert.ok(Math.abs(actual - e) <= 1e-6, `${what}: ${actual} vs ${e}`);
}
const byName = (name: string): SurfaceCase => fixtures.surface.find((c) => c.name === name)!;
const CASES = ['random blobs 0', 'random blobs 1', 'random blobs 3', 'random noise', 'pred empty', 'both empty'].map(byName);
const idOf = (c: SurfaceCase): string => c.name.replaceAll(' ', '_');

/** A label map: `label` at the given voxels, label 3 (not evaluated) on the other voxels with x = 0. */
function labelMap(shape: Shape3, indices: number[], label: number): Uint8Array {
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < data.length; i += shape[2]) data[i] = 3;
  for (const i of indices) data[i] = label;
  return data;
}
async function writeLabels(file: string, shape: Shape3, spacing: Shape3, data: Uint8Array, shiftX = 0): Promise<void> {
  const affine = identityAffine([spacing[2], spacing[1], spacing[0]]);
  affine[0][3] = -10 + shiftX;
  await writeNifti(file, { data, shape, spacing, affine });
}
/** gt/ and pred/ folders with the fixture cases; label 2 is the one evaluated. */
async function makeFolders(cases: readonly SurfaceCase[], predSubdir = ''): Promise<{ root: string; gt: string; pred: string }> {
  const root = mkdtempSync(path.join(tmpdir(), 'lesionseg-eval-'));
  const gt = path.join(root, 'gt');
  const pred = path.join(root, 'pred');
  for (const c of cases) {
    const ext = c.name.includes('noise') ? '.nii' : '.nii.gz'; // pairs by case id whatever the ending
    await writeLabels(path.join(gt, `${idOf(c)}.nii.gz`), c.shape, c.spacing, labelMap(c.shape, c.ref, 2));
    await writeLabels(path.join(pred, predSubdir, `${idOf(c)}${ext}`), c.shape, c.spacing, labelMap(c.shape, c.pred, 2));
  }
  return { root, gt, pred };
}

test('evaluateFolder: per-case metrics of label 2 match the reference values of the fixture masks', async () => {
  const cases = CASES;
  const { root, gt, pred } = await makeFolders(cases);
  try {
    const result = await evaluateFolder({ gtDir: gt, predDir: pred, label: 2 });
    assert.deepEqual(result.cases.map((c) => c.caseId), cases.map(idOf).sort());
    assert.deepEqual(result.missing, []);
    for (const c of cases) {
      const got = result.cases.find((r) => r.caseId === idOf(c))!;
      assert.deepEqual(got.spacingMm.map((s) => Number(s.toFixed(6))), c.spacing);
      close(got.metrics.dsc, c.dsc, `${c.name} dsc`);
      close(got.metrics.nsd, c.nsd['3.0']!, `${c.name} nsd@3`);
      close(got.metrics.hd95, c.pred.length + c.ref.length === 0 ? 'NaN' : c.hd['95']!, `${c.name} hd95`);
      assert.deepEqual([got.metrics.tp, got.metrics.fp, got.metrics.fn, got.metrics.tn], [c.tp, c.fp, c.fn, c.tn], c.name);
    }
    const jsonPath = path.join(root, 'out', 'metrics.json');
    const csvPath = path.join(root, 'out', 'metrics.csv');
    writeEvaluation(result, { jsonPath, csvPath });
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as {
      cases: { case: string; dsc: number | null; hd95: number | null; empty_both: boolean }[];
      summary: Record<string, { mean: number; std: number; n: number }>;
      f1_of_means: number;
      n_empty_both: number;
    };
    const dscs = cases.map((c) => value(c.dsc)).filter((v) => !Number.isNaN(v));
    const mean = dscs.reduce((a, b) => a + b, 0) / dscs.length;
    const std = Math.sqrt(dscs.reduce((a, b) => a + (b - mean) ** 2, 0) / dscs.length);
    close(report.summary.dsc!.mean, mean, 'mean DSC');
    close(report.summary.dsc!.std, std, 'std DSC');
    assert.equal(report.summary.dsc!.n, dscs.length);
    assert.equal(report.n_empty_both, cases.filter((c) => c.pred.length + c.ref.length === 0).length);
    const emptyBoth = report.cases.find((c) => c.empty_both);
    if (emptyBoth) assert.equal(emptyBoth.dsc, null); // NaN is written as null
    const csv = readFileSync(csvPath, 'utf8').trim().split('\n');
    assert.equal(csv.length, cases.length + 1);
    assert.match(csv[0]!, /^case,dsc,nsd,hd95,sensitivity,precision,specificity,f1,accuracy,/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('evaluateFolder: a missing prediction fails listing every missing case, unless allowMissing', async () => {
  const { root, gt, pred } = await makeFolders(CASES.slice(0, 3));
  try {
    rmSync(path.join(pred, `${idOf(CASES[0]!)}.nii.gz`));
    rmSync(path.join(pred, `${idOf(CASES[2]!)}.nii.gz`));
    await assert.rejects(evaluateFolder({ gtDir: gt, predDir: pred }), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.match(error.message, /2 prediction\(s\) missing/);
      assert.ok(error.message.includes(idOf(CASES[0]!)) && error.message.includes(idOf(CASES[2]!)), error.message);
      return true;
    });
    const result = await evaluateFolder({ gtDir: gt, predDir: pred, allowMissing: true });
    assert.deepEqual(result.cases.map((c) => c.caseId), [idOf(CASES[1]!)]);
    assert.deepEqual(result.missing.map((m) => m.caseId).sort(), [idOf(CASES[0]!), idOf(CASES[2]!)].sort());
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('evaluateFolder: shape, affine and unreadable files give an InputError naming the case', async () => {
  const c = CASES[0]!;
  const { root, gt, pred } = await makeFolders([c]);
  const predFile = path.join(pred, `${idOf(c)}.nii.gz`);
  try {
    const [nz, ny, nx] = c.shape;
    await writeLabels(predFile, [nz, ny, nx + 1], c.spacing, new Uint8Array(nz * ny * (nx + 1)));
    await assert.rejects(evaluateFolder({ gtDir: gt, predDir: pred }), new RegExp(`case '${idOf(c)}': .*: the prediction does not lie on the grid of the ground truth .*: shape .* differs`));
    // core's one same-grid test: an origin 0.015 voxel (of the smallest spacing) off is another
    // grid, 0.005 voxel off the same one (GRID_TOLERANCE_VOXELS is 0.01).
    const voxel = Math.min(...c.spacing);
    await writeLabels(predFile, c.shape, c.spacing, labelMap(c.shape, c.pred, 1), 0.015 * voxel);
    await assert.rejects(evaluateFolder({ gtDir: gt, predDir: pred }), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.equal(error.code, GRID_MISMATCH);
      assert.match(error.message, new RegExp(`^case '${idOf(c)}': .*${idOf(c)}\\.nii\\.gz: the prediction does not lie on the grid of the ground truth .*: origin .*: voxel centres lie up to 0\\.015 voxel apart`));
      return true;
    });
    await writeLabels(predFile, c.shape, c.spacing, labelMap(c.shape, c.pred, 1), 0.005 * voxel);
    assert.equal((await evaluateFolder({ gtDir: gt, predDir: pred })).cases.length, 1);
    writeFileSync(predFile, 'not a nifti file');
    await assert.rejects(evaluateFolder({ gtDir: gt, predDir: pred }), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.match(error.message, new RegExp(`case '${idOf(c)}': prediction: .*${idOf(c)}\\.nii\\.gz`));
      return true;
    });
    await assert.rejects(evaluateFolder({ gtDir: path.join(root, 'nope'), predDir: pred }), /cannot read ground-truth folder/);
    await assert.rejects(evaluateFolder({ gtDir: gt, predDir: pred, label: 0 }), /label must be a positive integer/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('evaluateFolder with a split: each fold\'s test cases from pred/fold_K, summaries per fold', async () => {
  const cases = CASES.slice(0, 4);
  const { root, gt, pred } = await makeFolders(cases, 'fold_0');
  try {
    // fold 1 predicts its cases perfectly (prediction = ground truth).
    mkdirSync(path.join(pred, 'fold_1'), { recursive: true });
    for (const c of cases.slice(2)) {
      await writeLabels(path.join(pred, 'fold_1', `${idOf(c)}.nii.gz`), c.shape, c.spacing, labelMap(c.shape, c.ref, 2));
    }
    const split = parseSplit({ folds: [{ train: [], test: cases.slice(0, 3).map(idOf) }, { train: [], test: cases.slice(2).map(idOf) }] }, 'split.json');
    const result = await evaluateFolder({ gtDir: gt, predDir: pred, split, label: 2 });
    assert.deepEqual(result.cases.map((c) => [c.fold, c.caseId]), [[0, idOf(cases[0]!)], [0, idOf(cases[1]!)], [0, idOf(cases[2]!)], [1, idOf(cases[2]!)], [1, idOf(cases[3]!)]]);
    assert.equal(result.folds![1]!.predDir, path.join(pred, 'fold_1'));
    const report = writeEvaluation(result, { jsonPath: path.join(root, 'm.json') }) as {
      folds: { fold: number; summary: Record<string, { mean: number; n: number }> }[];
      fold_means: Record<string, { mean: number; n: number }>;
    };
    assert.equal(report.folds[1]!.summary.dsc!.mean, 1);
    assert.equal(report.folds[1]!.summary.nsd!.mean, 1);
    const fold0 = cases.slice(0, 3).map((c) => value(c.dsc));
    close(report.folds[0]!.summary.dsc!.mean, fold0.reduce((a, b) => a + b, 0) / 3, 'fold 0 mean DSC');
    close(report.fold_means.dsc!.mean, (report.folds[0]!.summary.dsc!.mean + 1) / 2, 'mean of fold means');
    assert.match(evaluationCsv(result).split('\n')[0]!, /^case,fold,dsc,/);
    // A test case without ground truth is an error naming it.
    const bad = parseSplit([{ train: ['a'], val: ['ghost_case', idOf(cases[0]!)] }], 'splits_final.json');
    await assert.rejects(evaluateFolder({ gtDir: gt, predDir: pred, split: bad }), /no ground truth .*ghost_case/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('evaluateFolder with lung masks: involvement of the reference infection matches the fixture', async () => {
  const l = fixtures.lungs;
  const root = mkdtempSync(path.join(tmpdir(), 'lesionseg-eval-'));
  try {
    const infection = new Uint8Array(l.lungs.length);
    for (const i of l.infection) infection[i] = 1;
    for (const dir of ['gt', 'pred']) await writeLabels(path.join(root, dir, 'case_a.nii.gz'), l.shape, l.spacing, infection.slice());
    await writeLabels(path.join(root, 'lungs', 'case_a.nii.gz'), l.shape, l.spacing, Uint8Array.from(l.lungs));
    const result = await evaluateFolder({ gtDir: path.join(root, 'gt'), predDir: path.join(root, 'pred'), lungsDir: path.join(root, 'lungs') });
    const lungs = result.cases[0]!.lungs!;
    close(lungs.ref.infectionVolumeMl, l.infection_ml, 'infection mL');
    close(lungs.ref.leftLungVolumeMl, l.left_ml, 'left lung mL');
    close(lungs.ref.rightLungVolumeMl, l.right_ml, 'right lung mL');
    close(lungs.ref.percentLeftInvolved, l.percent_left, '% left');
    close(lungs.ref.percentRightInvolved, l.percent_right, '% right');
    close(lungs.pred.percentBothInvolved, l.percent_both, '% both (pred = ref)');
    assert.match(evaluationCsv(result).split('\n')[0]!, /ref_percent_left/);
    rmSync(path.join(root, 'lungs', 'case_a.nii.gz'));
    await assert.rejects(
      evaluateFolder({ gtDir: path.join(root, 'gt'), predDir: path.join(root, 'pred'), lungsDir: path.join(root, 'lungs') }),
      /no lung mask .*case_a/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
