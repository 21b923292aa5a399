/**
 * The data commands as a user runs them (`node --import tsx src/cli/main.ts ...`): synth -> check ->
 * plan -> preprocess on tiny phantoms of the four lesion kinds, info, import, and the bad-input paths
 * (non-zero exit, the file named, never a stack trace).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Command } from '@commander-js/extra-typings';
import { identityAffine, SILENT_PROGRESS, type Shape3, type TypedArray } from '../core/index.js';
import { readNpy, writeNifti } from '../io/index.js';
import { registerDataCommands } from './data-commands.js';
import { STACK_LINE, lesionseg, type Run } from './test-support.js';


function noStack(run: Run): void {
  assert.ok(!run.stderr.includes(STACK_LINE), `stack trace in stderr:\n${run.stderr}`);
  assert.ok(!run.stdout.includes(STACK_LINE), `stack trace in stdout:\n${run.stdout}`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-data-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The data commands in this process (as main.ts registers them), with stdout captured. */
async function inProcess(...args: string[]): Promise<{ stdout: string; exitCode: number }> {
  let stdout = '';
  const program = new Command().exitOverride();
  registerDataCommands(program, { stdout: { write: (text: string) => (stdout += text) }, progress: () => SILENT_PROGRESS });
  const before = process.exitCode;
  await program.parseAsync(args, { from: 'user' });
  const exitCode = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { stdout, exitCode };
}

test('synth -> check -> plan -> preprocess on tiny phantoms of all four kinds', async () => {
  const kinds = ['covid', 'tumor', 'gtv', 'effusion'] as const;
  const datasets = kinds.map((kind) => path.join(tmp, `synth_${kind}`));
  for (const [index, kind] of kinds.entries()) {
    const synth = await inProcess('synth', '--kind', kind, '--cases', '2', '--size', 'tiny', '--seed', '3', '--out', datasets[index]!);
    assert.match(synth.stdout, new RegExp(`synth: 2 ${kind} cases \\(tiny, seed 3\\)`));
    const check = await inProcess('check', datasets[index]!, '--json');
    assert.equal(check.exitCode, 0, check.stdout);
    assert.deepEqual(JSON.parse(check.stdout), { issues: [], cases: 2 });
  }
  // One plan pooled over the four datasets (the multi-lesion set-up; fingerprinting costs the same).
  const planFile = path.join(tmp, 'plan_tiny.json');
  const plan = await inProcess('plan', ...datasets, '--preset', 'tiny', '--out', planFile);
  assert.match(plan.stdout, /plan \(tiny\) for .*synth_covid, .*synth_effusion: patch \d+x\d+x\d+, batch \d+/);
  const written = JSON.parse(fs.readFileSync(planFile, 'utf8')) as { preset: string; datasets: unknown[]; configuration: { patchSize: number[] } };
  assert.equal(written.preset, 'tiny');
  assert.equal(written.datasets.length, 4);
  for (const [index, kind] of kinds.entries()) {
    const cache = path.join(tmp, `cache_${kind}`);
    const pre = await inProcess('preprocess', datasets[index]!, '--plan', planFile, '--out', cache, '--workers', '0');
    assert.match(pre.stdout, /preprocess: 2 cases written, 0 already done/);
    const data = readNpy(path.join(cache, `${kind}_001.npy`));
    const seg = readNpy(path.join(cache, `${kind}_001_seg.npy`));
    assert.equal(data.shape[0], 1);
    assert.deepEqual(seg.shape.slice(1), data.shape.slice(1));
  }
  // The default cache folder sits beside the dataset; a second run skips the finished cases.
  const again = await inProcess('preprocess', datasets[0]!, '--plan', planFile, '--workers', '0');
  assert.match(again.stdout, /preprocess: 2 cases written, 0 already done, in .*synth_covid_preprocessed/);
  const skip = await inProcess('preprocess', datasets[0]!, '--plan', planFile, '--workers', '0');
  assert.match(skip.stdout, /preprocess: 0 cases written, 2 already done/);
});

