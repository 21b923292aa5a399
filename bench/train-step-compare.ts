/**
 * Training-step benchmark, lesionseg vs PyTorch (Debian python3-torch) on the identical network,
 * loss and optimiser, alternating the two sides over a few rounds (this machine is noisy).
 * Usage: npx tsx bench/train-step-compare.ts [--rounds 3] [--precisions fp32,bf16] [--iterations 10]
 * By default bf16 runs only where the CPU computes it natively (AVX512-BF16 or AMX); elsewhere it is
 * emulated and one step takes minutes, so the JSON says it was skipped and why.
 * Prints JSON: per precision the median over rounds of each side's median seconds per iteration,
 * peak RSS, parameter counts, and the ratio ours / PyTorch.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { option, median } from './support.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(option('rounds', '3'));
const cpu = cpuInfo();
const precisions = option('precisions', cpu.nativeBf16 ? 'fp32,bf16' : 'fp32').split(',');
const skipped = precisions.includes('bf16') ? null : 'bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), where it is emulated and many times slower; pass --precisions fp32,bf16 to run it anyway';
const iterations = option('iterations', '10');
const python = process.env.LESIONSEG_PYTHON ?? '/usr/bin/python3';

interface SideResult { seconds_per_iter: number; peak_rss_mib: number; params: number; losses: number[] }

function runOurs(precision: string): SideResult {
  const out = execFileSync('node', [path.join(root, 'bin/lesionseg.js'), 'bench', 'train-step', '--json', '--precision', precision, '--iterations', iterations], { encoding: 'utf8' });
  return JSON.parse(out) as SideResult;
}
function runTorch(precision: string): SideResult {
  const out = execFileSync(python, [path.join(root, 'bench/train_step_torch.py'), '--precision', precision, '--iterations', iterations], { encoding: 'utf8' });
  return JSON.parse(out) as SideResult;
}

const results: Record<string, unknown> = {};
const perPrecision: Record<string, { ours: number[]; torch: number[]; oursRss: number[]; torchRss: number[]; oursParams: number; torchParams: number }> = {};
for (let round = 0; round < rounds; round++) {
  for (const precision of precisions) {
    const entry = (perPrecision[precision] ??= { ours: [], torch: [], oursRss: [], torchRss: [], oursParams: 0, torchParams: 0 });
    // Alternate which side goes first each round.
    const order = round % 2 === 0 ? ['ours', 'torch'] : ['torch', 'ours'];
    for (const side of order) {
      const r = side === 'ours' ? runOurs(precision) : runTorch(precision);
      if (side === 'ours') { entry.ours.push(r.seconds_per_iter); entry.oursRss.push(r.peak_rss_mib); entry.oursParams = r.params; }
      else { entry.torch.push(r.seconds_per_iter); entry.torchRss.push(r.peak_rss_mib); entry.torchParams = r.params; }
    }
  }
}
for (const [precision, e] of Object.entries(perPrecision)) {
  const ours = median(e.ours);
  const torch = median(e.torch);
  results[precision] = {
    lesionseg: { seconds_per_iter: ours, peak_rss_mib: Math.max(...e.oursRss), params: e.oursParams, rounds: e.ours },
    pytorch: { seconds_per_iter: torch, peak_rss_mib: Math.max(...e.torchRss), params: e.torchParams, rounds: e.torch },
    ratio_time_ours_over_pytorch: ours / torch,
    ratio_rss_ours_over_pytorch: Math.max(...e.oursRss) / Math.max(...e.torchRss),
  };
}
const fp32 = perPrecision.fp32, bf16 = perPrecision.bf16;
if (fp32 && bf16) results.bf16_speedup_over_fp32_ours = median(fp32.ours) / median(bf16.ours);
console.log(JSON.stringify({ benchmark: 'train-step', cpu, skipped, config: { features: [16, 32, 64, 128, 256], patch: [32, 96, 96], batch: 2, threads: 2, in_channels: 1, classes: 2 }, rounds, results }, null, 2));
