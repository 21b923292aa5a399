/**
 * Issue 21 part 3 as a user meets it: a two-channel case whose second channel lies on another grid
 * (its origin 1 mm off) is refused by predict (exit 2, one line naming the file) and by check,
 * plan, preprocess and train with the one code and the one message of core's same-grid test; the
 * same case with channel 1 moved by 0.004 voxel (under GRID_TOLERANCE_VOXELS) is accepted. The
 * voxel tests of the test itself (compareGrids against hand-computed distances) are in core/grid.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GRID_MISMATCH, type Affine } from '../core/index.js';
import { readNifti, writeNifti } from '../io/index.js';
import { PlainConvUNet } from '../models/index.js';
import { FIXTURES, TINY_CONFIG, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { writeSynthDataset } from '../synth/index.js';
import { lesionseg, STACK_LINE, type Run } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-grid-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

function refused(run: Run, pattern: RegExp): string {
  assert.equal(run.code, 2, `exit ${run.code}\n${run.stderr}`);
  assert.ok(!run.stderr.includes(STACK_LINE), `no stack frames:\n${run.stderr}`);
  assert.match(run.stderr, pattern);
  return run.stderr;
}

/** `file`'s image with its origin moved by `shiftMm` along world x, written to `out`. */
async function shifted(file: string, out: string, shiftMm: number): Promise<void> {
  const image = await readNifti(file);
  const affine = image.affine.map((row) => [...row]) as Affine;
  affine[0][3] += shiftMm;
  await writeNifti(out, { ...image, affine }, { datatype: image.datatype });
}

/** A copy of the tiny COVID dataset with a second channel (a copy of the first), channel 1 of covid_000 moved by `shiftMm`. */
async function twoChannelDataset(dir: string, source: string, shiftMm: number): Promise<string> {
  fs.cpSync(source, dir, { recursive: true });
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'dataset.json'), 'utf8')) as { channel_names: Record<string, string> };
  json.channel_names = { '0': 'CT', '1': 'CT' };
  fs.writeFileSync(path.join(dir, 'dataset.json'), JSON.stringify(json, null, 2));
  for (const id of ['covid_000', 'covid_001']) {
    const channel0 = path.join(dir, 'imagesTr', `${id}_0000.nii.gz`);
    await shifted(channel0, path.join(dir, 'imagesTr', `${id}_0001.nii.gz`), id === 'covid_000' ? shiftMm : 0);
  }
  return path.join(dir, 'imagesTr', 'covid_000_0001.nii.gz');
}

const ready = (async () => {
  await writeSynthDataset({ kind: 'covid', cases: 2, out: at('covid'), seed: 1, size: 'tiny' });
  // A two-channel model: the tiny U-Net with two input channels (weights as initialised; only the checks matter here).
  const config = { ...TINY_CONFIG, inputChannels: 2 };
  const model = new PlainConvUNet(config, { device: { type: 'cpu' } });
  const plan = tinyInferencePlan();
  plan.datasets[0]!.channelNames = { '0': 'CT', '1': 'CT' };
  plan.configuration.normalization = [plan.configuration.normalization[0]!, { ...plan.configuration.normalization[0]!, channel: 'CT' }];
  writeTestCheckpoint(at('run2'), 'checkpoint_final', model, config, plan);
  model.dispose();
})();

test('predict refuses a second channel on another grid (exit 2, one line naming the file) and accepts one 0.004 voxel off', async () => {
  await ready;
  const phantom = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  const voxel = Math.min(...phantom.spacing);
  for (const [folder, shiftMm] of [['far', 1], ['close', 0.004 * voxel]] as const) {
    fs.mkdirSync(at(folder), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), at(folder, 'ct_0000.nii.gz'));
    await shifted(at(folder, 'ct_0000.nii.gz'), at(folder, 'ct_0001.nii.gz'), shiftMm);
  }
  const far = await lesionseg('predict', '-m', at('run2'), '-i', at('far'), '-o', at('far-out'), '--no-tta');
  const stderr = refused(far, /^lesionseg: case 'ct': \S*far\/ct_0001\.nii\.gz: channel 1 does not lie on the grid of channel 0 \(\S*far\/ct_0000\.nii\.gz\): origin \[.*\] mm differs from its \[.*\]: voxel centres lie up to 1\.25 voxel apart \(tolerance 0\.01 voxel\)$/m); // 1 mm on 0.8 mm voxels
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.equal(fs.existsSync(at('far-out')), false, 'nothing written');
  const close = await lesionseg('predict', '-m', at('run2'), '-i', at('close'), '-o', at('close-out'), '--no-tta');
  assert.equal(close.code, 0, close.stderr);
  assert.ok(fs.existsSync(at('close-out', 'ct.nii.gz')));
});

test('check, plan, preprocess and train refuse the same case with the one code and message; 0.004 voxel off passes check', async () => {
  await ready;
  const bad = at('bad', 'covid');
  const badFile = await twoChannelDataset(bad, at('covid'), 1);
  const checked = await lesionseg('check', bad, '--json');
  assert.equal(checked.code, 1, checked.stderr);
  const issues = (JSON.parse(checked.stdout) as { issues: { file: string; code: string; message: string }[] }).issues;
  assert.deepEqual(issues.map((issue) => [issue.file, issue.code]), [[badFile, GRID_MISMATCH]]);
  const message = issues[0]!.message;
  assert.match(message, /^origin \[.*\] mm differs from channel image covid_000_0000\.nii\.gz's \[.*\]: voxel centres lie up to .* voxel apart \(tolerance 0\.01 voxel\)$/);
  const line = `${badFile}: ${message}`;
  refused(await lesionseg('plan', bad, '--preset', 'tiny', '--out', at('bad-plan.json')), new RegExp(escape(line)));
  const good = at('good', 'covid');
  await twoChannelDataset(good, at('covid'), 0);
  const planned = await lesionseg('plan', good, '--preset', 'tiny', '--out', at('good-plan.json'));
  assert.equal(planned.code, 0, planned.stderr);
  refused(await lesionseg('preprocess', bad, '--plan', at('good-plan.json'), '--out', at('bad-cache'), '--workers', '0'), new RegExp(escape(line)));
  refused(await lesionseg('train', '--dataset', bad, '--out', at('bad-run'), '--preset', 'tiny'), new RegExp(escape(line)));
  for (const out of ['bad-plan.json', 'bad-cache', 'bad-run']) assert.equal(fs.existsSync(at(out)), false, `${out}: nothing written`);

  const voxel = Math.min(...(await readNifti(path.join(good, 'imagesTr', 'covid_000_0000.nii.gz'))).spacing);
  const close = at('close', 'covid');
  await twoChannelDataset(close, at('covid'), 0.004 * voxel);
  const closeCheck = await lesionseg('check', close);
  assert.equal(closeCheck.code, 0, closeCheck.stdout);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
