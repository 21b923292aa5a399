/** `predict`'s entry function: files in, masks (and probabilities) out with the input geometry; bad cases named. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import { readNifti } from '../io/index.js';
import { predictFiles } from './predictFiles.js';
import { FIXTURES, TINY_CONFIG, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from './test-support.js';

test('a folder of cases is predicted into masks and per-class probabilities with the inputs\' geometry', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-files-'));
  const model = fixtureUNet();
  writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  fs.mkdirSync(path.join(dir, 'in'));
  fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), path.join(dir, 'in', 'p1_0000.nii.gz'));
  const result = await predictFiles({ model: path.join(dir, 'run'), input: path.join(dir, 'in'), output: path.join(dir, 'out'), saveProbabilities: true, mirrorAxes: [] });
  assert.equal(result.cases.length, 1);
  const input = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  const mask = await readNifti(path.join(dir, 'out', 'p1.nii.gz'));
  assert.deepEqual(mask.shape, input.shape);
  assert.deepEqual(mask.affine, input.affine);
  assert.equal(mask.datatype, 'uint8');
  assert.deepEqual(result.cases[0]!.probabilities.map((f) => path.basename(f)), ['p1_probabilities_0.nii.gz', 'p1_probabilities_1.nii.gz', 'p1_probabilities_2.nii.gz']);
  const p0 = await readNifti(result.cases[0]!.probabilities[0]!);
  assert.equal(p0.datatype, 'float32');
  assert.deepEqual(p0.affine, input.affine);
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a 4D image is an InputError naming the case and the file, and nothing is written', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-files-'));
  const model = fixtureUNet();
  writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  await assert.rejects(
    predictFiles({ model: path.join(dir, 'run'), input: path.join(FIXTURES, 'fourd_0000.nii.gz'), output: path.join(dir, 'out') }),
    (e: unknown) => e instanceof InputError && /case 'fourd': .*fourd_0000.nii.gz: image is 4D/.test(e.message),
  );
  assert.equal(fs.existsSync(path.join(dir, 'out')), false);
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});
