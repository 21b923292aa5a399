/**
 * CPU allocator benchmark: forward passes (no grad) of the cpu-sized PlainConvUNet on random
 * windows, each side in a child process of its own: lesionseg with its arena
 * (native/src/allocator.cpp), lesionseg with libtorch's own allocator (LESIONSEG_CPU_BLOCK_CACHE=0),
 * and PyTorch (Debian python3-torch). The first pass is the warm-up; the others show what a sliding
 * window or a training loop pays per step in page faults, and the peak RSS what it holds.
 * Usage: npx tsx bench/allocator.ts [--patch 32,96,96] [--features 16,32,64,128,256] [--batch 2]
 *        [--passes 6] [--threads 2] [--precision fp32|bf16]
 * Prints JSON: per side the median seconds and minor faults per pass after the first, the RSS
 * before the first pass (network built) and at the peak; for the arena its live and kept bytes.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { PlainConvUNet } from '../src/models/index.js';
import { autocast, cpuCacheStats, manualSeed, noGrad, randn, scope, setNumThreads } from '../src/tensor/index.js';
import { args, option, ints, median } from './support.js';

const script = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(script), '..');
const patch = ints(option('patch', '32,96,96'));
const features = ints(option('features', '16,32,64,128,256'));
const batch = Number(option('batch', '2'));
const passes = Number(option('passes', '6'));
const threads = Number(option('threads', '2'));
const precision = option('precision', 'fp32');
if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`--precision: fp32 or bf16, not ${precision}`);
const python = process.env.LESIONSEG_PYTHON ?? '/usr/bin/python3';
const STRIDES = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2], [1, 2, 2]];
const MiB = 2 ** 20;

interface Side { seconds: number[]; minor_faults: number[]; base_rss_mib: number; peak_rss_mib: number; arena?: Record<string, number> | null }

const rssMib = (): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;

function child(): void {
  setNumThreads(threads);
  manualSeed(0);
  const model = new PlainConvUNet({
    inputChannels: 1, numClasses: 2, featuresPerStage: features, kernelSizes: features.map(() => [3, 3, 3]),
    strides: STRIDES.slice(0, features.length), deepSupervision: false,
  });
  const base = rssMib();
  const seconds: number[] = [];
  const faults: number[] = [];
  cpuCacheStats(true);
  for (let pass = 0; pass < passes; pass++) {
    noGrad(() => scope(() => {
      const x = randn([batch, 1, ...patch]);
      const f0 = process.resourceUsage().minorPageFault;
      const t0 = performance.now();
      if (precision === 'bf16') autocast({ device: { type: 'cpu' }, dtype: 'bfloat16' }, () => model.forward(x));
      else model.forward(x);
      seconds.push((performance.now() - t0) / 1000);
      faults.push(process.resourceUsage().minorPageFault - f0);
    }));
  }
  const stats = cpuCacheStats();
  const side: Side = {
    seconds, minor_faults: faults, base_rss_mib: base, peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    arena: stats === null ? null : { peak_live_mib: stats.peakLiveBytes / MiB, peak_kept_mib: stats.peakMappedBytes / MiB },
  };
  process.stdout.write(JSON.stringify(side));
}

if (args.includes('--child')) {
  child();
  process.exit(0);
}

const common = ['--patch', patch.join(','), '--features', features.join(','), '--batch', String(batch), '--passes', String(passes), '--threads', String(threads), '--precision', precision];
const run = (command: string, argv: string[], env: NodeJS.ProcessEnv): Side =>
  JSON.parse(execFileSync(command, argv, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] })) as Side;
const ours = (cache: boolean): Side => run(process.execPath, [...process.execArgv, script, ...common, '--child'],
  { ...process.env, LESIONSEG_CPU_BLOCK_CACHE: cache ? '1' : '0' });
const sides = {
  lesionseg_arena: ours(true),
  lesionseg_libtorch_allocator: ours(false),
  pytorch: run(python, [path.join(root, 'bench/allocator_torch.py'), ...common], process.env),
};
const summary = Object.fromEntries(Object.entries(sides).map(([name, side]) => [name, {
  seconds_per_pass: median(side.seconds.slice(1)),
  minor_faults_per_pass: median(side.minor_faults.slice(1)),
  base_rss_mib: side.base_rss_mib,
  peak_rss_mib: side.peak_rss_mib,
  peak_rss_over_base_mib: side.peak_rss_mib - side.base_rss_mib,
  ...(side.arena ? { arena: side.arena } : {}),
  raw: { seconds: side.seconds, minor_faults: side.minor_faults },
}]));
console.log(JSON.stringify({
  cpu: cpuInfo(),
  benchmark: 'cpu-allocator-forward-passes',
  config: { patch, features, batch, passes, threads, precision },
  ...summary,
  ratio_peak_rss_arena_over_pytorch: sides.lesionseg_arena.peak_rss_mib / sides.pytorch.peak_rss_mib,
  ratio_seconds_arena_over_pytorch: median(sides.lesionseg_arena.seconds.slice(1)) / median(sides.pytorch.seconds.slice(1)),
}, null, 2));
