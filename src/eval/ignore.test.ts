/**
 * The ignore label in evaluation (nnU-Net's evaluate_predictions: ground-truth voxels holding it
 * count in no TP/FP/FN/TN): hand-counted confusion, the surface metrics of a prediction that
 * differs only inside the ignore region, and evaluateFolder on NIfTI files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { identityAffine, InputError, type Shape3 } from '../core/index.js';
import { writeNifti } from '../io/index.js';
import { caseMetrics } from './caseMetrics.js';
import { confusion } from './confusion.js';
import { evaluateFolder } from './evaluateFolder.js';
import { writeEvaluation } from './evaluationReport.js';
import { maskOfLabel } from './mask.js';

const IGNORE = 2;
// Ground truth (2 = ignore) and prediction along one row of 8 voxels.
const GT = [0, 1, 1, 2, 2, 0, 1, 0];
const PRED = [1, 1, 0, 1, 0, 0, 1, 0];
const ROW: Shape3 = [1, 1, 8];
const asMask = (labels: number[], label: number, shape: Shape3 = ROW) => ({ data: maskOfLabel(labels, label), shape });

test('confusion leaves the ignore voxels out of every count (hand-counted)', () => {
  // counted voxels 0,1,2,5,6,7: FP, TP, FN, TN, TP, TN (voxel 3, predicted on ignore, is no FP; voxel 4 no TN)
  assert.deepEqual(confusion(asMask(PRED, 1), asMask(GT, 1), asMask(GT, IGNORE)), { tp: 2, fp: 1, fn: 1, tn: 2 });
  assert.deepEqual(confusion(asMask(PRED, 1), asMask(GT, 1)), { tp: 2, fp: 2, fn: 1, tn: 3 });
  const m = caseMetrics(asMask(PRED, 1), asMask(GT, 1), [1, 1, 1], { ignore: asMask(GT, IGNORE) });
  assert.equal(m.dsc, 4 / 6);
  assert.equal(m.precision, 2 / 3);
  assert.equal(m.specificity, 2 / 3);
  assert.equal(m.accuracy, 4 / 6);
  assert.throws(() => confusion(asMask(PRED, 1), asMask(GT, 1), { data: new Uint8Array(7), shape: [1, 1, 7] }), InputError);
});

test('a prediction that differs only inside the ignore region has the metrics of one without it', () => {
  const shape: Shape3 = [6, 8, 8];
  const at = (z: number, y: number, x: number): number => (z * 8 + y) * 8 + x;
  const gt = new Array<number>(6 * 8 * 8).fill(0);
  const pred = new Array<number>(6 * 8 * 8).fill(0);
  for (let z = 1; z <= 2; z++) for (let y = 1; y <= 3; y++) for (let x = 1; x <= 2; x++) gt[at(z, y, x)] = 1;
  for (let z = 1; z <= 2; z++) for (let y = 2; y <= 3; y++) for (let x = 1; x <= 3; x++) pred[at(z, y, x)] = 1;
  const plainPred = [...pred];
  let ignored = 0;
  for (let z = 3; z < 6; z++) for (let y = 4; y < 8; y++) for (let x = 4; x < 8; x++) (gt[at(z, y, x)] = IGNORE), ignored++;
  for (let y = 5; y <= 6; y++) for (let x = 5; x <= 6; x++) pred[at(4, y, x)] = 1; // a blob inside the ignore region
  const spacing = [2, 0.8, 0.8];
  const withIgnore = caseMetrics(asMask(pred, 1, shape), asMask(gt, 1, shape), spacing, { ignore: asMask(gt, IGNORE, shape) });
  const plain = caseMetrics(asMask(plainPred, 1, shape), asMask(gt, 1, shape), spacing);
  const blob = caseMetrics(asMask(pred, 1, shape), asMask(gt, 1, shape), spacing);
  for (const key of ['dsc', 'nsd', 'hd95', 'tp', 'fp', 'fn', 'predVolumeMl', 'predSurfaceMm2', 'refSurfaceMm2'] as const) {
    assert.equal(withIgnore[key], plain[key], key);
  }
  assert.equal(withIgnore.tn, plain.tn - ignored);
  // without the ignore mask the blob is 4 false positives and moves the surface metrics
  assert.equal(blob.fp, plain.fp + 4);
  assert.ok(blob.nsd < plain.nsd && blob.hd95 > plain.hd95);
});

test('evaluateFolder with an ignore label: counts without the ignore voxels, ignore_label in the report', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'lesionseg-eval-ignore-'));
  try {
    const write = async (dir: string, labels: number[]) => {
      mkdirSync(dir, { recursive: true });
      await writeNifti(path.join(dir, 'case_1.nii.gz'), { data: Uint8Array.from(labels), shape: ROW, spacing: [1, 1, 1], affine: identityAffine([1, 1, 1]) });
    };
    await write(path.join(root, 'gt'), GT);
    await write(path.join(root, 'pred'), PRED);
    const options = { gtDir: path.join(root, 'gt'), predDir: path.join(root, 'pred'), label: 1 };
    const result = await evaluateFolder({ ...options, ignoreLabel: IGNORE });
    const m = result.cases[0]!.metrics;
    assert.deepEqual([m.tp, m.fp, m.fn, m.tn], [2, 1, 1, 2]);
    assert.equal(result.ignoreLabel, IGNORE);
    const plain = (await evaluateFolder(options)).cases[0]!.metrics;
    assert.deepEqual([plain.tp, plain.fp, plain.fn, plain.tn], [2, 2, 1, 3]);
    const jsonPath = path.join(root, 'out.json');
    writeEvaluation(result, { jsonPath });
    assert.equal((JSON.parse(readFileSync(jsonPath, 'utf8')) as { ignore_label: number }).ignore_label, IGNORE);
    await assert.rejects(evaluateFolder({ ...options, ignoreLabel: 1 }), /ignore label must be a positive integer other than the evaluated label 1/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
