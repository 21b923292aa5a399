/**
 * What `predict --fast` costs in DSC, on a finished study's phantoms: for each arm given, every fold's
 * model predicts that fold's test cases with the real CLI in each mode, and each mask is scored
 * against the reference label and against the default mode's mask (DSC, and the fraction of equal voxels).
 * Modes: default (mirroring on all axes, step 0.5, precision auto), fp32 and bf16 (the default in
 * that precision; fp32 is what the study itself ran, less its --no-tta), no-tta, fast (no mirroring, step 0.75,
 * windows outside the body skipped), margin-X (`--tta-margin X`), full (`--tta full`: every window's 8 mirrored passes, nnU-Net's
 * result; with it, each mode is also scored against full's mask). Each mode's forward passes
 * (window passes, from --json) are summed beside its seconds; NSD (3 mm) to the label beside DSC.
 * Usage: npx tsx bench/fast-mode.ts --study DIR [--arm multi/continual | A,B | all] [--dataset covid]
 *        [--modes default,no-tta,fast] (fp32 also) [--folds 0,1,...] [--threads 2] [--out FILE]
 * DIR is a study folder written by `lesionseg experiment` (results/synthetic/ describes the one the
 * committed numbers come from). Prints one JSON object.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { dice, labelMask, normalizedSurfaceDice } from '../src/eval/index.js';
import { readNifti } from '../src/io/index.js';
import { option, report } from './support.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const study = option('study', '');
if (study === '' || !fs.existsSync(path.join(study, 'runs'))) {
  process.stderr.write('bench/fast-mode: --study DIR must be a study folder with runs/ (lesionseg experiment)\n');
  process.exit(2);
}
// One arm, a comma-separated list, or all: every runs/<pretrained>/<strategy> folder of the study.
const armOption = option('arm', 'multi/continual');
const arms = armOption === 'all'
  ? fs.readdirSync(path.join(study, 'runs')).sort().flatMap((model) => fs.readdirSync(path.join(study, 'runs', model)).sort().map((strategy) => `${model}/${strategy}`))
    .filter((arm) => fs.statSync(path.join(study, 'runs', arm)).isDirectory())
  : armOption.split(',');
const dataset = option('dataset', 'covid');
const threads = option('threads', String(cpuInfo().cores));
const MODES: Record<string, string[]> = { default: [], fp32: ['--precision', 'fp32'], bf16: ['--precision', 'bf16'], 'no-tta': ['--no-tta'], fast: ['--fast'], full: ['--tta', 'full'] };
const modes = option('modes', 'default,no-tta,fast').split(',');
// margin-X: adaptive mirroring with `--tta-margin X`.
for (const mode of modes) if (/^margin-\d+(\.\d+)?$/.test(mode)) MODES[mode] = ['--tta-margin', mode.slice('margin-'.length)];
for (const mode of modes) if (MODES[mode] === undefined) throw new Error(`unknown mode ${mode}: one of ${Object.keys(MODES).join(', ')}`);
if (!modes.includes('default')) throw new Error('--modes must include default (the reference of the agreement)');

interface CaseRow { arm: string; fold: number; caseId: string; diceToLabel: Record<string, number>; diceToDefault: Record<string, number>; equalToDefault: Record<string, number>; nsdToLabel: Record<string, number>; diceToFull?: Record<string, number>; equalToFull?: Record<string, number> }

/** The fraction of voxels whose label equals the default mode's. */
function equalFraction(a: Uint8Array, b: Uint8Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

const foldFilter = option('folds', '');
const foldsOf = (armDir: string): string[] => fs.readdirSync(armDir).filter((name) => /^fold_\d+$/.test(name) && (foldFilter === '' || foldFilter.split(',').includes(name.slice(5)))).sort();
let foldCount = 0;
const images = path.join(study, 'datasets', dataset, 'imagesTr');
const labels = path.join(study, 'datasets', dataset, 'labelsTr');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-fast-mode-'));
const rows: CaseRow[] = [];
const seconds: Record<string, number> = Object.fromEntries(modes.map((m) => [m, 0]));
const windows: Record<string, number> = Object.fromEntries(modes.map((m) => [m, 0]));
const passes: Record<string, number> = Object.fromEntries(modes.map((m) => [m, 0]));
try {
  for (const [a, arm] of arms.entries()) for (const fold of foldsOf(path.join(study, 'runs', arm))) {
    const armDir = path.join(study, 'runs', arm);
    foldCount++;
    const k = Number(fold.slice(5));
    const run = path.join(armDir, fold);
    const sidecar = JSON.parse(fs.readFileSync(path.join(run, 'checkpoint_final.json'), 'utf8')) as { data: { test: string[] } };
    const input = path.join(work, `input_${a}_${k}`);
    fs.mkdirSync(input);
    for (const caseId of sidecar.data.test) fs.symlinkSync(path.join(images, `${caseId}_0000.nii.gz`), path.join(input, `${caseId}_0000.nii.gz`));
    const masks: Record<string, string> = {};
    for (const mode of modes) {
      const out = path.join(work, `${mode}_${a}_${k}`);
      const started = performance.now();
      const text = execFileSync(process.execPath, [path.join(root, 'bin/lesionseg.js'), 'predict', '-m', run, '-i', input, '-o', out, '--threads', threads, '--json', ...MODES[mode]!], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      seconds[mode]! += (performance.now() - started) / 1000;
      const result = JSON.parse(text) as { cases: { windows: { run: number; passes: number } }[] };
      windows[mode]! += result.cases.reduce((n, c) => n + c.windows.run, 0);
      passes[mode]! += result.cases.reduce((n, c) => n + c.windows.passes, 0);
      masks[mode] = out;
    }
    for (const caseId of sidecar.data.test) {
      const label = await readNifti(path.join(labels, `${caseId}.nii.gz`));
      const reference = { data: labelMask(label.data, 1), shape: label.shape };
      const predicted: Record<string, { data: Uint8Array; shape: typeof label.shape }> = {};
      const labelMaps: Record<string, Uint8Array> = {};
      for (const mode of modes) {
        const mask = await readNifti(path.join(masks[mode]!, `${caseId}.nii.gz`));
        predicted[mode] = { data: labelMask(mask.data, 1), shape: mask.shape };
        labelMaps[mode] = Uint8Array.from(mask.data as ArrayLike<number>);
      }
      rows.push({
        arm,
        fold: k,
        caseId,
        diceToLabel: Object.fromEntries(modes.map((m) => [m, dice(predicted[m]!, reference)])),
        diceToDefault: Object.fromEntries(modes.map((m) => [m, dice(predicted[m]!, predicted.default!)])),
        equalToDefault: Object.fromEntries(modes.map((m) => [m, equalFraction(labelMaps[m]!, labelMaps.default!)])),
        nsdToLabel: Object.fromEntries(modes.map((m) => [m, normalizedSurfaceDice(predicted[m]!, reference, label.spacing, 3)])),
        ...(modes.includes('full')
          ? {
              diceToFull: Object.fromEntries(modes.map((m) => [m, dice(predicted[m]!, predicted.full!)])),
              equalToFull: Object.fromEntries(modes.map((m) => [m, equalFraction(labelMaps[m]!, labelMaps.full!)])),
            }
          : {}),
      });
    }
    process.stderr.write(`bench/fast-mode: ${arm} ${fold} done (${sidecar.data.test.length} cases)\n`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const summary = Object.fromEntries(modes.map((mode) => {
  const toLabel = rows.map((r) => r.diceToLabel[mode]!);
  const toDefault = rows.map((r) => r.diceToDefault[mode]!);
  const change = rows.map((r) => r.diceToLabel[mode]! - r.diceToLabel.default!);
  return [mode, {
    args: MODES[mode],
    seconds: seconds[mode],
    windows_run: windows[mode],
    passes: passes[mode],
    dice_to_label: { mean: mean(toLabel), worst: Math.min(...toLabel) },
    dice_to_default_mask: { mean: mean(toDefault), worst: Math.min(...toDefault) },
    dice_to_label_minus_default: { mean: mean(change), worst: Math.min(...change) },
    equal_voxels_to_default: { mean: mean(rows.map((r) => r.equalToDefault[mode]!)), worst: Math.min(...rows.map((r) => r.equalToDefault[mode]!)) },
    nsd_to_label: { mean: mean(rows.map((r) => r.nsdToLabel[mode]!)), worst: Math.min(...rows.map((r) => r.nsdToLabel[mode]!)) },
    ...(modes.includes('full')
      ? {
          dice_to_full_mask: { mean: mean(rows.map((r) => r.diceToFull![mode]!)), worst: Math.min(...rows.map((r) => r.diceToFull![mode]!)) },
          equal_voxels_to_full: { mean: mean(rows.map((r) => r.equalToFull![mode]!)), worst: Math.min(...rows.map((r) => r.equalToFull![mode]!)) },
          dice_to_label_minus_full: mean(rows.map((r) => r.diceToLabel[mode]! - r.diceToLabel.full!)),
          nsd_to_label_minus_full: mean(rows.map((r) => r.nsdToLabel[mode]! - r.nsdToLabel.full!)),
        }
      : {}),
  }];
}));
const result = { benchmark: 'fast-mode', cpu: cpuInfo(), threads: Number(threads), study: path.basename(path.resolve(study)), arms, dataset, folds: foldCount, cases: rows.length, modes: summary, per_case: rows };
report(result);
