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
 * - margins: no prediction; the un-mirrored pass of 13 windows spread over the CT (bf16 where
 *   native), each one's class-1-minus-class-0 logit range and the fraction of its voxels within
 *   0.5 logit of the boundary (what adaptive mirroring decides on),
 * each in its own process, timed from outside (wall) and by its own stages (`--json`).
 * --slices N resamples the phantom along z to N slices first (linear, the same 312 mm; e.g. 300 for
 * the 512 x 512 x 300 CT whose memory issue 14 bounds); predict resamples it to the plan's spacing
 * and its logits back to N slices.
 * Usage: npx tsx bench/full-ct.ts [--modes fp32,default,fast,fast-x2,tta,tta-full] [--size paper] [--slices N] [--out FILE]
 * Prints one JSON object with the CPU.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { writeSynthDataset, type SynthSize } from '../src/synth/index.js';
import { readNifti, writeNifti } from '../src/io/index.js';
import { preprocessCase, resampleVolumeToShape } from '../src/data/index.js';
import type { Affine, Shape3 } from '../src/core/index.js';
import { Predictor, paddedShape, paddingToPatch, slidingWindowBoxes, type Triple } from '../src/infer/index.js';
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
const size = option('size', 'paper') as SynthSize;
const slices = Number(option('slices', '0'));

interface CaseJson {
  shape: number[];
  seconds: Record<string, unknown>;
  peakRssMiB: Record<string, number>;
  windows: { total: number; run: number; batch?: unknown };
}

/** One `predict` child: wall seconds from outside and its JSON record of the case. */
function predict(run: string, image: string, out: string, extra: string[]): Promise<{ wall_seconds: number; case: CaseJson; stderr_tail: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [cli, 'predict', '-m', run, '-i', image, '-o', out, '--json', '--verbose', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`predict ${extra.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      const result = JSON.parse(stdout) as { cases: CaseJson[] };
      const lines = stderr.split(/\r|\n/).filter((l) => l.trim() !== '' && !/^sliding window: \d+\/\d+/.test(l.trim()));
      resolve({ wall_seconds: wall, case: result.cases[0]!, stderr_tail: lines.slice(-16).join('\n') });
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
    noGrad(() => scope(() => {
      const padded = pad(fromArray(pre.data, pre.shape), [padding[2].before, padding[2].after, padding[1].before, padding[1].after, padding[0].before, padding[0].after]);
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
    return { precision, windows_total: boxes.length, windows };
  } finally {
    predictor.dispose();
  }
}

let shape: number[] | null = null;
function summarize(r: Awaited<ReturnType<typeof predict>>) {
  shape ??= r.case.shape;
  return {
    wall_seconds: r.wall_seconds,
    peak_rss_mib: Math.max(...Object.values(r.case.peakRssMiB)),
    windows: r.case.windows,
    stages_seconds: r.case.seconds,
    stages_peak_rss_mib: r.case.peakRssMiB,
    log: r.stderr_tail,
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-full-ct-'));
try {
  const dataset = path.join(dir, 'ct');
  await writeSynthDataset({ kind: 'covid', cases: 1, out: dataset, seed: 0, size });
  const image = path.join(dataset, 'imagesTr', 'covid_000_0000.nii.gz');
  const run = path.join(dir, 'run');
  process.stderr.write('bench/full-ct: a one-iteration run of the cpu preset ...\n');
  execFileSync(process.execPath, [cli, 'train', '--dataset', dataset, '--out', run, '--preset', 'cpu', '--epochs', '1', '--iters-per-epoch', '1', '--val-iters', '1', '--fold', 'all'], { stdio: ['ignore', 'ignore', 'inherit'] });
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
  const wall = (mode: string): number | null => (results[mode] as { wall_seconds?: number; wall_seconds_max?: number } | undefined)?.wall_seconds ?? (results[mode] as { wall_seconds_max?: number } | undefined)?.wall_seconds_max ?? null;
  const ratio = (a: string, b: string): number | null => (wall(a) !== null && wall(b) !== null ? wall(a)! / wall(b)! : null);
  const result = {
    benchmark: 'full-ct',
    cpu: cpuInfo(),
    phantom: { size, shape: shape, image: `synth --kind covid --size ${size} --seed 0${slices > 0 ? `, resampled along z to ${slices} slices` : ''}` },
    plan: { preset: 'cpu', patch: plan.configuration.patchSize, target_spacing: plan.configuration.targetSpacing, features: plan.configuration.network.featuresPerStage },
    modes: results,
    ratios: { default_over_fp32: ratio('default', 'fp32'), fast_over_fp32: ratio('fast', 'fp32'), fast_x2_over_fast: ratio('fast-x2', 'fast'), tta_over_no_tta: ratio('tta', 'default'), tta_full_over_no_tta: ratio('tta-full', 'default') },
  };
  report(result);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
