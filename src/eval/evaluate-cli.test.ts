/** `lesionseg evaluate` end to end: spawns the CLI on tiny NIfTI folders; user errors exit 2 without a stack. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from '../cli/test-support.js';
import { identityAffine, type Shape3 } from '../core/index.js';
import { writeNifti } from '../io/index.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const SHAPE: Shape3 = [4, 5, 6];
const SPACING: Shape3 = [2.5, 0.8, 0.7];

function evaluate(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [...CLI, 'evaluate', ...args], { cwd: repoRoot, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** A box of label 1 from voxel lo to hi (exclusive) in a [4, 5, 6] volume. */
async function box(file: string, lo: Shape3, hi: Shape3, shape: Shape3 = SHAPE): Promise<void> {
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (let z = lo[0]; z < hi[0]; z++) for (let y = lo[1]; y < hi[1]; y++) for (let x = lo[2]; x < hi[2]; x++) data[(z * shape[1] + y) * shape[2] + x] = 1;
  await writeNifti(file, { data, shape, spacing: SPACING, affine: identityAffine([SPACING[2], SPACING[1], SPACING[0]]) });
}

async function folders(): Promise<{ root: string; gt: string; pred: string; out: string }> {
  const root = mkdtempSync(path.join(tmpdir(), 'lesionseg-eval-cli-'));
  const gt = path.join(root, 'gt');
  const pred = path.join(root, 'pred');
  for (const id of ['case_a', 'case_b', 'case_c']) {
    await box(path.join(gt, `${id}.nii.gz`), [1, 1, 1], [3, 4, 4]);
    await box(path.join(pred, `${id}.nii.gz`), [1, 1, 2], [3, 4, 5]);
  }
  return { root, gt, pred, out: path.join(root, 'out') };
}

function assertUserError(run: { status: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, pattern);
  assert.ok(!run.stderr.includes('    at '), `stack trace in stderr:\n${run.stderr}`);
}

test('evaluate writes JSON and CSV; a box shifted by one voxel in x has DSC 2/3', async () => {
  const { root, gt, pred, out } = await folders();
  try {
    const run = evaluate(['--gt', gt, '--pred', pred, '--json', path.join(out, 'm.json'), '--csv', path.join(out, 'm.csv')]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /evaluated 3 case\(s\)/);
    const report = JSON.parse(readFileSync(path.join(out, 'm.json'), 'utf8')) as { cases: { dsc: number }[]; summary: { dsc: { mean: number; n: number } } };
    // 2x3x3 boxes overlapping in 2x3x2 voxels: DSC = 2 * 12 / (18 + 18).
    assert.equal(report.cases.length, 3);
    assert.ok(Math.abs(report.summary.dsc.mean - 2 / 3) < 1e-12);
    assert.equal(readFileSync(path.join(out, 'm.csv'), 'utf8').trim().split('\n').length, 4);
    assert.deepEqual(readdirSync(out).sort(), ['m.csv', 'm.json']); // no temporary files left
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('evaluate: missing predictions, a shape mismatch and an unreadable file exit 2 naming the case, and write nothing', async () => {
  const { root, gt, pred, out } = await folders();
  const json = path.join(out, 'm.json');
  try {
    rmSync(path.join(pred, 'case_a.nii.gz'));
    rmSync(path.join(pred, 'case_c.nii.gz'));
    assertUserError(evaluate(['--gt', gt, '--pred', pred, '--json', json]), /2 prediction\(s\) missing[\s\S]*case_a[\s\S]*case_c/);
    assert.ok(!existsSync(json));
    const partial = evaluate(['--gt', gt, '--pred', pred, '--json', json, '--allow-missing']);
    assert.equal(partial.status, 0, partial.stderr);
    assert.deepEqual((JSON.parse(readFileSync(json, 'utf8')) as { missing_predictions: unknown }).missing_predictions, [{ case: 'case_a' }, { case: 'case_c' }]);
    rmSync(out, { recursive: true });

    await box(path.join(pred, 'case_a.nii.gz'), [0, 0, 0], [1, 1, 1], [4, 5, 7]);
    await box(path.join(pred, 'case_c.nii.gz'), [0, 0, 0], [1, 1, 1]);
    assertUserError(evaluate(['--gt', gt, '--pred', pred, '--json', json]), /^lesionseg: case 'case_a': \S*case_a\.nii\.gz: the prediction does not lie on the grid of the ground truth \S*case_a\.nii\.gz: shape \[4, 5, 7\] \(z, y, x\) differs from its \[4, 5, 6\]\n$/m);
    await box(path.join(pred, 'case_a.nii.gz'), [0, 0, 0], [1, 1, 1]);
    writeFileSync(path.join(pred, 'case_b.nii.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
    assertUserError(evaluate(['--gt', gt, '--pred', pred, '--json', json]), /case 'case_b': prediction: .*case_b\.nii\.gz/);
    assert.ok(!existsSync(json));

    assertUserError(evaluate(['--gt', gt, '--pred', pred, '--json', json, '--tolerance', 'abc']), /--tolerance must be a number of mm/);
    writeFileSync(path.join(root, 'split.json'), '{"folds": [{"train": ["case_a"]}]}');
    assertUserError(evaluate(['--gt', gt, '--pred', pred, '--json', json, '--split', path.join(root, 'split.json')]), /split\.json \[folds\[0\]\.test\]: 'test' \(or nnU-Net's 'val'\) is required/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--ignore-label: ground-truth voxels of that value count in no metric (hand-computed DSC 0.8)', async () => {
  const { root, gt, pred, out } = await folders();
  try {
    // The prediction's extra column x = 4 (2 x 3 voxels, false positives) is marked 2 in the ground truth.
    const data = new Uint8Array(SHAPE[0] * SHAPE[1] * SHAPE[2]);
    for (let z = 1; z < 3; z++) for (let y = 1; y < 4; y++) {
      for (let x = 1; x < 4; x++) data[(z * SHAPE[1] + y) * SHAPE[2] + x] = 1;
      data[(z * SHAPE[1] + y) * SHAPE[2] + 4] = 2;
    }
    for (const id of ['case_a', 'case_b', 'case_c']) await writeNifti(path.join(gt, `${id}.nii.gz`), { data, shape: SHAPE, spacing: SPACING, affine: identityAffine([SPACING[2], SPACING[1], SPACING[0]]) });
    const run = evaluate(['--gt', gt, '--pred', pred, '--ignore-label', '2', '--json', path.join(out, 'm.json')]);
    assert.equal(run.status, 0, run.stderr);
    // TP 12 (x = 2, 3), FN 6 (x = 1), FP 0 (x = 4 ignored): DSC = 24 / (24 + 6).
    const report = JSON.parse(readFileSync(path.join(out, 'm.json'), 'utf8')) as { summary: { dsc: { mean: number } } };
    assert.ok(Math.abs(report.summary.dsc.mean - 0.8) < 1e-12, `DSC ${report.summary.dsc.mean}`);
    assertUserError(evaluate(['--gt', gt, '--pred', pred, '--ignore-label', '1', '--json', path.join(out, 'n.json')]), /ignore label must be a positive integer other than the evaluated label 1/);
    assert.ok(!existsSync(path.join(out, 'n.json')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
