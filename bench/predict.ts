/**
 * Predict benchmark, lesionseg vs PyTorch (Debian python3-torch) in one run: the sliding-window
 * procedure (Gaussian blend, step 0.5, optional mirroring, several windows per batch) on a random
 * preprocessed volume with the cpu-preset PlainConvUNet; the same weights go to PyTorch through a
 * safetensors file, and the two logit volumes are compared. Each side runs in a child process of
 * its own that reads the weights and the volume from files and writes its logits to a .npy file,
 * so that each peak RSS is that side's alone (this script's model and arrays count for neither).
 * Usage: npx tsx bench/predict.ts [--shape 64,256,256] [--patch 32,96,96] [--features 16,32,64,128,256]
 *        [--batch 2] [--tta] [--threads 2] [--precision auto|fp32|bf16] [--device cpu|cuda] [--rounds 1]
 * Prints JSON: seconds and peak RSS per side (medians over rounds, the sides alternating which goes
 * first), ratios ours / PyTorch, max |logit difference|.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo, parseDevice, resolvePrecision, type PrecisionRequest } from '../src/core/index.js';
import { readNpy, readSafetensors, writeNpy, writeSafetensors } from '../src/io/index.js';
import { loadWeightsStrict } from '../src/checkpoint/index.js';
import { slidingWindowPredict, type InferencePrecision } from '../src/infer/index.js';
import { PlainConvUNet } from '../src/models/index.js';
import { stateDict } from '../src/nn/index.js';
import { fromArray, manualSeed, narrow, noGrad, randn, scope, setNumThreads, unsqueeze } from '../src/tensor/index.js';
import { args, option, ints, median } from './support.js';

const script = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(script), '..');
const shape = ints(option('shape', '64,256,256'));
const patch = ints(option('patch', '32,96,96'));
const features = ints(option('features', '16,32,64,128,256'));
const windowsPerBatch = Number(option('batch', '2'));
const tta = args.includes('--tta');
const threads = Number(option('threads', '2'));
// auto (the default): bf16 where the CPU computes it natively, else fp32 (emulated bf16 is many times slower).
const precisionRequest = option('precision', 'auto') as PrecisionRequest;
const deviceText = option('device', 'cpu');
const rounds = Number(option('rounds', '1'));
const python = process.env.LESIONSEG_PYTHON ?? '/usr/bin/python3';
const numClasses = 2;
const STRIDES = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2], [1, 2, 2]];

setNumThreads(threads);
manualSeed(0);
const device = parseDevice(deviceText);
const resolved = resolvePrecision(precisionRequest, device);
if (resolved.warning !== null) process.stderr.write(`bench/predict: warning: ${resolved.warning}\n`);
const precision: InferencePrecision = resolved.precision;
const model = new PlainConvUNet({
  inputChannels: 1,
  numClasses,
  featuresPerStage: features,
  kernelSizes: features.map(() => [3, 3, 3]),
  strides: STRIDES.slice(0, features.length),
  deepSupervision: false,
}, { device });
const childDir = option('child', '');
const dir = childDir !== '' ? childDir : fs.mkdtempSync(path.join(os.tmpdir(), 'bench-predict-'));
const weightsFile = path.join(dir, 'weights.safetensors');
const volumeFile = path.join(dir, 'volume.npy');
if (childDir !== '') {
  oursChild(option('child-out', ''));
  process.exit(0);
}
writeSafetensors(weightsFile, stateDict(model), { format: 'pt' });
writeNpy(volumeFile, scope(() => randn([1, ...shape]).toFloat32Array()), [1, ...shape]);


/** Our side, in this child process: weights and volume from the files, logits to `out`; prints seconds and peak RSS. */
function oursChild(out: string): void {
  loadWeightsStrict(model, readSafetensors(weightsFile).tensors, weightsFile, 'the benchmark network');
  const seconds = scope(() => {
    let array: Float32Array | null = readNpy(volumeFile).data as Float32Array;
    const volume = fromArray(array, [1, ...shape], { device });
    array = null;
    // Warm-up forward on one window, as the PyTorch side does.
    noGrad(() => scope(() => { model.forward(unsqueeze(narrow(narrow(narrow(volume, 1, 0, patch[0]!), 2, 0, patch[1]!), 3, 0, patch[2]!), 0)); }));
    const t0 = performance.now();
    const logits = slidingWindowPredict([(x) => model.forward(x)[0]!], volume, { patchSize: patch, numClasses, mirrorAxes: tta ? [0, 1, 2] : [], windowsPerBatch, precision });
    const elapsed = (performance.now() - t0) / 1000;
    writeNpy(out, logits.toFloat32Array(), logits.shape);
    return elapsed;
  });
  process.stdout.write(JSON.stringify({ side: 'lesionseg', seconds, peak_rss_mib: process.resourceUsage().maxRSS / 1024 }));
}

