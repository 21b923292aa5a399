/**
 * nnU-Net v2 and PyTorch exports against PyTorch itself: a tiny run trained here (two folds of an
 * arm folder) exports as an nnU-Net model folder; Debian's python3-torch opens each checkpoint with
 * the weights-only loader, builds the network from the exported plans.json with the pure-PyTorch
 * references (test/fixtures/pyref/exported_model_check.py), loads network_weights with
 * strict=True and runs a window, whose logits must be ours. Our own readers read the folder back:
 * the same weights, momentum and plan. A ResidualEncoderUNet, a multi-head model (one task) and a
 * plain state dict (--format torch) go the same way; a HybridUNet and a multi-head model without
 * --task are refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointError, CPU, InputError } from '../core/index.js';
import { buildInferenceNetwork, readInferenceCheckpoint } from '../checkpoint/index.js';
import { planFromNnunet } from '../data/index.js';
import { readDatasetJson, readNnunetCheckpoint, readNpy, writeNpy, type SafetensorsEntry } from '../io/index.js';
import { HybridUNet, MultiHeadUNet, ResidualEncoderUNet, type UNetConfig } from '../models/index.js';
import { Rng } from '../core/index.js';
import { fromArray, noGrad, scope } from '../tensor/index.js';
import { runTinyTraining } from '../train/test-support.js';
import { tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { exportNnunet, exportTorch, readExportModel } from './index.js';
import { relativeError } from '../tensor/test-support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = path.join(ROOT, 'test/fixtures/pyref/exported_model_check.py');
const PYTHON = '/usr/bin/python3';

/** Whether python3 with torch and numpy runs here; in CI (CI=true) its absence fails the test. */
function pythonTorch(t: { skip(message: string): void }): boolean {
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (probe.status === 0) return true;
  const why = `${PYTHON} cannot import torch and numpy (${(probe.stderr || String(probe.error ?? '')).trim().split('\n').pop()}); install python3-torch and python3-numpy (scripts/setup.sh)`;
  if (process.env.CI === 'true') assert.fail(why);
  t.skip(why);
  return false;
}

function runPython(args: string[]): Record<string, unknown> {
  const report = args[args.length - 1]!;
  execFileSync('nice', ['-n', '19', PYTHON, SCRIPT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(fs.readFileSync(report, 'utf8')) as Record<string, unknown>;
}

function window(dir: string, shape: number[], seed: number): { file: string; data: Float32Array } {
  const rng = new Rng(seed);
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const file = path.join(dir, `window_${seed}.npy`);
  writeNpy(file, data, shape);
  return { file, data };
}

/** Our libtorch logits of `checkpointFile`'s network on the window. */
function ourLogits(checkpointFile: string, input: { data: Float32Array }, shape: number[]): Float32Array {
  const network = buildInferenceNetwork(readInferenceCheckpoint(checkpointFile), CPU);
  try {
    return noGrad(() => scope(() => network.forward(fromArray(input.data, shape))[0]!.toFloat32Array()));
  } finally {
    network.dispose();
  }
}

function sameBytes(a: SafetensorsEntry, b: SafetensorsEntry): boolean {
  return a.dtype === b.dtype && a.shape.join() === b.shape.join() && Buffer.from(a.data).equals(Buffer.from(b.data));
}

// fp32 forward passes of the same weights on the same window: libtorch and PyTorch run the same kernels up to
// summation order, a few ulps per op over ~20 ops; 1e-4 of the logits' scale (the issue's bound) leaves room.
const LOGIT_TOLERANCE = 1e-4;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'export-nnunet-'));
const arm = path.join(tmp, 'runs', 'scratch');
let trained: Promise<void> | null = null;
/** An arm folder with fold_0 and fold_1: two tiny scratch runs (2 epochs, other seeds). */
function trainArm(): Promise<void> {
  trained ??= (async () => {
    await runTinyTraining({ runDir: path.join(arm, 'fold_0'), mode: 'fresh', numEpochs: 2, seed: 11 });
    await runTinyTraining({ runDir: path.join(arm, 'fold_1'), mode: 'fresh', numEpochs: 2, seed: 12 });
  })();
  return trained;
}

