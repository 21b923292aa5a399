/**
 * Training-step benchmark, lesionseg vs PyTorch (Debian python3-torch) on the identical network,
 * loss (Dice+CE, deep supervision), clipping and SGD step, at the same thread count, alternating
 * which side runs first in each round, and the order of the precisions (this machine is shared and noisy).
 * Usage: npx tsx bench/train-step-compare.ts [--rounds 3] [--precisions fp32,bf16] [--iterations 10]
 *        [--warmup 3] [--threads 2] [--network cpu|FILE] [--sides ours,torch] [--out FILE]
 * --sides ours: our side only (no PyTorch): bf16 against fp32 in less time.
 * --network cpu (default): `bench train-step`'s network (features 16..256, patch 32x96x96, batch 2);
 * --network FILE: the `plan` of a bench/paper-scale.ts JSON (patch, batch, features, kernels,
 * strides), e.g. results/paper-scale/paper-scale.json for the `paper` preset's network.
 * By default bf16 runs only where the CPU computes it natively (AVX512-BF16 or AMX); elsewhere it is
 * emulated and one step takes minutes, so the JSON says it was skipped and why.
 * Each side runs in its own process (ours: this script with --side ours). Prints JSON: per precision
 * each side's median seconds per iteration in every round, the ratio ours / PyTorch per round (the
 * two sides of a round run back to back) and its median, peak RSS, and the load average around
 * every run; where both precisions ran, our bf16 speed-up over fp32 per round and its median.
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { benchmarkTrainStep, type Precision } from '../src/train/index.js';
import { option, median, report } from './support.js';
import { networkOf } from './network.js';

const script = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(script), '..');

interface SideResult { seconds_per_iter: number; seconds_all: number[]; cpu_seconds_per_iter: number; peak_rss_mib: number; params: number; losses: number[] }

const threads = Number(option('threads', '2'));
const iterations = Number(option('iterations', '10'));
const warmup = Number(option('warmup', '3'));
const network = networkOf(option('network', 'cpu'), root);

/** Child: our side, one precision. */
function oursSide(precision: Precision): SideResult {
  const r = benchmarkTrainStep({
    featuresPerStage: network.features,
    kernelSizes: network.kernels,
    strides: network.strides,
    patchSize: network.patch,
    batchSize: network.batch,
    threads,
    precision,
    iterations,
    warmup,
  });
  return { seconds_per_iter: r.seconds_per_iter, seconds_all: r.seconds_all, cpu_seconds_per_iter: r.cpu_seconds_per_iter, peak_rss_mib: r.peak_rss_mib, params: r.params, losses: r.losses };
}

