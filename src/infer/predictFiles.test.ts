/**
 * `predict`'s entry function: files in, masks (and probabilities) out with the input geometry; bad
 * cases named. Every user error is refused before the first case is predicted and writes nothing:
 * outputs that would overwrite an input or cannot be written, a step or an image that implies too
 * many windows or too much memory, non-finite voxels in any case, a CUDA device this machine lacks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import { readNifti, writeNifti } from '../io/index.js';
import { cudaDeviceCount } from '../tensor/index.js';
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

/** A run folder with the fixture's tiny U-Net and an input folder holding the phantom as case p1. */
function setUp(): { dir: string; run: string; inputs: string; dispose: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-refuse-'));
  const model = fixtureUNet();
  writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  fs.mkdirSync(path.join(dir, 'in'));
  fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), path.join(dir, 'in', 'p1_0000.nii.gz'));
  return { dir, run: path.join(dir, 'run'), inputs: path.join(dir, 'in'), dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The names of every file and folder under `dir`, to show that a refusal wrote nothing. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

function refusal(code: string, pattern: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof InputError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

test('an output that would overwrite an input, the input folder itself, or a path that cannot be written is refused first', async () => {
  const { dir, run, inputs, dispose } = setUp();
  try {
    const ct = path.join(dir, 'ct.nii.gz');
    fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), ct);
    const before = tree(dir);
    const ctBytes = fs.readFileSync(ct);
    // -o the input file, -o its folder (ct.nii.gz would be written there), a link to it, the input folder.
    await assert.rejects(predictFiles({ model: run, input: ct, output: ct }), refusal('output-is-input', /ct\.nii\.gz: -o would overwrite the input .*ct\.nii\.gz/));
    await assert.rejects(predictFiles({ model: run, input: ct, output: dir }), refusal('output-is-input', /-o would overwrite the input/));
    fs.symlinkSync(ct, path.join(dir, 'link.nii.gz'));
    await assert.rejects(predictFiles({ model: run, input: path.join(dir, 'link.nii.gz'), output: ct }), refusal('output-is-input', /would overwrite the input/));
    fs.rmSync(path.join(dir, 'link.nii.gz'));
    await assert.rejects(predictFiles({ model: run, input: inputs, output: inputs }), refusal('output-is-input', /-o is the input folder/));
    // An ancestor that is a file: below the CT itself, or below another file.
    await assert.rejects(predictFiles({ model: run, input: inputs, output: path.join(ct, 'masks') }), refusal('bad-output', /cannot be created: .*ct\.nii\.gz is a file, not a folder/));
    await assert.rejects(predictFiles({ model: run, input: ct, output: path.join(ct, 'sub', 'mask.nii.gz') }), refusal('bad-output', /is a file, not a folder/));
    // A folder without write permission (root may write anywhere, so only checked as another user).
    if (process.getuid?.() !== 0) {
      const locked = path.join(dir, 'locked');
      fs.mkdirSync(locked, { mode: 0o555 });
      await assert.rejects(predictFiles({ model: run, input: inputs, output: path.join(locked, 'out') }), refusal('bad-output', /cannot write in .*locked \(permission denied\)/));
      fs.rmSync(locked, { recursive: true });
    }
    assert.deepEqual(tree(dir), before, 'nothing was written');
    assert.deepEqual(fs.readFileSync(ct), ctBytes, 'the CT is untouched');
  } finally {
    dispose();
  }
});

test('a step or an image that implies too many windows or too much memory is refused from the headers, naming the option', async () => {
  const { dir, run, inputs, dispose } = setUp();
  try {
    const out = path.join(dir, 'out');
    const started = performance.now();
    await assert.rejects(predictFiles({ model: run, input: inputs, output: out, stepFraction: 0.0001 }), refusal('too-many-windows', /case 'p1': --step 0\.0001 implies .* sliding windows .* over the limit of 1000000: use a larger --step/));
    assert.ok(performance.now() - started < 5000, 'refused without building the window list');
    await assert.rejects(predictFiles({ model: run, input: inputs, output: out, stepFraction: 0 }), refusal('bad-arguments', /--step must be a fraction of the patch in \(0, 1\]/));
    await assert.rejects(predictFiles({ model: run, input: inputs, output: out, stepFraction: 1.5 }), refusal('bad-arguments', /--step/));
    await assert.rejects(predictFiles({ model: run, input: inputs, output: out, maxMemoryBytes: 1024 }), refusal('too-large', /case 'p1' .* needs at least .* GiB of memory, over the limit of .*: raise --max-memory-gib/));
    await assert.rejects(predictFiles({ model: run, input: inputs, output: out, maxImageBytes: 100 }), refusal('too-large', /p1_0000\.nii\.gz: .*--max-image-gib/));
    assert.equal(fs.existsSync(out), false);
  } finally {
    dispose();
  }
});

test('NaN or infinite voxels in any case are refused before the first case is predicted, as check refuses them', async () => {
  const { dir, run, inputs, dispose } = setUp();
  try {
    const phantom = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
    const data = Float32Array.from(phantom.data as Int16Array);
    data[7] = Number.NaN;
    data[8] = Number.POSITIVE_INFINITY;
    // p1 is fine; p2, predicted second, holds the bad voxels: still nothing is predicted or written.
    await writeNifti(path.join(inputs, 'p2_0000.nii.gz'), { ...phantom, data }, { datatype: 'float32' });
    const out = path.join(dir, 'out');
    await assert.rejects(predictFiles({ model: run, input: inputs, output: out, mirrorAxes: [] }), refusal('non-finite', /case 'p2': .*p2_0000\.nii\.gz: 1 NaN and 1 infinite voxels/));
    assert.equal(fs.existsSync(out), false);
  } finally {
    dispose();
  }
});

test('a CUDA device this machine lacks is refused before the model is read', async () => {
  const { dir, run, inputs, dispose } = setUp();
  try {
    const missing = cudaDeviceCount(); // cuda:<count> never exists
    await assert.rejects(predictFiles({ model: run, input: inputs, output: path.join(dir, 'out'), device: { type: 'cuda', index: missing } }), refusal('device-unavailable', /--device cuda:\d+: (no CUDA device|this machine has)/));
    assert.equal(fs.existsSync(path.join(dir, 'out')), false);
  } finally {
    dispose();
  }
});