function runOurs(): { seconds: number; peak_rss_mib: number; logits: Float32Array } {
  const out = path.join(dir, 'ours_logits.npy');
  const text = execFileSync(process.execPath, [...process.execArgv, script, ...args, '--child', dir, '--child-out', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const result = JSON.parse(text) as { seconds: number; peak_rss_mib: number };
  return { ...result, logits: readNpy(out).data as Float32Array };
}

function runTorch(): { seconds: number; peak_rss_mib: number; logits: Float32Array } {
  const out = path.join(dir, 'torch_logits.npy');
  const text = execFileSync(python, [
    path.join(root, 'bench/predict_torch.py'), '--weights', weightsFile, '--volume', volumeFile, '--out', out,
    '--patch', patch.join(','), '--features', features.join(','), '--classes', String(numClasses), '--batch', String(windowsPerBatch),
    '--threads', String(threads), '--precision', precision, '--device', deviceText.startsWith('cuda') ? 'cuda' : 'cpu', ...(tta ? ['--tta'] : []),
  ], { encoding: 'utf8' });
  const result = JSON.parse(text) as { seconds: number; peak_rss_mib: number };
  return { ...result, logits: readNpy(out).data as Float32Array };
}

const ours: number[] = [];
const torch: number[] = [];
const torchRss: number[] = [];
const oursRss: number[] = [];
let difference = 0;
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? ['ours', 'torch'] : ['torch', 'ours'];
  let a: Float32Array | null = null;
  let b: Float32Array | null = null;
  for (const side of order) {
    if (side === 'ours') { const r = runOurs(); ours.push(r.seconds); oursRss.push(r.peak_rss_mib); a = r.logits; }
    else { const r = runTorch(); torch.push(r.seconds); torchRss.push(r.peak_rss_mib); b = r.logits; }
  }
  for (let i = 0; i < a!.length; i++) difference = Math.max(difference, Math.abs(a![i]! - b![i]!));
}
fs.rmSync(dir, { recursive: true, force: true });
const windows = shape.map((s, axis) => Math.ceil((s - patch[axis]!) / (patch[axis]! * 0.5)) + 1).reduce((x, y) => x * y, 1);
console.log(JSON.stringify({
  cpu: cpuInfo(),
  benchmark: 'predict-sliding-window',
  config: { shape, patch, features, classes: numClasses, windows_per_batch: windowsPerBatch, windows, tta, threads, precision, device: deviceText, rounds },
  lesionseg: { seconds: median(ours), rounds: ours, peak_rss_mib: median(oursRss), peak_rss_mib_rounds: oursRss },
  pytorch: { seconds: median(torch), rounds: torch, peak_rss_mib: median(torchRss), peak_rss_mib_rounds: torchRss },
  ratio_time_ours_over_pytorch: median(ours) / median(torch),
  ratio_peak_rss_ours_over_pytorch: median(oursRss) / median(torchRss),
  max_abs_logit_difference: difference,
}, null, 2));
model.dispose();
