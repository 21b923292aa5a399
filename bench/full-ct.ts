/**
 * A full-size chest CT through the real `lesionseg predict`, in the modes issue 14 asks about:
 * one `synth --size paper` phantom (120 x 512 x 512 at 0.74 x 0.74 x 2.6 mm), a run of the `cpu`
 * preset's network (patch 24 x 112 x 96, features 16..256; trained for one iteration, so its
 * masks are noise, its timing is that of any trained network of the plan), then
 * - fp32: `--no-tta --precision fp32 --batch 2 --no-skip-background` (the settings the issue timed),
 * - default: `--no-tta` (precision auto, batch auto, step 0.5, every window run),
 * - fast: `--fast` (no mirroring, step 0.75, windows outside the body skipped),
 * - fast x2: two `--fast` predictions started together (the shared-machine case),
 * - tta: no flags (predict's default since issue 24: adaptive mirroring, results/tta),
 * - tta-full: `--tta full` (every window's 8 mirrored passes, nnU-Net's),
 * - tta-share-S, tta-margin-L: adaptive mirroring with `--tta-share S` or `--tta-margin L`,
 * - margins: no prediction; the un-mirrored pass of 13 windows spread over the CT (bf16 where
 *   native), each one's class-1-minus-class-0 logit range and the fraction of its voxels within
 *   0.5 logit of the boundary (what adaptive mirroring decides on), and how many of all the
 *   windows hold one value per channel (they share one forward pass),
 * each in its own process, timed from outside (wall, and user + system CPU seconds by /usr/bin/time)
 * and by its own stages (`--json`).
 * The network: by default a one-iteration run on the phantom itself. --train-cases N trains it
 * instead on N other phantoms of the same size (seed 1; the timed CT is seed 0, case 0), with the
 * plan `plan --preset cpu` makes of the timed phantom (the one-iteration run's grid and windows), for
 * --epochs E x --iters I iterations (`--precision auto`), so that its masks mean something and
 * adaptive mirroring decides as it does on a trained model; --run DIR keeps that run in DIR (or
 * reuses DIR when it holds a run already). Each mode's mask is then compared with the phantom's
 * label (DSC, NSD at 1 mm) and with `tta-full`'s (equal voxels, DSC) where that mode ran.
 * --slices N resamples the phantom along z to N slices first (linear, the same 312 mm; e.g. 300 for
 * the 512 x 512 x 300 CT whose memory issue 14 bounds); predict resamples it to the plan's spacing
 * and its logits back to N slices.
 * Usage: npx tsx bench/full-ct.ts [--modes fp32,default,fast,fast-x2,tta,tta-full] [--size paper] [--slices N]
 *        [--train-cases N [--epochs E] [--iters I]] [--run DIR] [--keep-masks DIR] [--out FILE]
 * Prints one JSON object with the CPU.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { writeSynthDataset, type SynthSize } from '../src/synth/index.js';
import { readNifti, writeNifti } from '../src/io/index.js';
import { dice, labelMask, normalizedSurfaceDice } from '../src/eval/index.js';
import { preprocessCase, resampleVolumeToShape } from '../src/data/index.js';
import type { Affine, Shape3 } from '../src/core/index.js';
import { Predictor, findUniformWindows, paddedShape, paddingToPatch, slidingWindowBoxes, type Triple } from '../src/infer/index.js';
import { resolvePrecisionFlag } from '../src/cli/precision.js';
import { autocast, cast, contiguous, fromArray, narrow, noGrad, pad, scope, stack, type Tensor } from '../src/tensor/index.js';
import { option, report } from './support.js';

const CPU = { type: 'cpu' } as const;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin/lesionseg.js');
const MODES: Record<string, string[]> = {
  fp32: ['--no-tta', '--precision', 'fp32', '--batch', '2', '--no-skip-background'],
  default: ['--no-tta'],
  fast: ['--fast'],
  tta: [],
  'tta-full': ['--tta', 'full'],
};
const modes = option('modes', 'fp32,default,fast,fast-x2').split(',');
// Adaptive mirroring with another rule: tta-share-S (`--tta-share S`), tta-margin-L (`--tta-margin L`).
for (const mode of modes) {
  const rule = /^tta-(share|margin)-(\d+(?:\.\d+)?)$/.exec(mode);
  if (rule !== null) MODES[mode] = [`--tta-${rule[1]}`, rule[2]!];
}
const size = option('size', 'paper') as SynthSize;
const slices = Number(option('slices', '0'));
const trainCases = Number(option('train-cases', '0'));
const epochs = option('epochs', '4');
const iters = option('iters', '50');
const keptRun = option('run', '');
// A folder to copy every mode's mask into (and the label), for comparing other modes later.
const keepMasks = option('keep-masks', '');
if (!existsSync('/usr/bin/time')) throw new Error('bench/full-ct needs /usr/bin/time (Debian package time) for the CPU seconds of each run');

interface CaseJson {
  shape: number[];
  seconds: Record<string, unknown>;
  peakRssMiB: Record<string, number>;
  windows: { total: number; run: number; batch?: unknown };
}

/** One `predict` child: wall seconds from outside and its JSON record of the case. */
function predict(run: string, image: string, out: string, extra: string[]): Promise<{ wall_seconds: number; cpu_seconds: number; case: CaseJson; stderr_tail: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const timing = `${out}.time`;
    const child = spawn('/usr/bin/time', ['-o', timing, '-f', '%U %S', process.execPath, cli, 'predict', '-m', run, '-i', image, '-o', out, '--json', '--verbose', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`predict ${extra.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      const result = JSON.parse(stdout) as { cases: CaseJson[] };
      const [user, system] = fs.readFileSync(timing, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
      const lines = stderr.split(/\r|\n/).filter((l) => l.trim() !== '' && !/^sliding window: \d+\/\d+/.test(l.trim()));
      resolve({ wall_seconds: wall, cpu_seconds: user! + system!, case: result.cases[0]!, stderr_tail: lines.slice(-16).join('\n') });
    });
  });
}

/** The un-mirrored logits of windows spread over the case (mode margins). */
async function unmirroredMargins(run: string, image: string) {
  const precision = resolvePrecisionFlag('auto', CPU);
  const predictor = Predictor.fromCheckpoints([path.join(run, 'checkpoint_final.safetensors')], { precision });
  try {
    const pre = preprocessCase([await readNifti(image)], null, predictor.plan, { caseId: 'covid_000' });
    const patch = predictor.plan.configuration.patchSize as Triple;
    const padding = paddingToPatch(pre.shape.slice(1), patch);
    const boxes = slidingWindowBoxes(paddedShape(pre.shape.slice(1), padding), patch, 0.5);
    const windows: { start: number[]; min: number; max: number; within_half_logit: number }[] = [];
    let uniform = 0;
    noGrad(() => scope(() => {
      const padded = pad(fromArray(pre.data, pre.shape), [padding[2].before, padding[2].after, padding[1].before, padding[1].after, padding[0].before, padding[0].after]);
      // Windows of one value per channel (they share one pass: src/infer/uniformWindows.ts), every window counted as nnU-Net runs them.
      uniform = [...findUniformWindows(padded, boxes, patch).kind].filter((k) => k >= 0).length;
      for (let i = 0; i < boxes.length; i += Math.floor(boxes.length / 12)) scope(() => {
        let window = padded;
        for (let a = 0; a < 3; a++) window = narrow(window, a + 1, boxes[i]!.start[a]!, patch[a]!);
        const run1 = (): Tensor => predictor.engines[0]!.run(stack([window], 0)) as Tensor;
        const out = contiguous(cast(precision === 'fp32' ? run1() : autocast({ device: CPU, dtype: 'bfloat16' }, run1), 'float32')).toFloat32Array();
        const P = out.length / 2;
        let min = Infinity; let max = -Infinity; let near = 0;
        for (let v = 0; v < P; v++) {
          const d = out[P + v]! - out[v]!;
          min = Math.min(min, d); max = Math.max(max, d); if (Math.abs(d) < 0.5) near++;
        }
        windows.push({ start: [...boxes[i]!.start], min, max, within_half_logit: near / P });
      });
    }));
    return { precision, windows_total: boxes.length, uniform_windows: uniform, windows };
  } finally {
    predictor.dispose();
  }
}

/** Each mode's mask against the label (DSC, NSD at 3 mm) and against `tta-full`'s (equal voxels, DSC). */
async function masksAgainst(labelFile: string, folder: string, predicted: string[]) {
  const label = await readNifti(labelFile);
  const reference = { data: labelMask(label.data, 1), shape: label.shape };
  const maps: Record<string, { labels: Uint8Array; mask: { data: Uint8Array; shape: typeof label.shape } }> = {};
  for (const mode of predicted) {
    const mask = await readNifti(path.join(folder, `${mode}.nii.gz`));
    maps[mode] = { labels: Uint8Array.from(mask.data as ArrayLike<number>), mask: { data: labelMask(mask.data, 1), shape: mask.shape } };
  }
  const full = maps['tta-full'];
  return Object.fromEntries(predicted.map((mode) => {
    const m = maps[mode]!;
    let same = 0;
    if (full !== undefined) for (let i = 0; i < m.labels.length; i++) if (m.labels[i] === full.labels[i]) same++;
    return [mode, {
      dice_to_label: dice(m.mask, reference),
      nsd_3mm_to_label: normalizedSurfaceDice(m.mask, reference, label.spacing, 3),
      foreground_voxels: m.mask.data.reduce((n, v) => n + v, 0),
      ...(full !== undefined ? { equal_voxels_to_tta_full: same / m.labels.length, dice_to_tta_full_mask: dice(m.mask, full.mask) } : {}),
    }];
  }));
}

let shape: number[] | null = null;
function summarize(r: Awaited<ReturnType<typeof predict>>) {
  shape ??= r.case.shape;
  return {
    wall_seconds: r.wall_seconds,
    cpu_seconds: r.cpu_seconds,
    peak_rss_mib: Math.max(...Object.values(r.case.peakRssMiB)),
    windows: r.case.windows,
    stages_seconds: r.case.seconds,
    stages_peak_rss_mib: r.case.peakRssMiB,
    log: r.stderr_tail,
  };
}

const loadAtStart = os.loadavg();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-full-ct-'));
try {
  const dataset = path.join(dir, 'ct');
  await writeSynthDataset({ kind: 'covid', cases: 1, out: dataset, seed: 0, size });
  const image = path.join(dataset, 'imagesTr', 'covid_000_0000.nii.gz');
  const run = keptRun !== '' ? path.resolve(keptRun) : path.join(dir, 'run');
  let training: Record<string, unknown>;
  if (fs.existsSync(path.join(run, 'checkpoint_final.safetensors'))) {
    process.stderr.write(`bench/full-ct: the run in ${run} ...\n`);
    training = { reused_run: run };
  } else if (trainCases > 0) {
    const trainSet = path.join(dir, 'train');
    await writeSynthDataset({ kind: 'covid', cases: trainCases, out: trainSet, seed: 1, size });
    process.stderr.write(`bench/full-ct: the cpu preset trained on ${trainCases} other phantoms, ${epochs} x ${iters} iterations ...\n`);
    const started = performance.now();
    // The plan of the timed phantom (as the one-iteration run has it: the same grid and windows).
    const planFile = path.join(dir, 'plan.json');
    execFileSync(process.execPath, [cli, 'plan', dataset, '--preset', 'cpu', '--out', planFile], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(process.execPath, [cli, 'train', '--dataset', trainSet, '--out', run, '--plan', planFile, '--epochs', epochs, '--iters-per-epoch', iters, '--val-iters', '2', '--fold', 'all', '--precision', 'auto'], { stdio: ['ignore', 'ignore', 'inherit'] });
    training = { cases: `synth --kind covid --size ${size} --seed 1 --cases ${trainCases}`, plan: 'lesionseg plan --preset cpu on the timed phantom', epochs: Number(epochs), iterations_per_epoch: Number(iters), precision: 'auto', wall_seconds: (performance.now() - started) / 1000 };
  } else {
    process.stderr.write('bench/full-ct: a one-iteration run of the cpu preset ...\n');
    execFileSync(process.execPath, [cli, 'train', '--dataset', dataset, '--out', run, '--preset', 'cpu', '--epochs', '1', '--iters-per-epoch', '1', '--val-iters', '1', '--fold', 'all'], { stdio: ['ignore', 'ignore', 'inherit'] });
    training = { iterations: 1, on: 'the timed phantom' };
  }
  // After training, so that the plan keeps the phantom's 2.6 mm.
  if (slices > 0) {
    const ct = await readNifti(image);
    const shapeZ: Shape3 = [slices, ct.shape[1], ct.shape[2]];
    const factor = ct.shape[0] / slices;
    const spacing: Shape3 = [ct.spacing[0] * factor, ct.spacing[1], ct.spacing[2]];
    const affine = ct.affine.map((row) => [row[0], row[1], row[2] * factor, row[3]]) as Affine;
    if (ct.data instanceof BigInt64Array || ct.data instanceof BigUint64Array) throw new Error(`${image}: a 64-bit integer CT`);
    const data = resampleVolumeToShape({ data: ct.data, shape: ct.shape }, shapeZ, ct.spacing, spacing).data;
    await writeNifti(image, { data: Int16Array.from(data, Math.round), shape: shapeZ, spacing, affine }, { header: ct.header });
  }
  const plan = JSON.parse(fs.readFileSync(path.join(run, 'plan.json'), 'utf8')) as { configuration: { patchSize: number[]; targetSpacing: number[]; network: { featuresPerStage: number[] } } };
  const results: Record<string, unknown> = {};
  for (const mode of modes) {
    process.stderr.write(`bench/full-ct: ${mode} ...\n`);
    if (mode === 'margins') {
      results[mode] = await unmirroredMargins(run, image);
    } else if (mode === 'fast-x2') {
      const pair = await Promise.all([0, 1].map((i) => predict(run, image, path.join(dir, `fast-x2-${i}.nii.gz`), MODES.fast!)));
      results[mode] = { processes: pair.map(summarize), wall_seconds_max: Math.max(...pair.map((r) => r.wall_seconds)) };
    } else {
      if (MODES[mode] === undefined) throw new Error(`unknown mode ${mode}`);
      results[mode] = { args: MODES[mode], ...summarize(await predict(run, image, path.join(dir, `${mode}.nii.gz`), MODES[mode]!)) };
    }
    // Each mode as it ends (a long run that is stopped keeps what it measured).
    process.stderr.write(`bench/full-ct: ${mode} ${JSON.stringify(results[mode])}\n`);
  }
  if (keepMasks !== '') {
    fs.mkdirSync(keepMasks, { recursive: true });
    for (const mode of Object.keys(results).filter((m) => MODES[m] !== undefined)) fs.copyFileSync(path.join(dir, `${mode}.nii.gz`), path.join(keepMasks, `${mode}.nii.gz`));
    fs.copyFileSync(path.join(dataset, 'labelsTr', 'covid_000.nii.gz'), path.join(keepMasks, 'label.nii.gz'));
  }
  const accuracy = await masksAgainst(path.join(dataset, 'labelsTr', 'covid_000.nii.gz'), dir, Object.keys(results).filter((m) => MODES[m] !== undefined));
  const wall = (mode: string): number | null => (results[mode] as { wall_seconds?: number; wall_seconds_max?: number } | undefined)?.wall_seconds ?? (results[mode] as { wall_seconds_max?: number } | undefined)?.wall_seconds_max ?? null;
  const ratio = (a: string, b: string): number | null => (wall(a) !== null && wall(b) !== null ? wall(a)! / wall(b)! : null);
  const cpu = (mode: string): number | null => (results[mode] as { cpu_seconds?: number } | undefined)?.cpu_seconds ?? null;
  const cpuRatio = (a: string, b: string): number | null => (cpu(a) !== null && cpu(b) !== null ? cpu(a)! / cpu(b)! : null);
  const result = {
    benchmark: 'full-ct',
    cpu: cpuInfo(),
    load_average_at_start: loadAtStart,
    load_average_at_end: os.loadavg(),
    phantom: { size, shape: shape, image: `synth --kind covid --size ${size} --seed 0${slices > 0 ? `, resampled along z to ${slices} slices` : ''}` },
    plan: { preset: 'cpu', patch: plan.configuration.patchSize, target_spacing: plan.configuration.targetSpacing, features: plan.configuration.network.featuresPerStage },
    training,
    modes: results,
    accuracy,
    ratios: { default_over_fp32: ratio('default', 'fp32'), fast_over_fp32: ratio('fast', 'fp32'), fast_x2_over_fast: ratio('fast-x2', 'fast'), tta_over_no_tta: ratio('tta', 'default'), tta_full_over_no_tta: ratio('tta-full', 'default') },
    cpu_time_ratios: { tta_over_no_tta: cpuRatio('tta', 'default'), tta_full_over_no_tta: cpuRatio('tta-full', 'default') },
    // Every mode against --no-tta (the mode `default`): wall, CPU seconds and forward passes.
    over_no_tta: Object.fromEntries(Object.keys(results).filter((m) => MODES[m] !== undefined && results.default !== undefined).map((m) => [m, {
      wall: ratio(m, 'default'),
      cpu: cpuRatio(m, 'default'),
      passes: (results[m] as { windows: { passes: number } }).windows.passes / (results.default as { windows: { passes: number } }).windows.passes,
    }])),
  };
  report(result);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
