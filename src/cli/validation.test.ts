/**
 * Issue 9 (part 3) as a user meets it (`node --import tsx src/cli/main.ts ...`): every class of bad
 * input is refused with exit status 2, one line on stderr without stack frames, before any long
 * work, and with nothing written (no mask, plan, cache, report or empty run folder). One test per
 * class: outputs that overwrite inputs or cannot be written; a step or memory need beyond the
 * limits; non-finite voxels; the one dataset validation of plan/preprocess/train and integer masks
 * of evaluate; a cache made with another plan; a device this machine lacks; --threads far above
 * the CPUs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadPlan, preprocessDataset, savePlan } from '../data/index.js';
import { readNifti, writeNifti } from '../io/index.js';
import { FIXTURES, TINY_CONFIG, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { writeSynthDataset } from '../synth/index.js';
import { cudaDeviceCount } from '../tensor/index.js';
import { lesionseg, type Run } from './test-support.js';


/** Exit 2, a single stderr line matching `pattern`, no stack frames. */
function refused(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 2, `exit ${run.code}\n${run.stderr}`);
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr:\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack frames');
  assert.match(lines[0]!, pattern);
}

/** Every path under `dir`, to show that a refused command wrote nothing. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-validation-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

/** A run with the tiny fixture U-Net, the phantom as ct.nii.gz, and a tiny COVID phantom dataset. */
const ready = (async () => {
  const model = fixtureUNet();
  writeTestCheckpoint(at('run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), at('ct.nii.gz'));
  await writeSynthDataset({ kind: 'covid', cases: 2, out: at('covid'), seed: 1, size: 'tiny' });
})();

test('predict: an output over an input, or below a file, is refused and the CT stays as it was', async () => {
  await ready;
  const before = tree(tmp);
  const ct = fs.readFileSync(at('ct.nii.gz'));
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at('ct.nii.gz')), /ct\.nii\.gz: -o would overwrite the input/);
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', tmp), /-o would overwrite the input .*ct\.nii\.gz/);
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at('ct.nii.gz', 'masks')), /-o: cannot be created: .*ct\.nii\.gz is a file, not a folder/);
  // A newline in a path is escaped: still one line, which no value can forge.
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('no\nlesionseg: such.nii.gz'), '-o', at('out.nii.gz')), /no\\nlesionseg: such\.nii\.gz: input not found$/);
  assert.deepEqual(tree(tmp), before);
  assert.deepEqual(fs.readFileSync(at('ct.nii.gz')), ct);
  // evaluate writes its reports after every case: an unwritable --json is refused first.
  refused(await lesionseg('evaluate', '--gt', at('covid', 'labelsTr'), '--pred', at('covid', 'labelsTr'), '--json', at('ct.nii.gz', 'report.json')), /--json: cannot be created: .*is a file/);
});

test('predict: --step 0.0001 and a memory need above --max-memory-gib are refused from the headers (not an out-of-memory abort)', async () => {
  await ready;
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at('out-step'), '--step', '0.0001'), /--step 0\.0001 implies .* sliding windows.*use a larger --step/);
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at('out-mem'), '--max-memory-gib', '0.000001'), /raise --max-memory-gib/);
  assert.equal(fs.existsSync(at('out-step')) || fs.existsSync(at('out-mem')), false);
});

test('predict: NaN voxels are refused as check refuses them, not predicted as an empty mask', async () => {
  await ready;
  const phantom = await readNifti(at('ct.nii.gz'));
  const data = Float32Array.from(phantom.data as Int16Array);
  data[3] = Number.NaN;
  await writeNifti(at('nan.nii.gz'), { ...phantom, data }, { datatype: 'float32' });
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('nan.nii.gz'), '-o', at('nan-mask.nii.gz'), '--no-tta'), /nan\.nii\.gz: 1 NaN and 0 infinite voxels/);
  assert.equal(fs.existsSync(at('nan-mask.nii.gz')), false);
});

