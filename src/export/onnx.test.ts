/**
 * ONNX export and `--engine onnx`: the exported graph run by onnxruntime-node gives libtorch's
 * logits on a window (two U-Nets: the PyTorch fixture's anisotropic 2-stage one and a 3-stage one
 * with random instance-norm affines, so scale/B and every stride path are exercised), the masks of
 * the phantom through predictFiles are identical with either engine (TTA on), the file carries its
 * opset and metadata_props, and bad input is refused naming the file.
 *
 * Tolerance: both sides compute in float32 with different kernels (oneDNN vs MLAS) and summation
 * orders; per op that is ~1e-6 relative, and the deepest path here is ~15 ops, so 1e-4 of max |logit|
 * (the bound) leaves an order of magnitude on any CPU (AVX2 or AVX-512).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import { predictFiles } from '../infer/index.js';
import { FIXTURES, TINY_CONFIG, TINY_PATCH, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { readNifti } from '../io/index.js';
import { HybridUNet, PlainConvUNet, type UNetConfig } from '../models/index.js';
import { loadStateDict, stateDict, type HostTensor } from '../nn/index.js';
import { fromArray, manualSeed, noGrad, scope } from '../tensor/index.js';
import { exportOnnx } from './onnx.js';
import { OnnxEngine, onnxEngineFactory } from './onnxEngine.js';
import { readTopLevelStrings } from './onnx-test-support.js';

/** Seeded uniform [-1, 1) (a small LCG: the test must not depend on Math.random). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  };
}

const THREE_STAGES: UNetConfig = {
  inputChannels: 2,
  numClasses: 3,
  featuresPerStage: [4, 8, 12],
  kernelSizes: [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
  strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
  deepSupervision: true,
};
const THREE_STAGES_PATCH: [number, number, number] = [8, 16, 16];

/** A 3-stage U-Net whose norm weights and biases are random too (at init they are 1 and 0). */
function randomAffineUNet(): PlainConvUNet {
  manualSeed(3);
  const network = new PlainConvUNet(THREE_STAGES);
  const random = seeded(7);
  const state = new Map<string, HostTensor>();
  for (const [name, entry] of stateDict(network)) {
    if (!name.includes('.norm.')) continue;
    const values = new Float32Array(entry.shape.reduce((a, b) => a * b, 1)).map(() => (name.endsWith('weight') ? 1 + 0.5 * random() : 0.3 * random()));
    state.set(name, { dtype: 'F32', shape: entry.shape, data: new Uint8Array(values.buffer) });
  }
  const report = loadStateDict(network, state);
  assert.equal(report.loaded.length, state.size);
  return network;
}

function randomWindow(shape: number[], seed: number): Float32Array {
  const random = seeded(seed);
  return new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => 2 * random());
}

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

