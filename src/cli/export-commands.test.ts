/**
 * `lesionseg export` as a user runs it: bad inputs are refused with one line naming the file or
 * option, exit 2 and no stack trace, before any weight is read; a run exports to an nnU-Net model
 * folder and a state dict.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CPU } from '../core/index.js';
import { tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { HybridUNet, PlainConvUNet, type UNetConfig } from '../models/index.js';
import { lesionseg, STACK_LINE } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'export-cli-'));
const config: UNetConfig = { inputChannels: 1, numClasses: 3, featuresPerStage: [4, 8], kernelSizes: [[1, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2]], deepSupervision: false };
const run = path.join(tmp, 'run');
const hybrid = path.join(tmp, 'hybrid');
{
  const network = new PlainConvUNet(config, { device: CPU });
  writeTestCheckpoint(run, 'checkpoint_final', network, config, tinyInferencePlan());
  network.dispose();
  const fused = new HybridUNet(config, { device: CPU });
  writeTestCheckpoint(hybrid, 'checkpoint_final', fused, config, tinyInferencePlan(), 'HybridUNet', { hybrid: { fuseLevels: 'all' } });
  fused.dispose();
}

function userError(result: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, pattern);
  assert.ok(!result.stderr.includes(STACK_LINE), result.stderr);
  assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
}

test('export refuses bad inputs with one line and exit 2', async () => {
  userError(await lesionseg('export', path.join(tmp, 'missing'), '--format', 'nnunet', '--out', path.join(tmp, 'o1')), /missing: RUN not found/);
  userError(await lesionseg('export', run, '--format', 'caffe', '--out', path.join(tmp, 'o2')), /--format/);
  userError(await lesionseg('export', run, '--out', path.join(tmp, 'o2')), /--format/);
  userError(await lesionseg('export', hybrid, '--format', 'nnunet', '--out', path.join(tmp, 'o3')), /HybridUNet .* no nnU-Net v2/);
  userError(await lesionseg('export', run, '--format', 'nnunet', '--out', path.join(tmp, 'o4'), '--task', 'Phantom'), /--task applies to multi-head models/);
  userError(await lesionseg('export', run, '--format', 'nnunet', '--out', path.join(tmp, 'o5'), '--fold', '1'), /--fold applies to --format torch/);
  userError(await lesionseg('export', run, '--format', 'torch', '--out', path.join(tmp, 'x.onnx')), /\.pth/);
  fs.mkdirSync(path.join(tmp, 'busy'));
  fs.writeFileSync(path.join(tmp, 'busy', 'file'), '');
  userError(await lesionseg('export', run, '--format', 'nnunet', '--out', path.join(tmp, 'busy')), /busy: --out: the folder exists and is not empty/);
  for (const name of ['o1', 'o2', 'o3', 'o4', 'o5']) assert.equal(fs.existsSync(path.join(tmp, name)), false, name);
});

test('export writes an nnU-Net model folder and a state dict', async () => {
  const out = path.join(tmp, 'model');
  const nnunet = await lesionseg('export', run, '--format', 'nnunet', '--out', out, '--json');
  assert.equal(nnunet.code, 0, nnunet.stderr);
  const result = JSON.parse(nnunet.stdout) as { folds: number[]; stateDictKeys: number; parameters: number };
  assert.deepEqual(result.folds, [0]);
  assert.ok(result.stateDictKeys > result.parameters);
  assert.ok(fs.existsSync(path.join(out, 'fold_0', 'checkpoint_final.pth')));
  const torch = await lesionseg('export', run, '--format', 'torch', '--out', path.join(tmp, 'model.pth'));
  assert.equal(torch.code, 0, torch.stderr);
  assert.match(torch.stdout, /exported PlainConvUNet fold 0 as torch/);
  assert.ok(fs.statSync(path.join(tmp, 'model.pth')).size > 0);
});