test('plan, preprocess and train share one dataset validation; evaluate refuses non-integer masks', async () => {
  await ready;
  // A copy of the dataset whose first label holds 0.5: check, plan, preprocess and train all refuse it.
  const bad = at('covid_half');
  fs.cpSync(at('covid'), bad, { recursive: true });
  const labelFile = path.join(bad, 'labelsTr', fs.readdirSync(path.join(bad, 'labelsTr')).sort()[0]!);
  const label = await readNifti(labelFile);
  const half = Float32Array.from(label.data as Uint8Array);
  half[0] = 0.5;
  await writeNifti(labelFile, { ...label, data: half }, { datatype: 'float32' });
  for (const args of [['plan', bad, '--preset', 'tiny', '--out', at('bad-plan.json')], ['train', '--dataset', bad, '--out', at('bad-run'), '--preset', 'tiny']]) {
    const run = await lesionseg(...args);
    assert.equal(run.code, 2, run.stderr);
    assert.doesNotMatch(run.stderr, /^\s+at /m);
    assert.match(run.stderr, /covid_000\.nii\.gz: label map holds non-integer values \(0\.5\)/, 'the issue check lists');
  }
  assert.equal(fs.existsSync(at('bad-plan.json')) || fs.existsSync(at('bad-run')), false);

  // preprocess --plan of another dataset names both.
  ok(await lesionseg('plan', at('covid'), '--preset', 'tiny', '--out', at('covid-plan.json')));
  fs.cpSync(at('covid'), at('other'), { recursive: true });
  refused(await lesionseg('preprocess', at('other'), '--plan', at('covid-plan.json'), '--out', at('other-cache')), /covers 'covid', not the dataset 'other'/);
  assert.equal(fs.existsSync(at('other-cache')), false);

  // evaluate: the 0.5 is named with its file, and no report is written.
  refused(await lesionseg('evaluate', '--gt', path.join(bad, 'labelsTr'), '--pred', at('covid', 'labelsTr'), '--json', at('eval.json')), /covid_000\.nii\.gz: ground truth mask holds non-integer values \(first 0\.5 at voxel 0\)/);
  assert.equal(fs.existsSync(at('eval.json')), false);
});

function ok(run: Run): Run {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return run;
}

test('train: a cache made with another plan is refused naming the cache folder, --preprocessed and --force', async () => {
  await ready;
  if (!fs.existsSync(at('covid-plan.json'))) ok(await lesionseg('plan', at('covid'), '--preset', 'tiny', '--out', at('covid-plan.json')));
  const plan = loadPlan(at('covid-plan.json'));
  const coarse = { ...plan, configuration: { ...plan.configuration, targetSpacing: plan.configuration.targetSpacing.map((s) => s * 2) as [number, number, number] } };
  savePlan(at('coarse-plan.json'), coarse);
  await preprocessDataset(at('covid'), coarse, at('cache'), { workers: 0 });
  const cacheBefore = tree(at('cache'));
  refused(
    await lesionseg('train', '--dataset', at('covid'), '--plan', at('covid-plan.json'), '--preprocessed', at('cache'), '--out', at('cache-run'), '--fold', 'all', '--epochs', '1', '--iters-per-epoch', '1', '--workers', '0'),
    /cache: the preprocessed cache was made with another plan .*use another --preprocessed folder, or --force to replace it/,
  );
  assert.equal(fs.existsSync(at('cache-run')), false, 'no empty run folder');
  assert.deepEqual(tree(at('cache')), cacheBefore);
});

test('a CUDA device this machine lacks and --threads far above the CPUs are refused before anything runs', async () => {
  await ready;
  const device = `cuda:${cudaDeviceCount()}`; // one past the last device: absent on every machine
  refused(await lesionseg('train', '--dataset', at('covid'), '--out', at('gpu-run'), '--device', device, '--preset', 'tiny'), new RegExp(`--device ${device}: (no CUDA device|this machine has)`));
  assert.equal(fs.existsSync(at('gpu-run')), false, 'no empty run folder');
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at('gpu-mask.nii.gz'), '--device', device), /--device cuda:\d+/);
  refused(await lesionseg('bench', 'train-step', '--device', device, '--iterations', '1', '--warmup', '1'), /--device cuda:\d+/);
  const tooMany = String(os.availableParallelism() * 4 + 1);
  refused(await lesionseg('train', '--dataset', at('covid'), '--out', at('thread-run'), '--threads', tooMany), new RegExp(`--threads ${tooMany} is far above the \\d+ CPU`));
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at('thread-mask.nii.gz'), '--threads', tooMany), /--threads/);
  refused(await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at('thread-mask.nii.gz'), '--threads', 'busy'), /--threads must be auto or an integer >= 1, got 'busy'/);
  assert.equal(fs.existsSync(at('thread-run')) || fs.existsSync(at('gpu-mask.nii.gz')) || fs.existsSync(at('thread-mask.nii.gz')), false);
});
