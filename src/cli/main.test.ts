/**
 * The command line's contract with shells and scripts, checked by spawning it as a user runs it
 * (`node --import tsx src/cli/main.ts ...`): exit status 0 / 1 / 2 (README "Exit codes"), one-line
 * messages without stack traces, a closed pipe ending a command quietly, the missing-addon message,
 * and `info` reporting shape, spacing and affine in NIfTI's (i, j, k) order as nibabel does.
 *
 * Faults that cannot be made from the outside (a missing addon, a bug inside a command) are
 * injected by a small preload module given to `node --import`, so that no source file reads a
 * test-only environment variable (STYLE rule 14) and the real addon is never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { identityAffine, LesionsegError } from '../core/index.js';
import { writeNifti } from '../io/index.js';
import { loadBinding } from '../tensor/binding.js';
import { CLI } from './test-support.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STACK_LINE = '    at ';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-main-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface SpawnOptions {
  /** Modules to load first (`node --import`), for fault injection. */
  preload?: string[];
  env?: Record<string, string>;
  /** Close our end of the child's stdout (or stderr) before it writes anything. */
  closeStdout?: boolean;
  closeStderr?: boolean;
}

/** Run the CLI to its end; a closed stream reads as ''. */
function lesionseg(args: string[], options: SpawnOptions = {}): Promise<Run> {
  const preload = (options.preload ?? []).flatMap((file) => ['--import', file]);
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...options.env };
  if (options.env?.LESIONSEG_DEBUG === undefined) delete env.LESIONSEG_DEBUG;
  const child = spawn(process.execPath, [...preload, ...CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  // Destroying our read end closes the pipe: the child's first write then fails with EPIPE,
  // which is what `| head` does to a writer that is still writing (only sooner, so it always happens).
  if (options.closeStdout) child.stdout.destroy();
  else child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  if (options.closeStderr) child.stderr.destroy();
  else child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function assertOneLine(run: Run, pattern: RegExp): void {
  assert.ok(!run.stderr.includes(STACK_LINE), `stack trace in stderr:\n${run.stderr}`);
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${run.stderr}`);
  assert.match(lines[0]!, /^lesionseg: /);
  assert.match(lines[0]!, pattern);
}

/** A preload module (ESM, for `node --import`) with the given body. */
function preload(name: string, body: string): string {
  const file = path.join(tmp, `${name}.mjs`);
  fs.writeFileSync(file, body);
  return file;
}

/** A small image written by the project's writer (the pipe and exit-code tests only need a valid file). */
async function smallImage(): Promise<string> {
  const file = path.join(tmp, 'small.nii.gz');
  if (!fs.existsSync(file)) {
    const data = Int16Array.from({ length: 3 * 4 * 5 }, (_, i) => i);
    await writeNifti(file, { data, shape: [3, 4, 5], spacing: [2, 1, 1], affine: identityAffine([1, 1, 2]) });
  }
  return file;
}

// ---------------------------------------------------------------------------------------------
// A closed pipe

test('a reader that closes the pipe ends the command quietly (no EPIPE, no stack, status 0)', async () => {
  const file = await smallImage();
  const runs = await Promise.all([
    lesionseg(['info', file], { closeStdout: true }),
    lesionseg(['info', file, '--json'], { closeStdout: true }),
    lesionseg(['--help'], { closeStdout: true }),
  ]);
  for (const run of runs) {
    assert.equal(run.stderr, '', `stderr of a closed pipe:\n${run.stderr}`);
    assert.equal(run.code, 0);
  }
});

test('the same through a shell pipe into head, the way users met it', { skip: !fs.existsSync('/bin/sh') && 'no /bin/sh' }, async () => {
  const file = await smallImage();
  // `head -c 0` exits at once, long before the CLI (a second to start) writes: every write meets a
  // closed pipe. (`head -3` would read the whole report in one chunk here and rarely close early.)
  const command = `"${process.execPath}" ${CLI.map((arg) => `"${arg}"`).join(' ')} info "${file}" 2>"${path.join(tmp, 'head.err')}" | head -c 0`;
  const shell = spawnSync('/bin/sh', ['-c', command], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(shell.status, 0, shell.stderr);
  assert.equal(fs.readFileSync(path.join(tmp, 'head.err'), 'utf8'), '');
});

test('a closed stderr does not turn a usage error into a crash: still status 2', async () => {
  const run = await lesionseg(['info', '--bogus'], { closeStderr: true });
  assert.equal(run.code, 2);
  assert.equal(run.stdout, '');
});

// ---------------------------------------------------------------------------------------------
// Exit codes

test('exit 0: success, --help, --version, help COMMAND', async () => {
  const file = await smallImage();
  const [info, help, version, helpInfo] = await Promise.all([
    lesionseg(['info', file]),
    lesionseg(['--help']),
    lesionseg(['--version']),
    lesionseg(['help', 'info']),
  ]);
  for (const run of [info, help, version, helpInfo]) {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
  }
  assert.match(help.stdout, /^Usage: lesionseg /);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  assert.match(helpInfo.stdout, /^Usage: lesionseg info /);
});

test('exit 2: usage errors of commander, with its one-line message and the --help to read', async () => {
  const cases: [string[], RegExp][] = [
    [['info', '--bogus', 'x.nii'], /unknown option '--bogus' \(see 'lesionseg info --help'\)$/],
    [['info'], /missing required argument 'file' \(see 'lesionseg info --help'\)$/],
    [['synth', '--kind', 'measles', '--cases', '1', '--out', path.join(tmp, 'never')], /argument 'measles' is invalid\. Allowed choices are covid, tumor, gtv, effusion \(see 'lesionseg synth --help'\)$/],
    [['synth', '--kind', 'covid', '--out', path.join(tmp, 'never')], /required option '--cases <n>' not specified/],
    [['no-such-command'], /unknown command 'no-such-command' \(see 'lesionseg --help'\)$/],
  ];
  for (let start = 0; start < cases.length; start += 3) {
    const batch = cases.slice(start, start + 3);
    const runs = await Promise.all(batch.map(([args]) => lesionseg(args)));
    for (const [index, [args, message]] of batch.entries()) {
      const run = runs[index]!;
      assert.equal(run.code, 2, `${args.join(' ')}: exit ${run.code}\n${run.stderr}`);
      assertOneLine(run, message);
    }
  }
  assert.equal(fs.existsSync(path.join(tmp, 'never')), false);
  // No command at all: the overview goes to stderr, and it is still a usage error.
  const bare = await lesionseg([]);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /^Usage: lesionseg /);
});

test('exit 2: user errors (an InputError, a bad option value), one line, no stack trace', async () => {
  const [missing, badCount] = await Promise.all([
    lesionseg(['info', path.join(tmp, 'missing.nii.gz')]),
    lesionseg(['synth', '--kind', 'covid', '--cases', '0', '--out', path.join(tmp, 'never')]),
  ]);
  assert.equal(missing.code, 2);
  assertOneLine(missing, /missing\.nii\.gz: file not found$/);
  assert.equal(badCount.code, 2);
  assertOneLine(badCount, /--cases must be an integer >= 1, got '0'$/);
});

test('exit 1: an unexpected error is one line, its stack only with LESIONSEG_DEBUG=1', async () => {
  const file = await smallImage();
  // A bug inside a command: the first write of its result throws a TypeError.
  const bug = preload('bug', "process.stdout.write = () => { throw new TypeError('simulated bug in a command'); };\n");
  const [plain, debug] = await Promise.all([
    lesionseg(['info', file], { preload: [bug] }),
    lesionseg(['info', file], { preload: [bug], env: { LESIONSEG_DEBUG: '1' } }),
  ]);
  assert.equal(plain.code, 1, plain.stderr);
  assertOneLine(plain, /^lesionseg: internal error \(TypeError\): simulated bug in a command \(run with LESIONSEG_DEBUG=1 for the stack trace\)$/);
  assert.equal(debug.code, 1, debug.stderr);
  const [first, ...rest] = debug.stderr.split('\n');
  assert.equal(first, 'lesionseg: internal error (TypeError): simulated bug in a command');
  assert.ok(rest.some((line) => line.startsWith(STACK_LINE)), `no stack trace with LESIONSEG_DEBUG=1:\n${debug.stderr}`);
});

// ---------------------------------------------------------------------------------------------
// The addon missing or not loading

test('loadBinding: a missing addon is a LesionsegError naming the file and the set-up', () => {
  const missing = path.join(tmp, 'nowhere', 'lesionseg_native.node');
  assert.throws(
    () => loadBinding(missing),
    (error: unknown) =>
      error instanceof LesionsegError &&
      error.code === 'addon-missing' &&
      error.message.includes(missing) &&
      error.message.includes('npm run setup') &&
      error.message.includes('bash scripts/build.sh') &&
      !error.message.includes('\n'),
  );
  // A file that is there but is no addon (a broken build, another Node ABI).
  const broken = path.join(tmp, 'broken.node');
  fs.writeFileSync(broken, 'not a shared object');
  assert.throws(
    () => loadBinding(broken),
    (error: unknown) =>
      error instanceof LesionsegError && error.code === 'addon-unloadable' && error.message.includes(broken) && error.message.includes('npm run setup'),
  );
});

test('the CLI without its addon: the one-line message, exit 1, no stack trace', async () => {
  const file = await smallImage();
  // binding.ts checks the file with fs.existsSync: make it answer "no" for the addon only.
  const hidden = preload(
    'no-addon',
    [
      "import fs from 'node:fs';",
      "import { syncBuiltinESMExports } from 'node:module';",
      'const existsSync = fs.existsSync;',
      "fs.existsSync = (p) => (String(p).endsWith('lesionseg_native.node') ? false : existsSync(p));",
      'syncBuiltinESMExports();',
      '',
    ].join('\n'),
  );
  // The file is there but the dynamic loader fails, as when libtorch's libraries are not found.
  const unloadable = preload(
    'unloadable-addon',
    "process.dlopen = () => { throw new Error('libtorch_cpu.so: cannot open shared object file: No such file or directory'); };\n",
  );
  // The addon loads on its first use: `info` reads without it, `selftest` computes at once.
  const [missing, broken, info] = await Promise.all([
    lesionseg(['selftest', '--iterations', '1'], { preload: [hidden] }),
    lesionseg(['selftest', '--iterations', '1'], { preload: [unloadable] }),
    lesionseg(['info', file], { preload: [hidden] }),
  ]);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /shape/);
  assert.equal(missing.code, 1, missing.stderr);
  assertOneLine(missing, /the libtorch addon is not built: .*native\/build\/Release\/lesionseg_native\.node is missing; run `npm run setup`/);
  assert.equal(broken.code, 1, broken.stderr);
  assertOneLine(broken, /could not load the libtorch addon .*lesionseg_native\.node \(libtorch_cpu\.so: cannot open shared object file.*\); run `npm run setup`/);
});

// ---------------------------------------------------------------------------------------------
// info in NIfTI's (i, j, k) order

/**
 * A NIfTI-1 file built byte by byte, so the expected geometry is known without our reader or
 * writer: dims 5 x 6 x 7 (i, j, k), pixdim 0.7, 0.8, 2.5, an sform that turns i into +y and j into
 * -x (its column norms equal pixdim), qform_code 0; int16 voxels v(i, j, k) = i + 10 j + 100 k.
 */
function handWrittenNifti(file: string, pixdim: readonly number[] = [0.7, 0.8, 2.5]): void {
  const [ni, nj, nk] = [5, 6, 7];
  const header = Buffer.alloc(352);
  header.writeInt32LE(348, 0);
  [3, ni, nj, nk, 1, 1, 1, 1].forEach((value, index) => header.writeInt16LE(value, 40 + 2 * index));
  header.writeInt16LE(4, 70); // datatype int16
  header.writeInt16LE(16, 72); // bitpix
  [1, ...pixdim, 0, 0, 0, 0].forEach((value, index) => header.writeFloatLE(value, 76 + 4 * index));
  header.writeFloatLE(352, 108); // vox_offset
  header.writeFloatLE(1, 112); // scl_slope
  header.writeUInt8(2, 123); // xyzt_units: mm
  header.writeInt16LE(0, 252); // qform_code
  header.writeInt16LE(1, 254); // sform_code (scanner)
  const srows = [
    [0, -0.8, 0, 12.5],
    [0.7, 0, 0, -40.25],
    [0, 0, 2.5, -75],
  ];
  srows.forEach((row, r) => row.forEach((value, c) => header.writeFloatLE(value, 280 + 16 * r + 4 * c)));
  header.write('n+1\0', 344, 'latin1');
  const data = Buffer.alloc(ni * nj * nk * 2);
  for (let k = 0; k < nk; k++) {
    for (let j = 0; j < nj; j++) {
      for (let i = 0; i < ni; i++) data.writeInt16LE(i + 10 * j + 100 * k, 2 * (i + ni * (j + nj * k)));
    }
  }
  fs.writeFileSync(file, Buffer.concat([header, data]));
}

interface InfoJson {
  axes: string;
  geometrySource: string;
  geometryNote?: string;
  shape: number[];
  spacingMm: number[];
  affine: number[][];
  datatype: string;
  min: number;
  max: number;
  mean: number;
}

test('info: shape, spacing and affine in NIfTI (i, j, k) order, hand-computed', async () => {
  const file = path.join(tmp, 'hand.nii');
  handWrittenNifti(file);
  const [json, text] = await Promise.all([lesionseg(['info', file, '--json']), lesionseg(['info', file])]);
  assert.equal(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout) as InfoJson;
  assert.equal(info.axes, "ijk (NIfTI order, as nibabel's shape and get_zooms())");
  assert.deepEqual(info.shape, [5, 6, 7]);
  // The header holds float32: the values are exactly float32(0.7) etc., so equality is the right test.
  const f = Math.fround;
  assert.deepEqual(info.spacingMm, [f(0.7), f(0.8), f(2.5)]);
  assert.deepEqual(info.affine, [
    [0, f(-0.8), 0, 12.5],
    [f(0.7), 0, 0, -40.25],
    [0, 0, 2.5, -75],
    [0, 0, 0, 1],
  ]);
  assert.equal(info.geometrySource, 'sform');
  assert.equal(info.geometryNote, undefined);
  assert.equal(info.datatype, 'int16');
  // v = i + 10 j + 100 k over i < 5, j < 6, k < 7: min 0, max 4 + 50 + 600, mean 2 + 25 + 300.
  assert.equal(info.min, 0);
  assert.equal(info.max, 654);
  assert.equal(info.mean, 327);

  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /\n {2}shape {6}5 x 6 x 7 voxels \(i, j, k: NIfTI order, as nibabel\)\n/);
  assert.match(text.stdout, /\n {2}spacing {4}0\.7 x 0\.8 x 2\.5 mm \(i, j, k\)\n/);
  assert.match(text.stdout, /\n {2}affine {5}\[0, -0\.8, 0, 12\.5\]\n {13}\[0\.7, 0, 0, -40\.25\]\n {13}\[0, 0, 2\.5, -75\]\n/);
  assert.match(text.stdout, /\n {2}geometry {3}affine from the sform \(sform_code > 0\)\n/);
  assert.match(text.stdout, /\n {2}min\/max {4}0 \/ 654\n {2}mean {7}327\n/);
  assert.ok(!text.stdout.includes('  note '), text.stdout);
});

test('info: a pixdim that disagrees with the sform is named, and the sform is used', async () => {
  const file = path.join(tmp, 'hand_pixdim_1.nii');
  handWrittenNifti(file, [1, 1, 1]);
  const [json, text] = await Promise.all([lesionseg(['info', file, '--json']), lesionseg(['info', file])]);
  assert.equal(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout) as InfoJson;
  assert.equal(info.geometrySource, 'sform');
  // The sform's columns hold one non-zero each: their norms are those float32 values exactly.
  const f = Math.fround;
  assert.deepEqual(info.spacingMm, [f(0.7), f(0.8), f(2.5)]);
  assert.match(info.geometryNote ?? '', /pixdim \[1, 1, 1\] differs from the sform/);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /\n {2}note {7}pixdim \[1, 1, 1\] differs from the sform/);
});

/** The first python3 that imports nibabel: the one on PATH (a virtualenv, pyenv) or Debian's python3-nibabel. */
const PYTHON = ['python3', '/usr/bin/python3'].find((python) => spawnSync(python, ['-c', 'import nibabel'], { encoding: 'utf8' }).status === 0);

/** nibabel's img.shape, header.get_zooms() and img.affine of `file`, or null without nibabel. */
function nibabelGeometry(file: string): { shape: number[]; zooms: number[]; affine: number[][] } | null {
  const script = [
    'import json, sys',
    'try:',
    '    import nibabel as nib',
    'except ImportError:',
    '    sys.exit(3)',
    'img = nib.load(sys.argv[1])',
    'print(json.dumps({"shape": [int(n) for n in img.shape], "zooms": [float(z) for z in img.header.get_zooms()],',
    '                  "affine": [[float(v) for v in row] for row in img.affine]}))',
  ].join('\n');
  if (PYTHON === undefined) return null;
  const run = spawnSync(PYTHON, ['-c', script, file], { encoding: 'utf8' });
  if (run.error || run.status === 3) return null;
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { shape: number[]; zooms: number[]; affine: number[][] };
}

test('info agrees with nibabel (shape, get_zooms(), affine)', { skip: PYTHON === undefined && 'no python3 with nibabel (apt-get install python3-nibabel)' }, async () => {
  const hand = path.join(tmp, 'hand_nibabel.nii');
  handWrittenNifti(hand);
  // And one from our writer, oblique and gzipped, with x flipped (qfac -1 in its qform).
  const written = path.join(tmp, 'written.nii.gz');
  const angle = 0.3;
  const [c, s] = [Math.cos(angle), Math.sin(angle)];
  await writeNifti(written, {
    data: Float32Array.from({ length: 4 * 3 * 2 }, (_, i) => i / 4),
    shape: [4, 3, 2],
    spacing: [3, 1.25, 0.9],
    affine: [
      [-0.9 * c, -1.25 * s, 0, 100],
      [-0.9 * s, 1.25 * c, 0, -50],
      [0, 0, 3, 20],
      [0, 0, 0, 1],
    ],
  });
  // And a pixdim that disagrees with the sform: nibabel's get_zooms() is pixdim, our spacing the sform's.
  const disagreeing = path.join(tmp, 'hand_nibabel_pixdim_1.nii');
  handWrittenNifti(disagreeing, [1, 1, 1]);
  for (const file of [hand, written, disagreeing]) {
    const run = await lesionseg(['info', file, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const ours = JSON.parse(run.stdout) as InfoJson;
    const theirs = nibabelGeometry(file);
    assert.ok(theirs, 'nibabel disappeared');
    assert.deepEqual(ours.shape, theirs.shape, file);
    // nibabel's zooms are pixdim; our spacing is the sform's column norms, computed in float64
    // from float32 entries. Each entry and pixdim carry float32 rounding (2^-24 relative), so
    // 4 * 2^-24 bounds the gap with room; without agreement the note says so, and we compare
    // with the column norms of nibabel's affine instead.
    const expected = ours.geometryNote === undefined ? theirs.zooms : [0, 1, 2].map((c) => Math.hypot(...[0, 1, 2].map((r) => theirs.affine[r]![c]!)));
    for (let axis = 0; axis < 3; axis++) {
      const bound = 4 * 2 ** -24 * Math.abs(expected[axis]!);
      assert.ok(Math.abs(ours.spacingMm[axis]! - expected[axis]!) <= bound, `${file} spacing ${axis}: ${ours.spacingMm[axis]} vs ${expected[axis]}`);
    }
    for (let r = 0; r < 4; r++) {
      for (let col = 0; col < 4; col++) {
        // The sform is copied as stored; the qform path (none here) would add float64 rounding.
        assert.ok(Math.abs(ours.affine[r]![col]! - theirs.affine[r]![col]!) <= 1e-12 * (1 + Math.abs(theirs.affine[r]![col]!)), `${file} affine[${r}][${col}]`);
      }
    }
  }
});

/**
 * A 2D NIfTI-1 file (dim[0] = 2, dims 31 x 19) built byte by byte: pixdim 0.7, 0.8 and a third
 * pixdim 2.5 (which nibabel's qform uses), uint8 voxels from `mask(i, j)`, and the geometry codes
 * given (an sform with a 2.5 mm k column, a qform with the identity rotation, or neither).
 */
function twoDimensionalNifti(file: string, codes: { qform: number; sform: number }, mask: (i: number, j: number) => boolean = (i, j) => (i + j) % 3 === 0): void {
  const [ni, nj] = [31, 19];
  const header = Buffer.alloc(352);
  header.writeInt32LE(348, 0);
  [2, ni, nj, 1, 1, 1, 1, 1].forEach((value, index) => header.writeInt16LE(value, 40 + 2 * index));
  header.writeInt16LE(2, 70); // datatype uint8
  header.writeInt16LE(8, 72); // bitpix
  [1, 0.7, 0.8, 2.5, 0, 0, 0, 0].forEach((value, index) => header.writeFloatLE(value, 76 + 4 * index));
  header.writeFloatLE(352, 108); // vox_offset
  header.writeUInt8(2, 123); // xyzt_units: mm
  header.writeInt16LE(codes.qform, 252);
  header.writeInt16LE(codes.sform, 254);
  [3, -4, 5].forEach((value, index) => header.writeFloatLE(value, 268 + 4 * index)); // qoffset_x, y, z
  const srows = [
    [0.7, 0, 0, 3],
    [0, 0.8, 0, -4],
    [0, 0, 2.5, 5],
  ];
  srows.forEach((row, r) => row.forEach((value, c) => header.writeFloatLE(value, 280 + 16 * r + 4 * c)));
  header.write('n+1\0', 344, 'latin1');
  const data = Buffer.alloc(ni * nj);
  for (let j = 0; j < nj; j++) for (let i = 0; i < ni; i++) data[i + ni * j] = mask(i, j) ? 1 : 0;
  fs.writeFileSync(file, Buffer.concat([header, data]));
}

// Under CI (CI=true) it runs without nibabel too, and fails: a skipped reference test is a failure there.
test('info on a 2D NIfTI agrees with nibabel: shape [31, 19], two zooms, the affine of the sform, the qform or pixdim', { skip: PYTHON === undefined && process.env.CI !== 'true' && 'no python3 with nibabel (apt-get install python3-nibabel)' }, async () => {
  for (const [name, codes] of [['sform', { qform: 0, sform: 1 }], ['qform', { qform: 1, sform: 0 }], ['pixdim', { qform: 0, sform: 0 }]] as const) {
    const file = path.join(tmp, `flat_${name}.nii`);
    twoDimensionalNifti(file, codes);
    const [json, text] = await Promise.all([lesionseg(['info', file, '--json']), lesionseg(['info', file])]);
    assert.equal(json.code, 0, json.stderr);
    const ours = JSON.parse(json.stdout) as InfoJson;
    const theirs = nibabelGeometry(file);
    assert.ok(theirs, 'no python3 with nibabel (apt-get install python3-nibabel)');
    assert.deepEqual(ours.shape, theirs.shape, name);
    assert.deepEqual(theirs.shape, [31, 19]);
    assert.equal(ours.geometrySource, name);
    // Both are pixdim's float32 values, read as they are.
    assert.deepEqual(ours.spacingMm, theirs.zooms, name);
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) {
        const [a, b] = [ours.affine[r]![c]!, theirs.affine[r]![c]!];
        assert.ok(Math.abs(a - b) <= 1e-12 * (1 + Math.abs(b)), `${name} affine[${r}][${c}]: ${a} vs nibabel ${b}`);
      }
    }
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /\n {2}shape {6}31 x 19 voxels \(i, j: NIfTI order, as nibabel\); read as one slice of 31 x 19 x 1\n/);
  }
});

test('a 2D NIfTI is one slice to the computing commands: evaluate scores a 2D pair, the third axis spaced by the affine', async () => {
  const root = path.join(tmp, 'flat_eval');
  fs.mkdirSync(path.join(root, 'gt'), { recursive: true });
  fs.mkdirSync(path.join(root, 'pred'), { recursive: true });
  // A 10 x 8 rectangle, and the same shifted by one voxel along i: DSC = 2 * 9 * 8 / (80 + 80) = 0.9.
  twoDimensionalNifti(path.join(root, 'gt', 'c1.nii'), { qform: 0, sform: 1 }, (i, j) => i >= 5 && i < 15 && j >= 4 && j < 12);
  twoDimensionalNifti(path.join(root, 'pred', 'c1.nii'), { qform: 0, sform: 1 }, (i, j) => i >= 6 && i < 16 && j >= 4 && j < 12);
  const json = path.join(root, 'metrics.json');
  const run = await lesionseg(['evaluate', '--gt', path.join(root, 'gt'), '--pred', path.join(root, 'pred'), '--json', json]);
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(fs.readFileSync(json, 'utf8')) as { cases: { dsc: number; spacing_mm: number[]; pred_volume_ml: number }[] };
  const row = report.cases[0]!;
  const f = Math.fround;
  assert.ok(Math.abs(row.dsc - 0.9) < 1e-12, `${row.dsc}`);
  // z, y, x: the sform's k column (2.5 mm; a 2D header has no pixdim for it), then pixdim.
  assert.deepEqual(row.spacing_mm, [2.5, f(0.8), f(0.7)]);
  assert.ok(Math.abs(row.pred_volume_ml - (80 * 2.5 * f(0.8) * f(0.7)) / 1000) < 1e-15, `${row.pred_volume_ml}`);
});