test('the spawned command line runs a command end to end (synth, check)', async () => {
  const dataset = path.join(tmp, 'spawned');
  const synth = await lesionseg('synth', '--kind', 'tumor', '--cases', '1', '--size', 'tiny', '--out', dataset);
  assert.equal(synth.code, 0, synth.stderr);
  const check = await lesionseg('check', dataset);
  assert.equal(check.code, 0, check.stdout);
  assert.match(check.stdout, /1 cases, no problems found/);
});

test('info prints shape, spacing, affine, datatype and min/max/mean (text and --json)', async () => {
  const file = path.join(tmp, 'info.nii.gz');
  const values = Int16Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10 - 100);
  await writeNifti(file, { data: values, shape: [2, 3, 4], spacing: [2.5, 0.8, 0.7], affine: identityAffine([0.7, 0.8, 2.5]) });
  const json = await lesionseg('info', file, '--json');
  assert.equal(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout) as Record<string, unknown>;
  // NIfTI's (i, j, k) order, as nibabel: the reverse of the volume's [z, y, x] (main.test.ts has more).
  assert.deepEqual(info.shape, [4, 3, 2]);
  assert.deepEqual((info.spacingMm as number[]).map((s) => Number(s.toFixed(5))), [0.7, 0.8, 2.5]);
  assert.equal(info.datatype, 'int16');
  assert.equal(info.min, -100);
  assert.equal(info.max, 130);
  assert.equal(info.mean, 15);
  assert.equal(info.nonFinite, 0);
  const text = await lesionseg('info', file);
  assert.match(text.stdout, /shape {6}4 x 3 x 2 voxels \(i, j, k/);
  assert.match(text.stdout, /min\/max {4}-100 \/ 130/);
});

async function nifti(file: string, data: TypedArray, shape: Shape3 = [2, 3, 4]): Promise<void> {
  await writeNifti(file, { data, shape, spacing: [2, 1, 1], affine: identityAffine([1, 1, 2]) });
}