function runOurs(precision: string): SideResult {
  const argv = [...process.execArgv, script, '--side', 'ours', '--precision', precision, '--threads', String(threads), '--iterations', String(iterations), '--warmup', String(warmup), '--network', option('network', 'cpu')];
  return JSON.parse(execFileSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })) as SideResult;
}
function runTorch(precision: string): SideResult {
  const python = process.env.LESIONSEG_PYTHON ?? '/usr/bin/python3';
  const out = execFileSync(python, [
    path.join(root, 'bench/train_step_torch.py'), '--precision', precision, '--threads', String(threads), '--iterations', String(iterations), '--warmup', String(warmup),
    '--features', network.features.join(','), '--patch', network.patch.join(','), '--batch', String(network.batch),
    '--kernels', JSON.stringify(network.kernels), '--strides', JSON.stringify(network.strides),
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out) as SideResult;
}

function main(): void {
  if (option('side', '') === 'ours') {
    process.stdout.write(JSON.stringify(oursSide(option('precision', 'fp32') as Precision)));
    return;
  }
  const rounds = Number(option('rounds', '3'));
  const cpu = cpuInfo();
  const precisions = option('precisions', cpu.nativeBf16 ? 'fp32,bf16' : 'fp32').split(',');
  const skipped = precisions.includes('bf16') ? null : 'bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), where it is emulated and many times slower; pass --precisions fp32,bf16 to run it anyway';
  type Run = SideResult & { load_before: number[]; load_after: number[] };
  const sides = option('sides', 'ours,torch').split(',');
  if (sides.some((s) => s !== 'ours' && s !== 'torch') || !sides.includes('ours')) throw new Error(`--sides ${sides.join(',')}: ours or ours,torch`);
  const runs: Record<string, { ours: Run[]; torch: Run[]; first: string[] }> = {};
  const precisionOrder: string[][] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate the order of the precisions (and below of the sides) each round: the load drifts.
    const roundPrecisions = round % 2 === 0 ? precisions : [...precisions].reverse();
    precisionOrder.push(roundPrecisions);
    for (const precision of roundPrecisions) {
      const entry = (runs[precision] ??= { ours: [], torch: [], first: [] });
      const order = (round % 2 === 0 ? ['ours', 'torch'] : ['torch', 'ours']).filter((s) => sides.includes(s));
      entry.first.push(order[0]!);
      for (const side of order) {
        const loadBefore = os.loadavg();
        const r = side === 'ours' ? runOurs(precision) : runTorch(precision);
        const run = { ...r, load_before: loadBefore, load_after: os.loadavg() };
        process.stderr.write(`round ${round + 1} ${precision} ${side}: ${r.seconds_per_iter.toFixed(3)} s/iter (load ${loadBefore[0]!.toFixed(2)} -> ${run.load_after[0]!.toFixed(2)})\n`);
        (side === 'ours' ? entry.ours : entry.torch).push(run);
      }
    }
  }
  const summary = (side: Run[]) => ({
    seconds_per_iter: median(side.map((r) => r.seconds_per_iter)),
    cpu_seconds_per_iter: median(side.map((r) => r.cpu_seconds_per_iter)),
    peak_rss_mib: Math.max(...side.map((r) => r.peak_rss_mib)),
    params: side[0]!.params,
    rounds: side,
  });
  const results: Record<string, unknown> = {};
  for (const [precision, e] of Object.entries(runs)) {
    if (e.torch.length === 0) {
      results[precision] = { lesionseg: summary(e.ours) };
      continue;
    }
    const perRound = e.ours.map((o, i) => o.seconds_per_iter / e.torch[i]!.seconds_per_iter);
    results[precision] = {
      lesionseg: summary(e.ours),
      pytorch: summary(e.torch),
      first_per_round: e.first,
      ratio_time_ours_over_pytorch_per_round: perRound,
      ratio_time_ours_over_pytorch: median(perRound),
      ratio_cpu_time_ours_over_pytorch: median(e.ours.map((o, i) => o.cpu_seconds_per_iter / e.torch[i]!.cpu_seconds_per_iter)),
      ratio_rss_ours_over_pytorch: Math.max(...e.ours.map((r) => r.peak_rss_mib)) / Math.max(...e.torch.map((r) => r.peak_rss_mib)),
    };
  }
  const fp32 = runs.fp32, bf16 = runs.bf16;
  if (fp32 && bf16) {
    const perRound = fp32.ours.map((f, i) => f.seconds_per_iter / bf16.ours[i]!.seconds_per_iter);
    results.bf16_speedup_over_fp32_ours_per_round = perRound;
    results.bf16_speedup_over_fp32_ours = median(perRound);
    if (fp32.torch.length > 0) results.bf16_speedup_over_fp32_pytorch = median(fp32.torch.map((f, i) => f.seconds_per_iter / bf16.torch[i]!.seconds_per_iter));
    // The same by CPU seconds (user + system): steadier than wall time when other work shares the cores.
    results.bf16_speedup_over_fp32_ours_cpu_time = median(fp32.ours.map((f, i) => f.cpu_seconds_per_iter / bf16.ours[i]!.cpu_seconds_per_iter));
  }
  report({
    benchmark: 'train-step',
    cpu,
    skipped,
    // Both sides run with this environment (set by the addon's loader, src/core/environment.ts, and inherited by PyTorch's process).
    environment: { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? null, OPENBLAS_THREAD_TIMEOUT: process.env.OPENBLAS_THREAD_TIMEOUT ?? null },
    config: { network: network.source, features: network.features, kernels: network.kernels, strides: network.strides, patch: network.patch, batch: network.batch, threads, in_channels: 1, classes: 2, iterations, warmup },
    rounds,
    sides,
    precision_order_per_round: precisionOrder,
    results,
  });
}

main();
