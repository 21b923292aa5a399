/**
 * nnU-Net v2 model folders as a user gives them: `predict -m NNUNET_MODEL_FOLDER` (--folds, --checkpoint,
 * --configuration) and `train --pretrained NNUNET_MODEL_FOLDER/fold_K` on a tiny COVID phantom.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNifti, readNpy } from '../io/index.js';
import { writeSynthDataset } from '../synth/index.js';
import { lesionseg, ROOT, STACK_LINE } from './test-support.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/nnunet');
const PLAIN = path.join(FIXTURES, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetPlans__3d_fullres');

test('predict -m an nnU-Net model folder --folds 0,1 --checkpoint final --configuration 3d_fullres: --tta full: PyTorch\'s mask, in fp32 by default as nnU-Net on a CPU', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-nnunet-'));
  const output = path.join(dir, 'mask.nii.gz');
  const run = await lesionseg('predict', '-m', PLAIN, '-i', path.join(FIXTURES, 'case/case_0000.nii.gz'), '-o', output, '--folds', '0,1', '--checkpoint', 'final', '--configuration', '3d_fullres', '--tta', 'full', '--json');
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { checkpoints: string[] };
  assert.match(run.stderr, /; fp32 on cpu\n/);
  assert.deepEqual(summary.checkpoints.map((file) => path.relative(PLAIN, file)), ['fold_0/checkpoint_final.pth', 'fold_1/checkpoint_final.pth']);
  assert.match(run.stderr, /model: nnU-Net nnUNetTrainer 3d_fullres fold 0 \(PlainConvUNet, epoch 3\) \(ensemble of 2\); mirroring axes \[0, 1, 2\]/);
  const mask = await readNifti(output);
  const reference = readNpy(path.join(FIXTURES, 'case/plain_mask.npy'));
  assert.deepEqual([...mask.data], [...reference.data]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('predict --configuration 2d on a 3d_fullres model is a user error (exit 2, no stack)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-nnunet-'));
  const run = await lesionseg('predict', '-m', PLAIN, '-i', path.join(FIXTURES, 'case/case_0000.nii.gz'), '-o', path.join(dir, 'mask.nii.gz'), '--configuration', '2d');
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /trained as configuration '3d_fullres', not '2d'/);
  assert.ok(!run.stderr.includes(STACK_LINE), run.stderr);
  assert.equal(fs.existsSync(path.join(dir, 'mask.nii.gz')), false);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('train --strategy finetune --pretrained an nnU-Net fold: its plan preprocesses the target, its body is copied', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-nnunet-train-'));
  await writeSynthDataset({ kind: 'covid', cases: 3, out: path.join(dir, 'covid'), seed: 3, size: 'tiny' });
  const fold = path.join(PLAIN, 'fold_0');
  const run = await lesionseg('train', '--dataset', path.join(dir, 'covid'), '--strategy', 'finetune', '--pretrained', fold, '--out', path.join(dir, 'run'),
    '--fold', 'all', '--epochs', '1', '--iters-per-epoch', '1', '--val-iters', '0', '--workers', '0', '--threads', '1');
  assert.equal(run.code, 0, run.stderr);
  const sidecar = JSON.parse(fs.readFileSync(path.join(dir, 'run', 'checkpoint_final.json'), 'utf8'));
  assert.equal(sidecar.strategy.pretrained, fold);
  assert.equal(sidecar.plan.preset, 'nnunet');
  assert.deepEqual(sidecar.plan.configuration.patchSize, [8, 16, 16]);
  assert.deepEqual(sidecar.plan.datasets.map((d: { name: string }) => d.name), ['Dataset901_Tiny', 'covid']);
  assert.equal(sidecar.loadReport.shapeMismatch.length, 0);
  assert.ok(sidecar.loadReport.loaded.length > 0 && sidecar.loadReport.loaded.every((name: string) => !name.startsWith('decoder.seg_layers.')));
  // Several folds: the user must say which.
  const both = await lesionseg('train', '--dataset', path.join(dir, 'covid'), '--strategy', 'finetune', '--pretrained', PLAIN, '--out', path.join(dir, 'run2'), '--fold', 'all', '--epochs', '1');
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /needs one fold of this nnU-Net model: name it as .*fold_K \(found fold_0, fold_1\)/);
  assert.equal(fs.existsSync(path.join(dir, 'run2')), false);
  fs.rmSync(dir, { recursive: true, force: true });
});
