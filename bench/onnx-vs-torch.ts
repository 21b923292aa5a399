/**
 * Predict benchmark, --engine torch vs --engine onnx in one run: the same run folder (a
 * PlainConvUNet with seeded random weights and a plan whose target spacing is the volume's, so
 * preprocessing does not resample) and the same CT-like volume go through `predict`'s entry
 * function (predictFiles: preprocessing, Gaussian sliding window, optional mirroring TTA, export,
 * NIfTI write), once per engine, each in a fresh child process of this script so that each peak
 * RSS is its own. `seconds` is the whole predict; phases.model_load_and_checks is the model load
 * (for onnx: exporting the network in memory and creating the onnxruntime session) plus predict's
 * input checks and first read of the case, which is why phases.read is ~0. The masks are compared.
 * Usage: npx tsx bench/onnx-vs-torch.ts [--shape 48,160,160] [--patch 32,96,96] [--features 16,32,64,128,256]
 *        [--batch 2] [--tta] [--threads 2] [--rounds 1]
 * Prints JSON: per engine the predict seconds (median over rounds), its phases, peak RSS (MiB);
 * the time and RSS ratios onnx / torch; how many mask voxels differ.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { onnxEngineFactory } from '../src/export/index.js';
import { predictFiles } from '../src/infer/index.js';
import { tinyInferencePlan, writeTestCheckpoint } from '../src/infer/test-support.js';
import { readNifti, writeNifti } from '../src/io/index.js';
import { PlainConvUNet, type UNetConfig } from '../src/models/index.js';
import { manualSeed, setNumThreads } from '../src/tensor/index.js';
import { args, option, ints, median } from './support.js';

const self = fileURLToPath(import.meta.url);
const STRIDES = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2], [1, 2, 2]];
const SPACING: [number, number, number] = [2, 1, 1];

interface ChildResult {
  engine: string;
  seconds: number;
  phases: { model_load_and_checks: number; read: number; preprocess: number; sliding_window: number; export: number; write: number };
  peak_rss_mib: number;
}

/** Child mode: one predict with one engine, in this fresh process; prints its JSON. */
async function child(engine: 'torch' | 'onnx', run: string, input: string, output: string, threads: number, tta: boolean, batch: number): Promise<void> {
  setNumThreads(threads);
  const t0 = performance.now();
  const result = await predictFiles({
    model: run, input, output, windowsPerBatch: batch, mirrorAxes: tta ? [0, 1, 2] : [],
    ...(engine === 'onnx' ? { engine: onnxEngineFactory({ threads }) } : {}),
  });
  const seconds = (performance.now() - t0) / 1000;
  const s = result.cases[0]!.seconds;
  const caseSeconds = s.read + s.preprocess + s.slidingWindow + s.export + s.write;
  const out: ChildResult = {
    engine,
    seconds,
    phases: { model_load_and_checks: seconds - caseSeconds, read: s.read, preprocess: s.preprocess, sliding_window: s.slidingWindow, export: s.export, write: s.write },
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function main(): Promise<void> {
  const shape = ints(option('shape', '48,160,160')) as [number, number, number];
  const patch = ints(option('patch', '32,96,96')) as [number, number, number];
  const features = ints(option('features', '16,32,64,128,256'));
  const batch = Number(option('batch', '2'));
  const tta = args.includes('--tta');
  const threads = Number(option('threads', '2'));
  const rounds = Number(option('rounds', '1'));

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-onnx-'));
  try {
    manualSeed(0);
    const config: UNetConfig = { inputChannels: 1, numClasses: 2, featuresPerStage: features, kernelSizes: features.map(() => [3, 3, 3]), strides: STRIDES.slice(0, features.length), deepSupervision: false };
    const plan = tinyInferencePlan({ targetSpacing: SPACING });
    plan.configuration.patchSize = patch;
    const network = new PlainConvUNet(config);
    const run = path.join(dir, 'run');
    writeTestCheckpoint(run, 'checkpoint_final', network, config, plan);
    network.dispose();
    // A CT-like volume: soft tissue with a brighter ball and seeded noise.
    const voxels = new Float32Array(shape[0] * shape[1] * shape[2]);
    let state = 12345;
    for (let z = 0, i = 0; z < shape[0]; z++) {
      for (let y = 0; y < shape[1]; y++) {
        for (let x = 0; x < shape[2]; x++, i++) {
          state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
          const r = Math.hypot((z - shape[0] / 2) * SPACING[0], y - shape[1] / 2, x - shape[2] / 2);
          voxels[i] = (r < shape[1] / 5 ? 80 : 20) + 30 * (state / 2 ** 32 - 0.5);
        }
      }
    }
    const input = path.join(dir, 'case_0000.nii.gz');
    await writeNifti(input, { data: voxels, shape, spacing: SPACING, affine: [[SPACING[2], 0, 0, 0], [0, SPACING[1], 0, 0], [0, 0, SPACING[0], 0], [0, 0, 0, 1]] }, { datatype: 'float32' });

    const results: Record<'torch' | 'onnx', ChildResult[]> = { torch: [], onnx: [] };
    for (let round = 0; round < rounds; round++) {
      const order: ('torch' | 'onnx')[] = round % 2 === 0 ? ['torch', 'onnx'] : ['onnx', 'torch'];
      for (const engine of order) {
        const text = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', engine, run, input, path.join(dir, `${engine}.nii.gz`), String(threads), tta ? '1' : '0', String(batch)], { encoding: 'utf8' });
        results[engine].push(JSON.parse(text.trim().split('\n').at(-1)!) as ChildResult);
      }
    }
    const torchMask = (await readNifti(path.join(dir, 'torch.nii.gz'))).data;
    const onnxMask = (await readNifti(path.join(dir, 'onnx.nii.gz'))).data;
    let differing = 0;
    for (let i = 0; i < torchMask.length; i++) if (torchMask[i] !== onnxMask[i]) differing += 1;
    const summary = (list: ChildResult[]) => ({
      seconds: median(list.map((r) => r.seconds)),
      rounds: list.map((r) => r.seconds),
      phases_first_round: list[0]!.phases,
      peak_rss_mib: Math.max(...list.map((r) => r.peak_rss_mib)),
    });
    const torch = summary(results.torch);
    const onnx = summary(results.onnx);
    const windows = shape.map((s, axis) => Math.max(1, Math.ceil((s - patch[axis]!) / (patch[axis]! * 0.5)) + 1)).reduce((x, y) => x * y, 1);
    console.log(JSON.stringify({
      cpu: cpuInfo(),
      benchmark: 'predict-onnx-vs-torch',
      config: { shape, patch, features, classes: config.numClasses, windows_per_batch: batch, windows, tta, threads, rounds },
      torch,
      onnx,
      ratio_time_onnx_over_torch: onnx.seconds / torch.seconds,
      ratio_sliding_window_onnx_over_torch: onnx.phases_first_round.sliding_window / torch.phases_first_round.sliding_window,
      ratio_peak_rss_onnx_over_torch: onnx.peak_rss_mib / torch.peak_rss_mib,
      mask_voxels: torchMask.length,
      mask_voxels_differing: differing,
    }, null, 2));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (args[0] === '--child') {
  await child(args[1] as 'torch' | 'onnx', args[2]!, args[3]!, args[4]!, Number(args[5]), args[6] === '1', Number(args[7]));
} else {
  await main();
}