for (const c of [
  { name: 'the fixture U-Net (2 stages, kernel 1x3x3, stride 1x2x2)', build: () => fixtureUNet(), config: TINY_CONFIG, patch: TINY_PATCH },
  { name: 'a 3-stage U-Net with random norm affines and 2 channels', build: randomAffineUNet, config: THREE_STAGES, patch: THREE_STAGES_PATCH },
]) {
  test(`onnxruntime-node's logits equal libtorch's on a window to 1e-4 of max |logit|: ${c.name}`, async (t) => {
    const dir = tempDir('onnx-window-');
    const network = c.build();
    try {
      const plan = tinyInferencePlan();
      plan.configuration.patchSize = c.patch;
      plan.configuration.normalization = Array.from({ length: c.config.inputChannels }, (_, i) => ({ ...plan.configuration.normalization[0]!, channel: `CT${i}` }));
      plan.datasets[0]!.channelNames = Object.fromEntries(plan.configuration.normalization.map((n, i) => [String(i), n.channel]));
      writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', network, c.config, plan);
      const onnxFile = path.join(dir, 'model.onnx');
      await exportOnnx(path.join(dir, 'run'), onnxFile);

      const shape = [2, c.config.inputChannels, ...c.patch];
      const host = randomWindow(shape, 11);
      network.deepSupervision = false;
      const expected = noGrad(() => scope(() => network.forward(fromArray(host, shape))[0]!.toFloat32Array()));
      const engine = await OnnxEngine.fromBytes(fs.readFileSync(onnxFile), { numClasses: c.config.numClasses, inputChannels: c.config.inputChannels });
      const input = fromArray(host, shape);
      const output = await engine.run(input);
      assert.deepEqual(output.shape, [2, c.config.numClasses, ...c.patch]);
      const actual = output.toFloat32Array();
      input.dispose();
      output.dispose();
      engine.dispose();

      let maxLogit = 0;
      let maxDiff = 0;
      for (let i = 0; i < expected.length; i++) {
        maxLogit = Math.max(maxLogit, Math.abs(expected[i]!));
        maxDiff = Math.max(maxDiff, Math.abs(expected[i]! - actual[i]!));
      }
      t.diagnostic(`max |logit| ${maxLogit.toExponential(3)}, max |onnx - torch| ${maxDiff.toExponential(3)} (relative ${(maxDiff / maxLogit).toExponential(3)})`);
      assert.ok(maxLogit > 0.1, `logits too small to compare (${maxLogit})`);
      assert.ok(maxDiff <= 1e-4 * maxLogit, `max difference ${maxDiff} exceeds 1e-4 x ${maxLogit}`);
    } finally {
      network.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('the exported file names opset 17 and carries the plan\'s preprocessing and patch in metadata_props', async () => {
  const dir = tempDir('onnx-meta-');
  const network = fixtureUNet();
  try {
    writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', network, TINY_CONFIG, tinyInferencePlan());
    const onnxFile = path.join(dir, 'out', 'model.onnx');
    await exportOnnx(path.join(dir, 'run'), onnxFile);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'out')), ['model.onnx'], 'no temporary file is left beside the model');
    const model = readTopLevelStrings(fs.readFileSync(onnxFile));
    assert.equal(model.irVersion, 8);
    assert.deepEqual(model.opsets, [{ domain: '', version: 17 }]);
    assert.equal(model.producerName, 'lesionseg');
    const meta = model.metadata;
    assert.deepEqual(JSON.parse(meta.patch_size!), TINY_PATCH);
    assert.deepEqual(JSON.parse(meta.target_spacing!), [2, 1, 1]);
    assert.deepEqual(JSON.parse(meta.transpose_forward!), [0, 1, 2]);
    assert.deepEqual(JSON.parse(meta.normalization!), tinyInferencePlan().configuration.normalization);
    assert.equal(meta.num_classes, '3');
    assert.deepEqual(JSON.parse(meta.plan!), tinyInferencePlan());
    assert.equal(meta['lesionseg.format'], 'lesionseg-onnx/1');
  } finally {
    network.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the phantom\'s masks through predict with --engine onnx and --engine torch are identical (mirroring TTA on)', async (t) => {
  const dir = tempDir('onnx-masks-');
  const network = fixtureUNet();
  try {
    writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', network, TINY_CONFIG, tinyInferencePlan());
    fs.mkdirSync(path.join(dir, 'in'));
    fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), path.join(dir, 'in', 'p1_0000.nii.gz'));
    const common = { model: path.join(dir, 'run'), input: path.join(dir, 'in'), saveProbabilities: true };
    await predictFiles({ ...common, output: path.join(dir, 'torch') });
    await predictFiles({ ...common, output: path.join(dir, 'onnx'), engine: onnxEngineFactory() });
    const torchMask = await readNifti(path.join(dir, 'torch', 'p1.nii.gz'));
    const onnxMask = await readNifti(path.join(dir, 'onnx', 'p1.nii.gz'));
    assert.deepEqual(onnxMask.shape, torchMask.shape);
    assert.deepEqual(onnxMask.affine, torchMask.affine);
    const labels = new Set(Array.from(torchMask.data as Uint8Array));
    assert.ok(labels.size > 1, 'the mask is not all one label, so the comparison means something');
    assert.deepEqual(Buffer.from(onnxMask.data.buffer, onnxMask.data.byteOffset, onnxMask.data.byteLength), Buffer.from(torchMask.data.buffer, torchMask.data.byteOffset, torchMask.data.byteLength));
    let maxDiff = 0;
    for (let k = 0; k < 3; k++) {
      const a = (await readNifti(path.join(dir, 'torch', `p1_probabilities_${k}.nii.gz`))).data;
      const b = (await readNifti(path.join(dir, 'onnx', `p1_probabilities_${k}.nii.gz`))).data;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(Number(a[i]) - Number(b[i])));
    }
    t.diagnostic(`labels ${[...labels].sort().join(',')}; max |p_onnx - p_torch| ${maxDiff.toExponential(3)}`);
    assert.ok(maxDiff < 1e-4, `probabilities differ by ${maxDiff}`);
  } finally {
    network.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input is refused naming the file: a missing run, an output that is a directory, a hybrid model', async () => {
  const dir = tempDir('onnx-refuse-');
  const network = fixtureUNet();
  const hybrid = new HybridUNet(TINY_CONFIG);
  try {
    writeTestCheckpoint(path.join(dir, 'run'), 'checkpoint_final', network, TINY_CONFIG, tinyInferencePlan());
    writeTestCheckpoint(path.join(dir, 'hybrid'), 'checkpoint_final', hybrid, TINY_CONFIG, tinyInferencePlan(), 'HybridUNet', { hybrid: { fuseLevels: 'bottleneck' } });
    const missing = path.join(dir, 'no-such-run');
    await assert.rejects(exportOnnx(missing, path.join(dir, 'a.onnx')), (e: unknown) => e instanceof InputError && e.message.includes(missing));
    fs.mkdirSync(path.join(dir, 'folder'));
    await assert.rejects(
      exportOnnx(path.join(dir, 'run'), path.join(dir, 'folder')),
      (e: unknown) => e instanceof InputError && e.code === 'bad-output' && e.message.includes(path.join(dir, 'folder')) && /is a directory/.test(e.message),
    );
    await assert.rejects(
      exportOnnx(path.join(dir, 'hybrid'), path.join(dir, 'h.onnx')),
      (e: unknown) => e instanceof InputError && e.code === 'not-exportable' && /HybridUNet/.test(e.message) && e.message.includes('checkpoint_final.json'),
    );
    assert.equal(fs.existsSync(path.join(dir, 'a.onnx')) || fs.existsSync(path.join(dir, 'h.onnx')), false);
  } finally {
    network.dispose();
    hybrid.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