test('a study arm exports as one nnU-Net model folder that our readers read back unchanged', async () => {
  await trainArm();
  const out = path.join(tmp, 'nnunet-arm');
  const result = exportNnunet({ run: arm, out });
  assert.deepEqual(result.folds, [0, 1]);
  for (const name of ['plans.json', 'dataset.json', 'fold_0/checkpoint_final.pth', 'fold_1/checkpoint_final.pth']) assert.ok(fs.existsSync(path.join(out, name)), name);
  assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.includes('.partial')), [], 'no staging folder is left');

  const model = readExportModel(arm);
  for (const fold of model.folds) {
    const back = readNnunetCheckpoint(path.join(out, `fold_${fold.fold}`, 'checkpoint_final.pth'), { optimizer: true });
    assert.equal(back.trainerName, 'nnUNetTrainer');
    assert.equal(back.configuration, '3d_fullres');
    assert.equal(back.fold, fold.fold);
    assert.deepEqual(back.mirrorAxes, [0, 1, 2]);
    assert.equal(back.currentEpoch, 2);
    assert.deepEqual([...back.weights.keys()], [...fold.weights.keys()], 'canonical names in parameter order');
    for (const [name, value] of fold.weights) assert.ok(sameBytes(back.weights.get(name)!, value), name);
    // The aliases: all_modules.{0,1} of every conv block and decoder.encoder.* of the whole encoder, each checked by the reader.
    const blocks = [...fold.weights.keys()].filter((n) => /\.(conv|norm)\.[^.]+$/.test(n)).length;
    const encoder = [...fold.weights.keys()].filter((n) => n.startsWith('encoder.')).length;
    const encoderBlocks = [...fold.weights.keys()].filter((n) => n.startsWith('encoder.') && /\.(conv|norm)\.[^.]+$/.test(n)).length;
    assert.equal(back.aliasesChecked, blocks + encoder + encoderBlocks);
    assert.ok(back.optimizer !== null);
    assert.equal(back.optimizer.momentumFactor, 0.99);
    assert.equal(back.optimizer.nesterov, true);
    assert.equal(back.optimizer.momentum.size, fold.momentum!.size);
    for (const [name, value] of fold.momentum!) assert.ok(sameBytes(back.optimizer.momentum.get(name)!, value), `momentum ${name}`);
  }

  // plans.json + dataset.json read back (data's nnU-Net converter) to the preprocessing and network we trained with.
  const plans = JSON.parse(fs.readFileSync(path.join(out, 'plans.json'), 'utf8')) as unknown;
  const { plan } = planFromNnunet(plans, readDatasetJson(out), { plansFile: path.join(out, 'plans.json') });
  const ours = model.plan.configuration;
  for (const key of ['patchSize', 'targetSpacing', 'medianShape', 'transpose', 'normalization', 'resampling', 'batchDice', 'batchSize'] as const) {
    assert.deepEqual(plan.configuration[key], ours[key], key);
  }
  const { vramEstimate: _a, ...network } = plan.configuration.network as typeof ours.network & { vramEstimate?: number };
  assert.deepEqual(network, ours.network);
  assert.deepEqual(plan.datasets[0]!.labels, model.dataset.labels);
});

test('PyTorch loads the exported folds weights-only, strict, and its logits are ours', async (t) => {
  if (!pythonTorch(t)) return;
  await trainArm();
  const out = path.join(tmp, 'nnunet-arm-py');
  exportNnunet({ run: arm, out });
  const shape = [1, 1, 8, 16, 16];
  const input = window(tmp, shape, 5);
  for (const fold of [0, 1]) {
    const logitsFile = path.join(tmp, `py_logits_${fold}.npy`);
    const report = runPython(['nnunet', out, String(fold), input.file, logitsFile, path.join(tmp, `report_${fold}.json`)]);
    assert.deepEqual(report.checkpoint_keys_missing, []);
    assert.equal(report.key_order_equal, true, 'the state dict lists its keys as PyTorch does');
    assert.equal(report.optimizer_shapes_fit, true, 'momentum buffer i fits model.parameters()[i]');
    assert.equal(report.optimizer_loads, true);
    assert.equal(report.trainer_name, 'nnUNetTrainer');
    assert.equal(report.fold, fold);
    assert.deepEqual(report.logging_lengths, { mean_fg_dice: 2, ema_fg_dice: 2, dice_per_class_or_region: 2, train_losses: 2, val_losses: 2, lrs: 2, epoch_start_timestamps: 2, epoch_end_timestamps: 2 });
    const reference = readNpy(logitsFile).data as Float32Array;
    const ours = ourLogits(path.join(arm, `fold_${fold}`, 'checkpoint_final.safetensors'), input, shape);
    assert.equal(ours.length, reference.length);
    const error = relativeError(ours, reference);
    t.diagnostic(`fold ${fold}: max |ours - PyTorch| / max |PyTorch| = ${error.toExponential(2)}`);
    assert.ok(error <= LOGIT_TOLERANCE, `fold ${fold}: relative error ${error}`);
    // Our nnU-Net reader predicts with the exported .pth: the very same weights, so the very same logits.
    const viaExport = ourLogits(path.join(out, `fold_${fold}`, 'checkpoint_final.pth'), input, shape);
    assert.deepEqual(viaExport, ours);
  }
});

