/**
 * nnU-Net's zoo from the command line: `predict -m A -m B` (ensemble across models), models of other
 * labels refused (exit 2, one line, nothing written), `--postprocessing` applied as
 * nnUNetv2_apply_postprocessing (the mask equals the plain prediction postprocessed by the library),
 * and a postprocessing.pkl naming another global refused before anything runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNifti } from '../io/index.js';
import { applyPostprocessing, readPostprocessing } from '../infer/index.js';
import { lesionseg, ROOT, STACK_LINE } from './test-support.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/nnunet');
const PLAIN = path.join(FIXTURES, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetPlans__3d_fullres');
const RESENC = path.join(FIXTURES, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetResEncUNetMPlans__3d_fullres');
const CASE = path.join(FIXTURES, 'case/case_0000.nii.gz');

test('predict -m A -m B ensembles; other labels are refused naming the model (exit 2, nothing written)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-zoo-'));
  const run = await lesionseg('predict', '-m', PLAIN, '-m', RESENC, '-i', CASE, '-o', path.join(dir, 'mask.nii.gz'), '--precision', 'fp32', '--json');
  assert.equal(run.code, 0, run.stderr);
  assert.equal((JSON.parse(run.stdout) as { checkpoints: string[] }).checkpoints.length, 3);
  assert.match(run.stderr, /model: ensemble of 2 models: .*PlainConvUNet.* \+ .*ResidualEncoderUNet.*\(mirroring axes \[1, 2\]\)/);
  const renamed = path.join(dir, 'renamed');
  fs.mkdirSync(path.join(renamed, 'fold_0'), { recursive: true });
  fs.copyFileSync(path.join(RESENC, 'fold_0/checkpoint_final.pth'), path.join(renamed, 'fold_0/checkpoint_final.pth'));
  fs.copyFileSync(path.join(RESENC, 'plans.json'), path.join(renamed, 'plans.json'));
  const dataset = JSON.parse(fs.readFileSync(path.join(RESENC, 'dataset.json'), 'utf8'));
  fs.writeFileSync(path.join(renamed, 'dataset.json'), JSON.stringify({ ...dataset, labels: { background: 0, lesion: 1, nodule: 2 } }));
  const refused = await lesionseg('predict', '-m', PLAIN, '-m', renamed, '-i', CASE, '-o', path.join(dir, 'refused.nii.gz'));
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /renamed: its labels \{background=0, lesion=1, nodule=2\} differ from those of the first -m/);
  assert.ok(!refused.stderr.includes(STACK_LINE), refused.stderr);
  assert.equal(fs.existsSync(path.join(dir, 'refused.nii.gz')), false);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('predict --postprocessing applies nnU-Net\'s steps to the mask; a pickle naming another global is refused (exit 2)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-zoo-pp-'));
  // Per-label steps (label 2, then label 1), as find_best_configuration writes them (the JSON twin).
  const json = path.join(dir, 'postprocessing.json');
  fs.writeFileSync(json, JSON.stringify({ postprocessing_fns: ['remove_all_but_largest_component_from_segmentation', 'remove_all_but_largest_component_from_segmentation'], postprocessing_kwargs: [{ labels_or_regions: 2 }, { labels_or_regions: 1 }] }));
  const plain = await lesionseg('predict', '-m', PLAIN, '-i', CASE, '-o', path.join(dir, 'plain.nii.gz'), '--precision', 'fp32');
  assert.equal(plain.code, 0, plain.stderr);
  const post = await lesionseg('predict', '-m', PLAIN, '-i', CASE, '-o', path.join(dir, 'post.nii.gz'), '--precision', 'fp32', '--postprocessing', dir);
  assert.equal(post.code, 0, post.stderr);
  const expected = await readNifti(path.join(dir, 'plain.nii.gz'));
  const changed = applyPostprocessing(expected.data as Uint8Array, expected.shape, readPostprocessing(json));
  assert.ok(changed > 0, 'the step changes the fixture\'s mask');
  assert.match(post.stderr, new RegExp(`postprocessing set ${changed} voxel\\(s\\) to background`));
  assert.deepEqual([...(await readNifti(path.join(dir, 'post.nii.gz'))).data], [...expected.data]);
  // A pickle whose "function" is os.system: protocol 2, GLOBAL 'posix system'.
  const hostile = path.join(dir, 'hostile.pkl');
  fs.writeFileSync(hostile, Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cposix\nsystem\n', 'latin1'), Buffer.from(']q\x00a]q\x01}q\x02X\x11\x00\x00\x00labels_or_regionsq\x03K\x01saa\x86q\x04.', 'latin1')]));
  const refused = await lesionseg('predict', '-m', PLAIN, '-i', CASE, '-o', path.join(dir, 'refused.nii.gz'), '--postprocessing', hostile);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /hostile\.pkl: postprocessing: pickle \(byte 2\): refuses global posix\.system/);
  assert.ok(!refused.stderr.includes(STACK_LINE), refused.stderr);
  assert.equal(fs.existsSync(path.join(dir, 'refused.nii.gz')), false);
  fs.rmSync(dir, { recursive: true, force: true });
});
