/**
 * The demo's multi-lesion pre-training on a machine doing other work (issue 14, part 6): the
 * demo's three source datasets (synth tumor/gtv/effusion, 4 small cases each, seeds 12-14) and its
 * tiny plan, `lesionseg pretrain --mode multi` with the demo's iterations per epoch (25, 2
 * validation batches, no loader workers), run
 * - alone with 2 threads,
 * - two at once with 2 threads each (4 threads on the 2 cores), as we run them (libgomp's threads
 *   sleep when idle: OMP_WAIT_POLICY=PASSIVE unless set),
 * - the same pair with OMP_WAIT_POLICY=ACTIVE (threads spin while waiting, libgomp's own habit
 *   when it is not told otherwise),
 * - two at once with 1 thread each (what `experiment --jobs 2 --threads 1` does).
 * A pair sharing the cores fairly takes about twice as long as one run alone; the issue measured
 * ten times. The plan and the preprocessed cases are made once beforehand, so every run times
 * training only. Wall time from outside each process.
 * Usage: npx tsx bench/shared-machine.ts [--epochs 12] [--modes alone,pair,pair-active,pair-1thread] [--out FILE]
 * Prints one JSON object with the CPU.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { writeSynthDataset } from '../src/synth/index.js';
import { option, report } from './support.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin/lesionseg.js');
const epochs = Number(option('epochs', '12'));
const modes = option('modes', 'alone,pair,pair-active,pair-1thread').split(',');
const MODES: Record<string, { processes: number; threads: number; env: Record<string, string> }> = {
  alone: { processes: 1, threads: 2, env: {} },
  pair: { processes: 2, threads: 2, env: {} },
  'pair-active': { processes: 2, threads: 2, env: { OMP_WAIT_POLICY: 'ACTIVE' } },
  'pair-1thread': { processes: 2, threads: 1, env: {} },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-shared-'));
const sources = ['tumor', 'gtv', 'effusion'] as const;
const datasets = sources.map((kind) => path.join(dir, kind));
const common = ['--datasets', datasets.join(','), '--mode', 'multi', '--iters-per-epoch', '25', '--val-iters', '2', '--workers', '0', '--seed', '0'];

function pretrain(out: string, threads: number, env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [cli, 'pretrain', ...common, '--out', out, '--plan', path.join(dir, 'setup', 'plan.json'),
      '--preprocessed', path.join(dir, 'setup', 'preprocessed'), '--epochs', String(epochs), '--threads', String(threads)], {
      stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve((performance.now() - started) / 1000) : reject(new Error(`pretrain exited ${code}: ${stderr}`))));
  });
}

try {
  await Promise.all(sources.map((kind, i) => writeSynthDataset({ kind, cases: 4, out: datasets[i]!, seed: 12 + i, size: 'small' })));
  process.stderr.write('bench/shared-machine: plan and preprocessing ...\n');
  execFileSync(process.execPath, [cli, 'pretrain', ...common, '--out', path.join(dir, 'setup'), '--preset', 'tiny', '--epochs', '1', '--iters-per-epoch', '1', '--val-iters', '1'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const results: Record<string, unknown> = {};
  for (const mode of modes) {
    const m = MODES[mode];
    if (m === undefined) throw new Error(`unknown mode ${mode}: use ${Object.keys(MODES).join(', ')}`);
    process.stderr.write(`bench/shared-machine: ${mode} ...\n`);
    const walls = await Promise.all(Array.from({ length: m.processes }, (_, i) => pretrain(path.join(dir, `${mode}-${i}`), m.threads, m.env)));
    results[mode] = { processes: m.processes, threads_each: m.threads, env: m.env, wall_seconds: walls, wall_seconds_max: Math.max(...walls) };
  }
  const alone = (results.alone as { wall_seconds_max: number } | undefined)?.wall_seconds_max;
  const slowdown = Object.fromEntries(Object.entries(results).filter(([mode]) => mode !== 'alone' && alone !== undefined)
    .map(([mode, r]) => [mode, (r as { wall_seconds_max: number }).wall_seconds_max / alone!]));
  const result = {
    benchmark: 'shared-machine-pretraining',
    cpu: cpuInfo(),
    config: { pretraining: 'demo multi-lesion (tumor, gtv, effusion; 4 small cases each), tiny plan', epochs, iterations_per_epoch: 25, validation_iterations: 2, workers: 0 },
    modes: results,
    slowdown_of_the_slower_of_two_over_alone: slowdown,
    proportional: 2,
  };
  report(result);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
