/**
 * ONNX as a user meets it: `export RUN --format onnx --out model.onnx` and `predict --engine onnx`
 * (an nnU-Net v2 model folder's two-fold ensemble gives PyTorch's own mask through onnxruntime),
 * and the user errors, each exit 2 with the file or option named and no stack: a missing run, an
 * output that is a directory, and --engine onnx or --format onnx on a model ONNX cannot express.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNifti, readNpy } from '../io/index.js';
import { HybridUNet } from '../models/index.js';
import { FIXTURES as INFER_FIXTURES, TINY_CONFIG, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { lesionseg, ROOT, STACK_LINE } from './test-support.js';

const NNUNET = path.join(ROOT, 'test/fixtures/nnunet');
const PLAIN = path.join(NNUNET, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetPlans__3d_fullres');

function runs(): { dir: string; run: string; hybrid: string; phantom: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-onnx-'));
  const network = fixtureUNet();
  const hybrid = new HybridUNet(TINY_CONFIG);
  writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', network, TINY_CONFIG, tinyInferencePlan());
  writeTestCheckpoint(path.join(dir, 'hybrid'), 'checkpoint_final', hybrid, TINY_CONFIG, tinyInferencePlan(), 'HybridUNet', { hybrid: { fuseLevels: 'bottleneck' } });
  network.dispose();
  hybrid.dispose();
  return { dir, run: path.join(dir, 'run'), hybrid: path.join(dir, 'hybrid'), phantom: path.join(INFER_FIXTURES, 'phantom.nii.gz') };
}

function userError(run: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, pattern);
  assert.ok(!run.stderr.includes(STACK_LINE), run.stderr);
}

test('predict --engine onnx on an nnU-Net model folder (folds 0,1, --tta full) gives PyTorch\'s mask', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-onnx-'));
  try {
    const output = path.join(dir, 'mask.nii.gz');
    const run = await lesionseg('predict', '-m', PLAIN, '-i', path.join(NNUNET, 'case/case_0000.nii.gz'), '-o', output, '--folds', '0,1', '--engine', 'onnx', '--tta', 'full');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /\[onnx\]/);
    const mask = await readNifti(output);
    assert.deepEqual([...mask.data], [...readNpy(path.join(NNUNET, 'case/plain_mask.npy')).data]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('export RUN --format onnx writes model.onnx; a missing RUN and an output directory are user errors naming them', async () => {
  const { dir, run } = runs();
  try {
    const out = path.join(dir, 'model.onnx');
    const ok = await lesionseg('export', run, '--format', 'onnx', '--out', out);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(fs.statSync(out).size > 0);
    const missing = path.join(dir, 'no-such-run');
    userError(await lesionseg('export', missing, '--format', 'onnx', '--out', path.join(dir, 'x.onnx')), new RegExp(`${missing.replaceAll('/', '\\/')}: RUN not found`));
    fs.mkdirSync(path.join(dir, 'folder'));
    userError(await lesionseg('export', run, '--format', 'onnx', '--out', path.join(dir, 'folder')), /folder: --out: is a folder, not a file/);
    assert.equal(fs.existsSync(path.join(dir, 'x.onnx')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--engine onnx and --format onnx on a hybrid model are refused naming its sidecar and the architecture, before any case is predicted', async () => {
  const { dir, hybrid, phantom } = runs();
  try {
    const output = path.join(dir, 'mask.nii.gz');
    userError(await lesionseg('predict', '-m', hybrid, '-i', phantom, '-o', output, '--engine', 'onnx'), /hybrid\/checkpoint_final\.json: architecture 'HybridUNet' cannot be exported to ONNX/);
    assert.equal(fs.existsSync(output), false);
    userError(await lesionseg('export', hybrid, '--format', 'onnx', '--out', path.join(dir, 'h.onnx')), /checkpoint_final\.json: architecture 'HybridUNet' cannot be exported to ONNX/);
    userError(await lesionseg('predict', '-m', hybrid, '-i', phantom, '-o', output, '--engine', 'tflite'), /--engine.*tflite/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