test('--format torch: a plain state dict PyTorch loads weights-only with strict=True', async (t) => {
  if (!pythonTorch(t)) return;
  await trainArm();
  const run = path.join(arm, 'fold_1');
  const file = path.join(tmp, 'fold1.pth');
  const result = exportTorch({ run, out: file });
  assert.equal(result.fold, 1);
  const folder = path.join(tmp, 'nnunet-fold1');
  exportNnunet({ run, out: folder });
  const shape = [1, 1, 8, 16, 16];
  const input = window(tmp, shape, 6);
  const logitsFile = path.join(tmp, 'torch_logits.npy');
  const report = runPython(['torch', file, path.join(folder, 'plans.json'), input.file, logitsFile, path.join(tmp, 'report_torch.json')]);
  assert.equal(report.loader, 'torch.load(weights_only=True)');
  assert.equal(report.key_order_equal, true);
  assert.equal(report.state_dict_keys, result.stateDictKeys);
  const ours = ourLogits(path.join(run, 'checkpoint_final.safetensors'), input, shape);
  const error = relativeError(ours, readNpy(logitsFile).data as Float32Array);
  t.diagnostic(`state dict: relative error ${error.toExponential(2)}`);
  assert.ok(error <= LOGIT_TOLERANCE);
  assert.throws(() => exportTorch({ run: arm, out: path.join(tmp, 'both.pth') }), (error: unknown) => error instanceof InputError && /--fold K/.test(error.message));
});

test('a ResidualEncoderUNet exports with its residual blocks aliased as nnU-Net names them', async (t) => {
  const plan = tinyInferencePlan();
  const config = { inputChannels: 1, numClasses: 3, featuresPerStage: [4, 8, 16], kernelSizes: [[3, 3, 3], [3, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]], nBlocksPerStage: [1, 2, 2], nConvPerStageDecoder: 1, deepSupervision: false };
  plan.configuration.network = { ...plan.configuration.network, architecture: 'ResidualEncoderUNet', nStages: 3, featuresPerStage: [4, 8, 16], kernelSizes: [[3, 3, 3], [3, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]], nBlocksPerStage: [1, 2, 2], nConvPerStageDecoder: 1 };
  const network = new ResidualEncoderUNet(config, { device: CPU });
  const run = path.join(tmp, 'resenc');
  writeTestCheckpoint(run, 'checkpoint_final', network, config as UNetConfig, plan, 'ResidualEncoderUNet');
  network.dispose();
  const out = path.join(tmp, 'nnunet-resenc');
  exportNnunet({ run, out });
  const back = readNnunetCheckpoint(path.join(out, 'fold_0', 'checkpoint_final.pth'));
  assert.ok(back.aliasesChecked > 0);
  if (!pythonTorch(t)) return;
  const shape = [1, 1, 8, 16, 16];
  const input = window(tmp, shape, 7);
  const logitsFile = path.join(tmp, 'resenc_logits.npy');
  const report = runPython(['nnunet', out, '0', input.file, logitsFile, path.join(tmp, 'report_resenc.json')]);
  assert.equal(report.key_order_equal, true);
  const ours = ourLogits(path.join(run, 'checkpoint_final.safetensors'), input, shape);
  const error = relativeError(ours, readNpy(logitsFile).data as Float32Array);
  t.diagnostic(`ResidualEncoderUNet: relative error ${error.toExponential(2)}`);
  assert.ok(error <= LOGIT_TOLERANCE);
});

