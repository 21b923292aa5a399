/**
 * The bf16 convolution backward of the `paper` preset's costliest layers, the addon's weight
 * gradient (native/src/conv_bf16.cpp) against ATen's (setBf16Kernels(false): oneDNN's with its
 * reorders), alternating which goes first, under bf16 autocast as training runs them. Per layer:
 * the forward, and the backward of sum(y * dy) with the weight gradient only (input without grad)
 * and with the input gradient as well, milliseconds of wall time and of CPU time (user + system, all
 * threads: the steadier of the two on a shared machine), medians of --repeats.
 * Usage: npx tsx bench/conv-bf16.ts [--repeats 3] [--threads 2] [--out FILE]
 */
import { randn, scope, setBf16Kernels, bf16KernelsActive, setNumThreads, manualSeed, autocast, conv3d, sum, mul, cast, clone, type Tensor } from '../src/tensor/index.js';
import { cpuInfo } from '../src/core/index.js';
import { loadavg } from 'node:os';
import { option, median, report } from './support.js';

const repeats = Number(option('repeats', '3'));
setNumThreads(Number(option('threads', '2')));
const device = { type: 'cpu' } as const;

/** [name, batch, in, out, D, H, W, kernel depth]: "same" padding, stride 1. */
const layers: [string, number, number, number, number, number, number, number][] = [
  ['stage 0 encoder 32->32 1x3x3', 2, 32, 32, 50, 160, 192, 1],
  ['stage 0 decoder 64->32 1x3x3', 2, 64, 32, 50, 160, 192, 1],
  ['stage 1 64->64 3x3x3', 2, 64, 64, 50, 80, 96, 3],
];

/** One timed forward + backward, ms: [forward, backward, backward's CPU time]. */
function once(x0: Tensor, w0: Tensor, dy: Tensor, inputGrad: boolean, kd: number): [number, number, number] {
  return scope(() => {
    const x = clone(x0).setRequiresGrad(inputGrad);
    const w = clone(w0).setRequiresGrad(true);
    const t0 = performance.now();
    const y = autocast({ device, dtype: 'bfloat16' }, () => conv3d(x, w, null, { padding: [kd >> 1, 1, 1] }));
    const t1 = performance.now();
    const loss = sum(mul(y, dy));
    const [t2, cpu] = [performance.now(), process.cpuUsage()];
    loss.backward();
    const [t3, used] = [performance.now(), process.cpuUsage(cpu)];
    return [t1 - t0, t3 - t2, (used.user + used.system) / 1e3];
  });
}

manualSeed(0);
const loadBefore = loadavg();
const rows = layers.map(([name, batch, ci, co, d, h, w, kd]) => scope(() => {
  const x = cast(randn([batch, ci, d, h, w]), 'bfloat16');
  const weight = randn([co, ci, kd, 3, 3]);
  const dy = cast(randn([batch, co, d, h, w]), 'bfloat16');
  const times: Record<string, number[]> = {};
  const record = (key: string, value: number) => (times[key] ??= []).push(value);
  once(x, weight, dy, true, kd);
  for (let r = 0; r < repeats; r++) {
    for (const kernels of r % 2 === 0 ? [true, false] : [false, true]) {
      setBf16Kernels(kernels);
      const side = kernels ? 'addon' : 'aten';
      const [, dwOnly, dwOnlyCpu] = once(x, weight, dy, false, kd);
      const [forward, both, bothCpu] = once(x, weight, dy, true, kd);
      record(`${side}_forward_ms`, forward);
      record(`${side}_backward_weight_only_ms`, dwOnly);
      record(`${side}_backward_weight_only_cpu_ms`, dwOnlyCpu);
      record(`${side}_backward_input_and_weight_ms`, both);
      record(`${side}_backward_input_and_weight_cpu_ms`, bothCpu);
    }
  }
  setBf16Kernels(true);
  const medians = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(median(v))]));
  process.stderr.write(`${name}: ${JSON.stringify(medians)}\n`);
  return { name, shape: { batch, in: ci, out: co, volume: [d, h, w], kernel: [kd, 3, 3] }, ...medians };
}));
report({ benchmark: 'conv-bf16', cpu: cpuInfo(), kernels_active: bf16KernelsActive(), repeats, load_before: loadBefore, load_after: loadavg(), layers: rows });
