/**
 * Paper-scale benchmark on the CPU, before anyone spends GPU-weeks on the `paper` preset: one
 * full-size COVID-like phantom (`synth --size paper`, 120x512x512), the paper preset's plan of it
 * (src/data/planning_presets.ts: patch 50x160x192, batch 2, features 32..320, the pooling that
 * fits the patch) and that exact network (kernels and strides as planned), then
 * - training: `--iterations` SGD steps (forward, Dice+CE with deep supervision, backward,
 *   clipping, step) on a random batch of the plan's patch and batch size, per precision: fp32, and
 *   bf16 where cpuInfo().nativeBf16 (emulated bf16 takes minutes per step);
 * - prediction: one sliding-window prediction of the phantom by the untrained network through the
 *   Predictor `lesionseg predict` uses (preprocessing with the plan, Gaussian-weighted windows at
 *   step 0.5, export to the input geometry), no mirroring unless --tta.
 * Each part runs in its own child process (this script with --phase), so its peak RSS is its own.
 * Optionally (--torch) the same training step in PyTorch (bench/train_step_torch.py, the plan's
 * kernels and strides). Prints one JSON object, with the CPU from cpuInfo().
 * Usage: npx tsx bench/paper-scale.ts [--iterations 3] [--warmup 1] [--precisions fp32,bf16]
 *        [--predict-precision auto|fp32|bf16] [--tta] [--threads N] [--torch]
 *        [--size paper|small|tiny] [--preset paper|cpu|tiny] [--out FILE] [--plan-only]
 * `--size tiny --preset tiny --iterations 1` checks the script in seconds; the defaults are the
 * paper's scale (minutes per step on 2 cores).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo, resolvePrecision, type PrecisionRequest } from '../src/core/index.js';
import { loadPlan, planDatasets, savePlan, unetConfigFromPlan, type PresetName } from '../src/data/index.js';
import { listRawCases, readNifti } from '../src/io/index.js';
import { mirrorCombinations, paddedShape, paddingToPatch, Predictor, slidingWindowBoxes, type SpatialAxis } from '../src/infer/index.js';
import { PlainConvUNet } from '../src/models/index.js';
import { writeSynthDataset, type SynthSize } from '../src/synth/index.js';
import { manualSeed, setNumThreads } from '../src/tensor/index.js';
import { benchmarkTrainStep, type Precision } from '../src/train/index.js';
import { args, option } from './support.js';

const script = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(script), '..');
const cpu = cpuInfo();
const threads = Number(option('threads', String(cpu.cores)));
const iterations = Number(option('iterations', '3'));
const warmup = Number(option('warmup', '1'));
const tta = args.includes('--tta');
const peakRssMib = (): number => process.resourceUsage().maxRSS / 1024;

/** Child: the training steps of the plan's network at one precision. */
function trainPhase(planFile: string, precision: Precision): unknown {
  const plan = loadPlan(planFile);
  const config = unetConfigFromPlan(plan);
  const result = benchmarkTrainStep({
    featuresPerStage: config.featuresPerStage,
    strides: config.strides,
    kernelSizes: config.kernelSizes,
    patchSize: [...plan.configuration.patchSize],
    batchSize: plan.configuration.batchSize,
    inputChannels: config.inputChannels,
    numClasses: config.numClasses,
    threads,
    precision,
    device: { type: 'cpu' },
    warmup,
    iterations,
    seed: 0,
  });
  const { cpu: _cpu, ...rest } = result;
  return rest;
}

/** Child: one sliding-window prediction of the phantom with the plan's (untrained) network. */
async function predictPhase(planFile: string, datasetDir: string, request: PrecisionRequest): Promise<unknown> {
  setNumThreads(threads);
  manualSeed(0);
  const plan = loadPlan(planFile);
  const config = unetConfigFromPlan(plan);
  const precision = resolvePrecision(request, { type: 'cpu' }).precision as 'fp32' | 'bf16';
  const model = new PlainConvUNet({ ...config, deepSupervision: false }, { device: { type: 'cpu' } });
  const mirrorAxes: SpatialAxis[] = tta ? [0, 1, 2] : [];
  const predictor = new Predictor([model], plan, { precision, mirrorAxes, windowsPerBatch: 1 });
  const rawCase = listRawCases(datasetDir)[0]!;
  const image = await readNifti(rawCase.images[0]!);
  const started = performance.now();
  const prediction = predictor.predictCase([image], { caseId: rawCase.id });
  const seconds = (performance.now() - started) / 1000;
  const patch = plan.configuration.patchSize;
  const shape = prediction.properties.shapeAfterResampling;
  const windows = slidingWindowBoxes(paddedShape(shape, paddingToPatch(shape, patch)), patch, 0.5).length;
  const params = model.countParameters().total;
  predictor.dispose();
  return {
    precision,
    tta,
    image_shape: image.shape,
    image_spacing_mm: image.spacing,
    preprocessed_shape: shape,
    windows,
    forward_passes: windows * mirrorCombinations(mirrorAxes).length,
    windows_per_batch: 1,
    params,
    seconds_total: seconds,
    seconds: prediction.seconds,
    foreground_voxels: prediction.segmentation.data.reduce((n, v) => n + (v > 0 ? 1 : 0), 0),
    peak_rss_mib: peakRssMib(),
  };
}

