/**
 * Where our training step's time goes, fp32 beside bf16: the `bench train-step` network
 * (src/train/benchmark.ts's defaults; or --network FILE, a bench/paper-scale.ts plan, bench/network.ts) trained with trainStep's parts timed from TypeScript
 * (zero grad, forward + loss, backward, clipping, SGD step; and the step's CPU seconds), then the same steps under libtorch's
 * op profiler (profileOps: self time per ATen op / autograd node; it slows the ops it records, so
 * read its shares, not its totals).
 * Usage: npx tsx bench/train-step-profile.ts [--precisions fp32,bf16,bf16:aten] [--iterations 3] [--warmup 2]
 *        [--top 30] [--detailed] [--network cpu|FILE] [--out FILE]
 * --detailed: rows per two enclosing ops, op and input shapes. bf16:aten: bf16 with the addon's bf16
 * kernels off (setBf16Kernels(false)), ATen's ops only.
 * Prints a table on stderr and the JSON on stdout (and into --out).
 */
import { randn, scope, setBf16Kernels, setNumThreads, manualSeed, tuneAllocatorForTraining, profileOps, gt, cast, type OpProfileRow, type Tensor } from '../src/tensor/index.js';
import { SGD, clipGradNorm, deepSupervisionTargets, deepSupervisionWeights } from '../src/nn/index.js';
import { PlainConvUNet } from '../src/models/index.js';
import { cpuInfo } from '../src/core/index.js';
import { batchLoss, trainStep, TRAIN_STEP_BENCH_DEFAULTS, type Precision } from '../src/train/index.js';
import { args, option, median, report } from './support.js';
import { networkOf } from './network.js';

const d = TRAIN_STEP_BENCH_DEFAULTS;
const iterations = Number(option('iterations', '3'));
const warmup = Number(option('warmup', '2'));
const top = Number(option('top', '30'));
const precisions = option('precisions', 'fp32,bf16').split(',');
const network = networkOf(option('network', 'cpu'), process.cwd());

tuneAllocatorForTraining();
setNumThreads(d.threads);

function run(name: string): { sections: Record<string, number>; ops: OpProfileRow[] } {
  const precision = name.split(':')[0] as Precision;
  setBf16Kernels(!name.endsWith(':aten'));
  manualSeed(0);
  const model = new PlainConvUNet({
    inputChannels: d.inputChannels, numClasses: d.numClasses, featuresPerStage: network.features,
    kernelSizes: network.kernels, strides: network.strides, deepSupervision: true,
  }, { device: d.device });
  const optimizer = new SGD(model.parameterDict());
  const shape = [network.batch, d.inputChannels, ...network.patch];
  const [x, targets] = scope(() => {
    const target = cast(gt(randn([network.batch, 1, ...network.patch]), 0.5), 'int64');
    return [randn(shape), deepSupervisionTargets(target, network.strides, network.features.length - 1)] as const;
  });
  const parts = { model, optimizer, device: d.device, precision, weights: deepSupervisionWeights(network.features.length - 1) };
  const names = ['zero_grad', 'forward_loss', 'backward', 'clip', 'sgd', 'step_cpu'] as const;
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < warmup + iterations; i++) {
    scope(() => {
      const cpu0 = process.cpuUsage();
      const t: number[] = [performance.now()];
      model.zeroGrad();
      t.push(performance.now());
      const loss: Tensor = batchLoss(parts, x, targets);
      loss.item();
      t.push(performance.now());
      loss.backward();
      t.push(performance.now());
      clipGradNorm(model.parameters(), 12);
      t.push(performance.now());
      optimizer.step();
      t.push(performance.now());
      const cpu = process.cpuUsage(cpu0);
      if (i >= warmup) names.forEach((n, k) => times[n]!.push(n === 'step_cpu' ? (cpu.user + cpu.system) / 1e6 : (t[k + 1]! - t[k]!) / 1e3));
    });
  }
  const { ops } = profileOps(() => { for (let i = 0; i < iterations; i++) trainStep(parts, x, targets); }, args.includes('--detailed'));
  x.dispose();
  for (const t of targets) t.dispose();
  optimizer.dispose();
  model.dispose();
  const sections = Object.fromEntries(names.map((n) => [n, median(times[n]!)]));
  return { sections, ops: ops.map((o) => ({ ...o, calls: o.calls / iterations, totalMs: o.totalMs / iterations, selfMs: o.selfMs / iterations })) };
}

const results: Record<string, ReturnType<typeof run>> = {};
for (const p of precisions) results[p] = run(p);

const first = precisions[0]!;
for (const p of precisions) {
  const s = results[p]!.sections;
  process.stderr.write(`${p}: ${Object.entries(s).map(([k, v]) => `${k} ${v.toFixed(3)} s`).join(', ')}; wall sum ${Object.entries(s).filter(([k]) => k !== 'step_cpu').reduce((a, [, b]) => a + b, 0).toFixed(3)} s\n`);
}
const byName = (p: string) => new Map(results[p]!.ops.map((o) => [o.name, o]));
const maps = Object.fromEntries(precisions.map((p) => [p, byName(p)]));
const maxSelf = (name: string) => Math.max(...precisions.map((p) => maps[p]!.get(name)?.selfMs ?? 0));
const ranked = [...new Set(precisions.flatMap((p) => results[p]!.ops.map((o) => o.name)))].sort((a, b) => maxSelf(b) - maxSelf(a)).slice(0, top);
process.stderr.write(`self ms per step (profiled)\n${'op'.padEnd(160)}${precisions.map((p) => p.padStart(10)).join('')}  calls\n`);
for (const name of ranked) {
  process.stderr.write(`${name.slice(0, 159).padEnd(160)}${precisions.map((p) => (maps[p]!.get(name)?.selfMs ?? 0).toFixed(1).padStart(10)).join('')}  ${precisions.map((p) => maps[p]!.get(name)?.calls ?? 0).join('/')}\n`);
}
const totals = precisions.map((p) => results[p]!.ops.reduce((a, o) => a + o.selfMs, 0));
process.stderr.write(`${'total'.padEnd(160)}${totals.map((t) => t.toFixed(1).padStart(10)).join('')}\n`);
report({ benchmark: 'train-step-profile', cpu: cpuInfo(), network: network.source, first, iterations, warmup, results: Object.fromEntries(precisions.map((p) => [p, { sections_seconds: results[p]!.sections, ops_per_step: results[p]!.ops.slice(0, 80) }])) });
