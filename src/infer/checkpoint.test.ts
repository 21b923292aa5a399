/** Reading checkpoints for prediction: the trainer's set, run folders and fold ensembles, and everything that is not ours. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError, InputError } from '../core/index.js';
import { readNifti } from '../io/index.js';
import { HybridUNet, PlainConvUNet } from '../models/index.js';
import { argmax, fromArray, manualSeed, noGrad, scope } from '../tensor/index.js';
import { buildInferenceNetwork, readInferenceCheckpoint, resolveCheckpoints } from '../checkpoint/index.js';
import { Predictor } from './predictor.js';
import { FIXTURES, TINY_CONFIG, TINY_PATCH, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from './test-support.js';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'infer-ckpt-'));
}

const isCheckpointError = (pattern: RegExp, file: string) => (error: unknown) =>
  error instanceof CheckpointError && pattern.test(error.message) && error.message.includes(file);

test('a checkpoint set round-trips: same architecture, plan and weights, deep supervision off', () => {
  const dir = tempDir();
  const model = fixtureUNet();
  const file = writeTestCheckpoint(dir, 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  const checkpoint = readInferenceCheckpoint(file);
  assert.equal(checkpoint.architecture.name, 'PlainConvUNet');
  assert.deepEqual(checkpoint.plan, tinyInferencePlan());
  const network = buildInferenceNetwork(checkpoint, { type: 'cpu' });
  assert.equal(network.deepSupervision, false);
  const a = model.parameterDict();
  for (const [name, parameter] of network.namedParameters()) assert.deepEqual(parameter.value.toFloat32Array(), a.get(name)!.value.toFloat32Array(), name);
  // The same file by its base name, its sidecar, or its run folder.
  assert.equal(readInferenceCheckpoint(path.join(dir, 'checkpoint_final')).file, file);
  assert.equal(readInferenceCheckpoint(path.join(dir, 'checkpoint_final.json')).file, file);
  assert.deepEqual(resolveCheckpoints(dir), [file]);
  network.dispose();
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a hybrid-encoder checkpoint (fusion at every level or the bottleneck only) predicts like its network', () => {
  const dir = tempDir();
  // No zero voxels (no crop), the plan's spacing (no resampling), one window: the mask is the argmax of one forward pass.
  const data = Float32Array.from({ length: TINY_PATCH[0] * TINY_PATCH[1] * TINY_PATCH[2] }, (_, i) => 1 + ((i * 7919) % 97));
  const input = data.map((v) => (Math.min(90, Math.max(-10, v)) - 40) / 20);
  for (const fuseLevels of ['all', 'bottleneck'] as const) {
    manualSeed(fuseLevels === 'all' ? 3 : 4);
    const model = new HybridUNet(TINY_CONFIG, { fuseLevels });
    // The fusion levels come from the sidecar: architecture.hybrid (written now), or the strategy's
    // transfer plan (runs written before), never from the weight names; with neither it is refused.
    const bare = writeTestCheckpoint(path.join(dir, `${fuseLevels}-bare`), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan(), 'HybridUNet');
    assert.throws(() => readInferenceCheckpoint(bare), isCheckpointError(/records a HybridUNet but not its fusion levels/, 'checkpoint_final.json'));
    const older = writeTestCheckpoint(path.join(dir, `${fuseLevels}-older`), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan(), 'HybridUNet', {
      strategyDetails: { transfer: { plan: { model: { kind: 'HybridUNet', fuseLevels } } } },
    });
    assert.deepEqual(readInferenceCheckpoint(older).architecture.hybrid, { fuseLevels });
    const file = writeTestCheckpoint(path.join(dir, fuseLevels), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan(), 'HybridUNet', { hybrid: { fuseLevels } });
    const network = buildInferenceNetwork(readInferenceCheckpoint(file), { type: 'cpu' });
    assert.ok(network instanceof HybridUNet);
    assert.equal(network.fuseLevels, fuseLevels);
    const predictor = Predictor.fromCheckpoints([file], { mirrorAxes: [] });
    const result = predictor.predictCase([{ data, shape: TINY_PATCH, spacing: [2, 1, 1], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]] }]);
    const expected = scope(() => noGrad(() => argmax(model.forward(fromArray(input, [1, 1, ...TINY_PATCH]))[0]!, 1)).toTypedArray());
    assert.deepEqual([...result.segmentation.data], Array.from(expected as BigInt64Array, Number), fuseLevels);
    assert.ok(new Set(result.segmentation.data).size > 1, 'a constant mask would not test much');
    predictor.dispose();
    network.dispose();
    model.dispose();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('fold_K folders form an ensemble; --folds picks some; a missing fold is named', async () => {
  const dir = tempDir();
  manualSeed(4);
  const models = [0, 1, 2].map(() => new PlainConvUNet(TINY_CONFIG));
  models.forEach((model, k) => writeTestCheckpoint(path.join(dir, `fold_${k}`), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan()));
  assert.deepEqual(resolveCheckpoints(dir).map((f) => path.relative(dir, f)), ['fold_0/checkpoint_final.safetensors', 'fold_1/checkpoint_final.safetensors', 'fold_2/checkpoint_final.safetensors']);
  assert.deepEqual(resolveCheckpoints(dir, [2, 0]).map((f) => path.relative(dir, f)), ['fold_2/checkpoint_final.safetensors', 'fold_0/checkpoint_final.safetensors']);
  assert.throws(() => resolveCheckpoints(dir, [4]), (e: unknown) => e instanceof InputError && /fold 4 is not here: found fold_0, fold_1, fold_2/.test(e.message));
  const predictor = Predictor.fromCheckpoints(resolveCheckpoints(dir), { mirrorAxes: [] });
  assert.equal(predictor.networks.length, 3);
  const image = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  assert.deepEqual(predictor.predictCase([image]).segmentation.shape, image.shape);
  predictor.dispose();
  for (const model of models) model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('not our checkpoint: bare safetensors, another sidecar format, a .pth file, foreign weights, a torn set', () => {
  const dir = tempDir();
  // Weights without a sidecar (e.g. a PyTorch export).
  fs.copyFileSync(path.join(FIXTURES, 'tiny_unet.safetensors'), path.join(dir, 'model.safetensors'));
  assert.throws(() => readInferenceCheckpoint(path.join(dir, 'model.safetensors')), isCheckpointError(/not a lesionseg checkpoint: the sidecar model.json is missing/, 'model.safetensors'));
  // A JSON that is something else.
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ network_weights: 'x' }));
  assert.throws(() => readInferenceCheckpoint(path.join(dir, 'model.safetensors')), isCheckpointError(/not a lesionseg checkpoint sidecar/, 'model.json'));
  // A PyTorch .pth is read only inside an nnU-Net model folder (its plans say what the network is).
  fs.writeFileSync(path.join(dir, 'checkpoint_final.pth'), Buffer.from([0x80, 0x02, 0x7d, 0x71]));
  assert.throws(() => readInferenceCheckpoint(path.join(dir, 'checkpoint_final.pth')), isCheckpointError(/an nnU-Net checkpoint must sit in fold_K\/ of a model folder with plans\.json and dataset\.json/, 'checkpoint_final.pth'));
  // Weights of another network under a valid sidecar.
  const other = new PlainConvUNet({ ...TINY_CONFIG, featuresPerStage: [6, 8] });
  const file = writeTestCheckpoint(dir, 'foreign', other, TINY_CONFIG, tinyInferencePlan());
  const checkpoint = readInferenceCheckpoint(file);
  assert.throws(() => buildInferenceNetwork(checkpoint, { type: 'cpu' }), isCheckpointError(/the weights do not fit the recorded PlainConvUNet: .*encoder\.stages\.0\.0\.convs\.0\.conv\.weight has shape \[6, 1, 1, 3, 3\]/, 'foreign.safetensors'));
  // Weights changed after the sidecar was written.
  fs.appendFileSync(file, Buffer.from([0]));
  assert.throws(() => readInferenceCheckpoint(file), isCheckpointError(/torn checkpoint set: foreign\.safetensors has \d+ bytes and sha256 [0-9a-f]{12}\.\.\., the sidecar recorded/, 'foreign.json'));
  // A multi-head pre-training model has no single label space.
  const multi = writeTestCheckpoint(dir, 'multi', other, TINY_CONFIG, tinyInferencePlan(), 'MultiHeadUNet');
  assert.throws(() => readInferenceCheckpoint(multi), isCheckpointError(/architecture 'MultiHeadUNet' cannot predict/, 'multi.json'));
  // A folder that is not a run.
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  assert.throws(() => resolveCheckpoints(empty), isCheckpointError(/not a lesionseg run folder/, 'empty'));
  other.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a checkpoint without a plan falls back to plan.json beside it, else says so', () => {
  const dir = tempDir();
  const model = new PlainConvUNet(TINY_CONFIG);
  const file = writeTestCheckpoint(dir, 'checkpoint_final', model, TINY_CONFIG, null);
  assert.throws(() => readInferenceCheckpoint(file), isCheckpointError(/records no plan and there is no plan.json/, 'checkpoint_final.json'));
  fs.writeFileSync(path.join(dir, 'plan.json'), JSON.stringify({ ...tinyInferencePlan(), configuration: { patchSize: [8] } }));
  assert.throws(() => readInferenceCheckpoint(file), isCheckpointError(/plan is invalid/, 'plan.json'));
  fs.writeFileSync(path.join(dir, 'plan.json'), JSON.stringify(tinyInferencePlan()));
  assert.deepEqual(readInferenceCheckpoint(file).plan, tinyInferencePlan());
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});