test('a multi-head model exports one task per folder (--task), its head as decoder.seg_layers', () => {
  const plan = tinyInferencePlan();
  plan.datasets = [plan.datasets[0]!, { ...plan.datasets[0]!, name: 'Tumour', labels: { background: 0, tumour: 1 } }];
  const config: UNetConfig = { inputChannels: 1, numClasses: 3, featuresPerStage: [4, 8], kernelSizes: [[1, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2]], deepSupervision: true };
  const network = new MultiHeadUNet(config, [3, 2], { device: CPU });
  const run = path.join(tmp, 'multi');
  writeTestCheckpoint(run, 'checkpoint_final', network, config, plan, 'MultiHeadUNet');
  network.dispose();
  const sidecarFile = path.join(run, 'checkpoint_final.json');
  const sidecar = JSON.parse(fs.readFileSync(sidecarFile, 'utf8')) as Record<string, Record<string, unknown>>;
  sidecar.architecture!.taskClasses = [3, 2];
  sidecar.data = { tasks: [{ task: 0, dataset: 'Phantom' }, { task: 1, dataset: 'Tumour' }] } as unknown as Record<string, unknown>;
  fs.writeFileSync(sidecarFile, JSON.stringify(sidecar));

  assert.throws(() => exportNnunet({ run, out: path.join(tmp, 'multi-none') }), (error: unknown) => error instanceof InputError && /tasks Phantom, Tumour/.test(error.message) && /--task NAME/.test(error.message));
  assert.throws(() => exportNnunet({ run, out: path.join(tmp, 'multi-bad'), task: 'Covid' }), (error: unknown) => error instanceof InputError && /use one of Phantom, Tumour/.test(error.message));
  assert.equal(fs.existsSync(path.join(tmp, 'multi-none')), false, 'nothing written when refused');
  const out = path.join(tmp, 'multi-tumour');
  exportNnunet({ run, out, task: 'Tumour' });
  const back = readNnunetCheckpoint(path.join(out, 'fold_0', 'checkpoint_final.pth'));
  const source = readExportModel(run, { task: 'Tumour' });
  assert.deepEqual(back.weights.get('decoder.seg_layers.0.weight')!.shape, [2, 4, 1, 1, 1]);
  assert.ok(sameBytes(back.weights.get('decoder.seg_layers.0.weight')!, source.folds[0]!.weights.get('decoder.seg_layers.0.weight')!));
  assert.equal([...back.weights.keys()].some((n) => n.includes('task_heads')), false);
  assert.deepEqual((JSON.parse(fs.readFileSync(path.join(out, 'dataset.json'), 'utf8')) as { labels: unknown }).labels, { background: 0, tumour: 1 });
});

test('a HybridUNet is refused by name, and so is an output folder that holds files', () => {
  const plan = tinyInferencePlan();
  const config: UNetConfig = { inputChannels: 1, numClasses: 3, featuresPerStage: [4, 8], kernelSizes: [[1, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [1, 2, 2]], deepSupervision: false };
  const network = new HybridUNet(config, { device: CPU });
  const run = path.join(tmp, 'hybrid');
  writeTestCheckpoint(run, 'checkpoint_final', network, config, plan, 'HybridUNet', { hybrid: { fuseLevels: 'all' } });
  network.dispose();
  assert.throws(() => exportNnunet({ run, out: path.join(tmp, 'hybrid-out') }), (error: unknown) => error instanceof InputError && /HybridUNet/.test(error.message) && /no nnU-Net v2/.test(error.message));
  const busy = path.join(tmp, 'busy');
  fs.mkdirSync(busy);
  fs.writeFileSync(path.join(busy, 'x'), '');
  assert.throws(() => exportNnunet({ run, out: busy }), (error: unknown) => error instanceof InputError && /not empty/.test(error.message));
  assert.throws(() => readExportModel(path.join(tmp, 'nope')), (error: unknown) => error instanceof InputError || error instanceof CheckpointError);
});