test('bad input: exit code, the file named, no stack trace', async () => {
  const ok = () => Int16Array.from({ length: 24 }, (_, i) => i - 12);
  const label = () => Uint8Array.from({ length: 24 }, (_, i) => (i % 5 === 0 ? 1 : 0));
  // A truncated .nii.gz.
  const good = path.join(tmp, 'good.nii.gz');
  await nifti(good, ok());
  const truncated = path.join(tmp, 'truncated.nii.gz');
  fs.writeFileSync(truncated, fs.readFileSync(good).subarray(0, 60));
  // A 4D image: 4 x 3 x 4 voxels written as 3D, then the header patched to dims x 4, y 3, z 2, t 2.
  const fourD = path.join(tmp, 'fourd.nii');
  await nifti(fourD, Int16Array.from({ length: 48 }), [4, 3, 4]);
  const bytes = fs.readFileSync(fourD);
  bytes.writeInt16LE(4, 40);
  bytes.writeInt16LE(2, 46);
  bytes.writeInt16LE(2, 48);
  fs.writeFileSync(fourD, bytes);

  const infoFiles = [truncated, fourD, path.join(tmp, 'missing.nii.gz')];
  const infoRuns = await Promise.all(infoFiles.map((file) => lesionseg('info', file)));
  for (const [index, file] of infoFiles.entries()) {
    const run = infoRuns[index]!;
    assert.equal(run.code, 2, `${file}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`^lesionseg: ${file.replace(/[.]/g, '\\.')}: `));
    noStack(run);
  }

  // One dataset with every kind of problem; check lists all of them and exits 1.
  const dataset = path.join(tmp, 'bad_dataset');
  fs.mkdirSync(dataset);
  fs.writeFileSync(path.join(dataset, 'dataset.json'), JSON.stringify({ channel_names: { '0': 'CT' }, labels: { background: 0, lesion: 1 }, file_ending: '.nii.gz' }));
  const image = (id: string) => path.join(dataset, 'imagesTr', `${id}_0000.nii.gz`);
  const labelFile = (id: string) => path.join(dataset, 'labelsTr', `${id}.nii.gz`);
  await nifti(image('a_ok'), ok());
  await nifti(labelFile('a_ok'), label());
  fs.copyFileSync(truncated, image('b_truncated'));
  await nifti(labelFile('b_truncated'), label());
  await nifti(image('c_shape'), ok());
  await nifti(labelFile('c_shape'), Uint8Array.from({ length: 18 }), [2, 3, 3]);
  await nifti(image('d_values'), ok());
  await nifti(labelFile('d_values'), Uint8Array.from({ length: 24 }, (_, i) => i % 3));
  await nifti(image('e_nan'), Float32Array.from({ length: 24 }, (_, i) => (i === 7 ? NaN : i)));
  await nifti(labelFile('e_nan'), label());
  const outside = path.join(tmp, 'outside.nii.gz');
  await nifti(outside, ok());
  fs.symlinkSync(outside, image('f_outside'));
  await nifti(labelFile('f_outside'), label());
  fs.writeFileSync(image('g_fourd'), zlib.gzipSync(fs.readFileSync(fourD)));
  await nifti(labelFile('g_fourd'), label());

  const [check, json, plan, checkFile, badPreset, badImport, badPlanFile] = await Promise.all([
    lesionseg('check', dataset),
    lesionseg('check', dataset, '--json'),
    lesionseg('plan', dataset, '--preset', 'tiny', '--out', path.join(tmp, 'bad_plan.json')),
    lesionseg('check', good),
    lesionseg('plan', dataset, '--preset', 'huge', '--out', path.join(tmp, 'p.json')),
    lesionseg('import', 'msd-lung', path.join(tmp, 'no_such_release'), '--out', path.join(tmp, 'imported')),
    lesionseg('preprocess', path.join(tmp, 'synth_covid'), '--plan', path.join(tmp, 'nope.json')),
  ]);
  assert.equal(check.code, 1, check.stderr);
  noStack(check);
  const expectations: [string, RegExp][] = [
    [path.join(dataset, 'dataset.json'), /numTraining is missing \(missing-field\)/],
    [image('b_truncated'), /truncated|too short|corrupt/],
    [labelFile('c_shape'), /shape \[2, 3, 3\].*differs/],
    [labelFile('d_values'), /label values 2 are not declared/],
    [image('e_nan'), /1 NaN/],
    [image('f_outside'), /outside the dataset folder \(outside-dataset\)/],
    [image('g_fourd'), /only 3D images are supported \(not-3d\)/],
  ];
  for (const [file, message] of expectations) {
    const line = check.stdout.split('\n').find((text) => text.startsWith(`${file}`));
    assert.ok(line, `no problem reported for ${file}:\n${check.stdout}`);
    assert.match(line, message);
  }
  assert.ok(!check.stdout.split('\n').some((text) => text.startsWith(image('a_ok'))), 'the good case was reported');
  assert.equal(json.code, 1);
  const parsed = JSON.parse(json.stdout) as { issues: { file: string; code: string }[]; cases: number };
  assert.equal(parsed.cases, 7);
  assert.ok(parsed.issues.length >= 7);

  // Commands that need a valid dataset refuse it with exit 2, naming dataset.json.
  assert.equal(plan.code, 2, plan.stderr);
  assert.match(plan.stderr, /dataset\.json/);
  noStack(plan);
  assert.equal(fs.existsSync(path.join(tmp, 'bad_plan.json')), false);

  assert.equal(checkFile.code, 2);
  assert.match(checkFile.stderr, /good\.nii\.gz: is a file/);
  assert.equal(badPreset.code, 2);
  assert.match(badPreset.stderr, /unknown preset 'huge': use one of/);
  assert.equal(badImport.code, 2);
  assert.match(badImport.stderr, /no_such_release: source folder not found/);
  assert.equal(badPlanFile.code, 2);
  assert.match(badPlanFile.stderr, /nope\.json: cannot read the plan file/);
  for (const run of [checkFile, badPreset, badImport, badPlanFile]) noStack(run);
});