function child(phaseArgs: string[]): unknown {
  const out = execFileSync(process.execPath, [...process.execArgv, script, ...phaseArgs, '--threads', String(threads), '--iterations', String(iterations), '--warmup', String(warmup), ...(tta ? ['--tta'] : [])], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out) as unknown;
}

async function main(): Promise<void> {
  const phase = option('phase', '');
  if (phase === 'train') return void process.stdout.write(JSON.stringify(trainPhase(option('plan', ''), option('precision', 'fp32') as Precision)));
  if (phase === 'predict') return void process.stdout.write(JSON.stringify(await predictPhase(option('plan', ''), option('dataset', ''), option('predict-precision', 'auto') as PrecisionRequest)));

  const size = option('size', 'paper') as SynthSize;
  const preset = option('preset', 'paper') as PresetName;
  const precisions = option('precisions', cpu.nativeBf16 ? 'fp32,bf16' : 'fp32').split(',') as Precision[];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-paper-scale-'));
  try {
    const datasetDir = path.join(dir, 'covid');
    let t = performance.now();
    await writeSynthDataset({ kind: 'covid', cases: 1, out: datasetDir, seed: 0, size });
    const synthSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    // The fingerprint's intensity sample only sets the normalisation; 1e6 draws keep planning quick (the paper preset draws 1e8).
    const planFile = path.join(dir, 'plan.json');
    savePlan(planFile, await planDatasets([datasetDir], preset, { sampleBudget: 1e6 }));
    const planSeconds = (performance.now() - t) / 1000;
    const plan = loadPlan(planFile);
    const network = plan.configuration.network;
    const planReport = { preset, plan_seconds: planSeconds, patch: plan.configuration.patchSize, batch: plan.configuration.batchSize, target_spacing_mm: plan.configuration.targetSpacing, median_shape: plan.configuration.medianShape, features: network.featuresPerStage, kernels: network.kernelSizes, strides: network.strides };
    if (args.includes('--plan-only')) return void process.stdout.write(`${JSON.stringify({ benchmark: 'paper-scale', cpu, phantom: { size, synth_seconds: synthSeconds }, plan: planReport }, null, 2)}\n`);
    const train: Record<string, unknown> = {};
    for (const precision of precisions) {
      process.stderr.write(`paper-scale: training ${iterations} + ${warmup} warm-up iteration(s) in ${precision} ...\n`);
      train[precision] = child(['--phase', 'train', '--plan', planFile, '--precision', precision]);
    }
    process.stderr.write('paper-scale: one sliding-window prediction of the phantom ...\n');
    const predict = child(['--phase', 'predict', '--plan', planFile, '--dataset', datasetDir, '--predict-precision', option('predict-precision', 'auto')]);
    let pytorch: unknown = null;
    if (args.includes('--torch')) {
      const python = process.env.LESIONSEG_PYTHON ?? '/usr/bin/python3';
      pytorch = Object.fromEntries(
        precisions.map((precision) => {
          const out = execFileSync(python, [path.join(root, 'bench/train_step_torch.py'), '--precision', precision, '--threads', String(threads), '--iterations', String(iterations), '--warmup', String(warmup), '--features', network.featuresPerStage.join(','), '--patch', plan.configuration.patchSize.join(','), '--batch', String(plan.configuration.batchSize), '--kernels', JSON.stringify(network.kernelSizes), '--strides', JSON.stringify(network.strides)], { encoding: 'utf8' });
          return [precision, JSON.parse(out) as unknown];
        }),
      );
    }
    const skipped = precisions.includes('bf16') ? null : 'bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), where it is emulated and many times slower; pass --precisions fp32,bf16 to run it anyway';
    const report = {
      benchmark: 'paper-scale',
      cpu,
      threads,
      phantom: { size, synth_seconds: synthSeconds },
      plan: planReport,
      iterations,
      warmup,
      train,
      predict,
      pytorch,
      skipped,
    };
    const text = JSON.stringify(report, null, 2);
    const outFile = option('out', '');
    if (outFile !== '') fs.writeFileSync(outFile, `${text}\n`);
    process.stdout.write(`${text}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
