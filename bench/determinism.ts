/**
 * What changes a U-Net's numbers on this machine (issue 21, part 5): the forward pass of a window
 * (the first of a batch) at 1 to 4 intra-op threads and batches of 1 to 4 windows, fp32 and bf16,
 * for the tiny preset's network and a cpu-preset-like one (16..256 features, patch 32x64x64); and
 * the gradients of one training step (sum of squared logits of 2 windows) at 1, 2 and 4 threads.
 * For each setting: the SHA-256 of the output's bytes (the first 12 hex digits), which settings
 * give identical bytes, and the largest difference from batch 2.
 * Usage: npx tsx bench/determinism.ts [--out FILE]. Prints one JSON object with the environment.
 */
import { createHash } from 'node:crypto';
import { PlainConvUNet, type UNetConfig } from '../src/models/index.js';
import { autocast, manualSeed, mul, narrow, noGrad, randn, scope, setNumThreads, sum, type Tensor } from '../src/tensor/index.js';
import { runEnvironment } from '../src/train/index.js';
import { report } from './support.js';

const NETWORKS: Record<string, { config: UNetConfig; patch: number[] }> = {
  tiny: {
    config: { inputChannels: 1, numClasses: 2, featuresPerStage: [4, 8, 16, 32], kernelSizes: [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]], deepSupervision: false },
    patch: [16, 32, 32],
  },
  cpu: {
    config: { inputChannels: 1, numClasses: 2, featuresPerStage: [16, 32, 64, 128, 256], kernelSizes: [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]], deepSupervision: false },
    patch: [32, 64, 64],
  },
};
const THREADS = [1, 2, 3, 4];
const BATCHES = [1, 2, 3, 4];

const digest = (values: Float32Array): string => createHash('sha256').update(Buffer.from(values.buffer, values.byteOffset, values.byteLength)).digest('hex').slice(0, 12);
const maxDifference = (a: Float32Array, b: Float32Array): number => a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);

const environment = runEnvironment();
const results: Record<string, unknown> = {};
for (const [name, { config, patch }] of Object.entries(NETWORKS)) {
  manualSeed(0);
  const network = new PlainConvUNet(config, { device: { type: 'cpu' } });
  const windows = randn([4, 1, ...patch]).keep();
  const forward: Record<string, Record<string, string>> = {};
  const differenceFromBatch2: Record<string, Record<string, number>> = {};
  for (const precision of ['fp32', 'bf16'] as const) {
    const outputs = new Map<string, Float32Array>();
    for (const threads of THREADS) {
      setNumThreads(threads);
      for (const batch of BATCHES) {
        scope(() => noGrad(() => {
          const run = (): Tensor => narrow(network.forward(narrow(windows, 0, 0, batch))[0]!, 0, 0, 1);
          const out = precision === 'bf16' ? autocast({ device: { type: 'cpu' }, dtype: 'bfloat16' }, run) : run();
          outputs.set(`threads ${threads}, batch ${batch}`, out.toFloat32Array());
        }));
      }
    }
    forward[precision] = Object.fromEntries([...outputs].map(([key, values]) => [key, digest(values)]));
    differenceFromBatch2[precision] = Object.fromEntries(BATCHES.map((batch) => [`batch ${batch}`, maxDifference(outputs.get(`threads 1, batch ${batch}`)!, outputs.get('threads 1, batch 2')!)]));
  }
  const gradients: Record<string, string> = {};
  for (const threads of [1, 2, 4]) {
    setNumThreads(threads);
    scope(() => {
      network.zeroGrad();
      const out = network.forward(narrow(windows, 0, 0, 2))[0]!;
      sum(mul(out, out)).backward();
      const all = network.parameters().filter((p) => p.value.grad !== null).map((p) => digest(p.value.grad!.toFloat32Array())).join(',');
      gradients[`threads ${threads}`] = createHash('sha256').update(all).digest('hex').slice(0, 12);
    });
  }
  windows.dispose();
  network.dispose();
  results[name] = { patch, features: config.featuresPerStage, forward, differenceFromBatch2, gradients };
}
setNumThreads(environment.threads);
report({ benchmark: 'determinism', environment, threads: THREADS, batches: BATCHES, networks: results });
