/**
 * nnU-Net v2 model folders for prediction (test/fixtures/nnunet/make_nnunet_fixtures.py): the
 * PlainConvUNet and ResidualEncoderUNet weights load by name and give PyTorch's logits of a window;
 * whole cases give PyTorch's masks and probabilities through nnU-Net's preprocessing, the folds'
 * ensemble and the checkpoint's mirroring axes; folds, checkpoints and configurations resolve as
 * nnU-Net's predictor resolves them; what we would build differently is refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointError, InputError, ValidationError } from '../core/index.js';
import { readNifti, readNnunetCheckpoint, readNpy } from '../io/index.js';
import { fromArray, noGrad, scope } from '../tensor/index.js';
import { buildInferenceNetwork, readInferenceCheckpoint, resolveCheckpoints } from '../checkpoint/index.js';
import { predictFiles } from './predictFiles.js';
import { FULL_MIRROR_RULE } from './adaptiveMirroring.js';
import { relativeError } from '../tensor/test-support.js';

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nnunet');
const PLAIN = path.join(HERE, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetPlans__3d_fullres');
const RESENC = path.join(HERE, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetResEncUNetMPlans__3d_fullres');

function float32(file: string): { data: Float32Array; shape: number[] } {
  const array = readNpy(file);
  return { data: array.data as Float32Array, shape: array.shape };
}

const WINDOWS = [
  { name: 'PlainConvUNet fold 0 final', file: path.join(PLAIN, 'fold_0/checkpoint_final.pth'), logits: 'plain_fold0_final_window_logits.npy', architecture: 'PlainConvUNet' },
  { name: 'PlainConvUNet fold 0 best', file: path.join(PLAIN, 'fold_0/checkpoint_best.pth'), logits: 'plain_fold0_best_window_logits.npy', architecture: 'PlainConvUNet' },
  { name: 'ResidualEncoderUNet fold 0 final', file: path.join(RESENC, 'fold_0/checkpoint_final.pth'), logits: 'resenc_fold0_final_window_logits.npy', architecture: 'ResidualEncoderUNet' },
];

for (const window of WINDOWS) {
  test(`${window.name}: the weights load by name and one window's logits are PyTorch's`, (t) => {
    const checkpoint = readInferenceCheckpoint(window.file);
    assert.equal(checkpoint.kind, 'nnunet');
    assert.equal(checkpoint.architecture.name, window.architecture);
    assert.ok(![...checkpoint.weights.keys()].some((key) => key.includes('.all_modules.') || key.startsWith('decoder.encoder.')), 'aliases are dropped');
    const network = buildInferenceNetwork(checkpoint, { type: 'cpu' });
    const input = float32(path.join(HERE, 'window_input.npy'));
    const reference = float32(path.join(HERE, window.logits));
    const logits = noGrad(() => scope(() => network.forward(fromArray(input.data, input.shape))[0]!.toFloat32Array()));
    const error = relativeError(logits, reference.data);
    t.diagnostic(`max |logits - PyTorch| / max |PyTorch| = ${error.toExponential(2)}`);
    // fp32 forward of a 3-stage network: a few ulps per op, far below the issue's 1e-4 of the logits' scale.
    assert.ok(error < 1e-4, `relative error ${error}`);
    network.dispose();
  });
}

test('aliases are checked against their canonical twins: equal ones are dropped, a different one is refused', () => {
  const checkpoint = readNnunetCheckpoint(path.join(PLAIN, 'fold_0/checkpoint_final.pth'), { optimizer: true });
  assert.ok(checkpoint.aliasesChecked > checkpoint.weights.size, `${checkpoint.aliasesChecked} aliases of ${checkpoint.weights.size} weights`);
  assert.equal(checkpoint.trainerName, 'nnUNetTrainer');
  assert.equal(checkpoint.configuration, '3d_fullres');
  assert.deepEqual(checkpoint.mirrorAxes, [0, 1, 2]);
  assert.equal(checkpoint.currentEpoch, 3);
  // SGD momentum buffers come out under the canonical names, one per weight.
  assert.deepEqual([...checkpoint.optimizer!.momentum.keys()], [...checkpoint.weights.keys()]);
  assert.equal(checkpoint.optimizer!.momentumFactor, 0.99);
  assert.equal(checkpoint.optimizer!.nesterov, true);
  assert.throws(() => readNnunetCheckpoint(path.join(HERE, 'pth/alias_mismatch.pth')), (error: unknown) =>
    error instanceof CheckpointError && /'a\.all_modules\.0\.weight'\] differs from its canonical twin 'a\.conv\.weight'/.test(error.message));
});

test('folds, checkpoint_best and fold folders resolve as nnU-Net\'s predictor does', () => {
  const fold = (k: number, name = 'final'): string => path.join(PLAIN, `fold_${k}`, `checkpoint_${name}.pth`);
  assert.deepEqual(resolveCheckpoints(PLAIN), [fold(0), fold(1)]);
  assert.deepEqual(resolveCheckpoints(PLAIN, [1]), [fold(1)]);
  assert.deepEqual(resolveCheckpoints(PLAIN, undefined, { checkpoint: 'best' }), [fold(0, 'best')]);
  assert.deepEqual(resolveCheckpoints(path.join(PLAIN, 'fold_1')), [fold(1)]);
  assert.deepEqual(resolveCheckpoints(fold(0, 'best')), [fold(0, 'best')]);
  assert.throws(() => resolveCheckpoints(PLAIN, [1], { checkpoint: 'best' }), (error: unknown) => error instanceof InputError && /fold 1 has no checkpoint_best\.pth: found fold_0/.test(error.message));
  assert.throws(() => resolveCheckpoints(PLAIN, [3]), /fold 3 has no checkpoint_final\.pth: found fold_0, fold_1/);
  assert.throws(() => resolveCheckpoints(path.join(PLAIN, 'fold_0'), [0]), /--folds needs -m to be the model folder/);
  assert.throws(() => readInferenceCheckpoint(fold(0), { configuration: '3d_lowres' }), /trained as configuration '3d_fullres', not '3d_lowres'/);
});

/** A copy of the PlainConvUNet folder (fold 0 only) with plans.json changed by `edit`. */
function editedFolder(edit: (plans: Record<string, any>) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nnunet-model-'));
  for (const name of ['plans.json', 'dataset.json']) fs.copyFileSync(path.join(PLAIN, name), path.join(dir, name));
  fs.mkdirSync(path.join(dir, 'fold_0'));
  fs.copyFileSync(path.join(PLAIN, 'fold_0/checkpoint_final.pth'), path.join(dir, 'fold_0/checkpoint_final.pth'));
  const plans = JSON.parse(fs.readFileSync(path.join(dir, 'plans.json'), 'utf8')) as Record<string, any>;
  edit(plans);
  fs.writeFileSync(path.join(dir, 'plans.json'), JSON.stringify(plans));
  return dir;
}

test('an architecture, a layer or a preprocessing we would build differently is refused, every problem named', () => {
  const dir = editedFolder((plans) => {
    const architecture = plans.configurations['3d_fullres'].architecture;
    architecture.network_class_name = 'dynamic_network_architectures.architectures.unet.ResidualUNet';
    architecture.arch_kwargs.dropout_op = 'torch.nn.Dropout3d';
    plans.configurations['3d_fullres'].normalization_schemes = ['MyNormalization'];
  });
  assert.throws(() => readInferenceCheckpoint(path.join(dir, 'fold_0/checkpoint_final.pth')), (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    assert.match(error.message, /architecture 'dynamic_network_architectures\.architectures\.unet\.ResidualUNet' is not supported: lesionseg builds/);
    assert.match(error.message, /normalisation 'MyNormalization' is not supported/);
    assert.ok(error.issues.some((issue) => issue.path.endsWith('network_class_name')));
    return true;
  });
  const plain = editedFolder((plans) => {
    plans.configurations['3d_fullres'].architecture.arch_kwargs.dropout_op = 'torch.nn.Dropout3d';
    plans.configurations['3d_fullres'].architecture.arch_kwargs.conv_bias = false;
  });
  assert.throws(() => readInferenceCheckpoint(path.join(plain, 'fold_0/checkpoint_final.pth')), (error: unknown) =>
    error instanceof ValidationError && error.issues.length === 2 && /dropout \('torch\.nn\.Dropout3d'\) is not supported/.test(error.message) && /conv_bias false/.test(error.message));
  // A cascade stage after a configuration the plans lack, and a 2-entry patch for a Conv3d network: refused by name.
  const lowres = editedFolder((plans) => {
    plans.configurations['3d_fullres'].previous_stage = '3d_lowres';
  });
  assert.throws(() => readInferenceCheckpoint(path.join(lowres, 'fold_0/checkpoint_final.pth')), /previous_stage '3d_lowres' is not a configuration of these plans/);
  const twoD = editedFolder((plans) => {
    plans.configurations['3d_fullres'].patch_size = [16, 16];
  });
  assert.throws(() => readInferenceCheckpoint(path.join(twoD, 'fold_0/checkpoint_final.pth')), /patch_size needs 3 positive integers for a 3D network/);
  for (const folder of [dir, plain, lowres, twoD]) fs.rmSync(folder, { recursive: true, force: true });
});

const CASES = [
  { name: 'PlainConvUNet, folds 0 and 1 ensembled, mirroring (0, 1, 2)', model: PLAIN, reference: 'plain' },
  { name: 'ResidualEncoderUNet, fold 0, the checkpoint\'s mirroring axes (1, 2)', model: RESENC, reference: 'resenc' },
];

for (const item of CASES) {
  test(`predict on an nnU-Net model folder: ${item.name}: PyTorch's mask and probabilities`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nnunet-predict-'));
    const output = path.join(dir, 'case.nii.gz');
    const result = await predictFiles({ model: item.model, input: path.join(HERE, 'case/case_0000.nii.gz'), output, saveProbabilities: true, configuration: '3d_fullres', mirrorRule: FULL_MIRROR_RULE });
    assert.equal(result.checkpoints.length, item.reference === 'plain' ? 2 : 1);
    const mask = await readNifti(output);
    const referenceMask = readNpy(path.join(HERE, `case/${item.reference}_mask.npy`));
    assert.deepEqual([...mask.shape], referenceMask.shape);
    let differing = 0;
    for (let i = 0; i < referenceMask.data.length; i++) if (mask.data[i] !== referenceMask.data[i]) differing++;
    assert.equal(differing, 0, 'voxels whose label differs from the PyTorch reference');
    const probabilities = float32(path.join(HERE, `case/${item.reference}_probabilities.npy`));
    const voxels = referenceMask.data.length;
    let worst = 0;
    for (const [k, file] of result.cases[0]!.probabilities.entries()) {
      const ours = (await readNifti(file)).data as Float32Array;
      for (let i = 0; i < voxels; i++) worst = Math.max(worst, Math.abs(ours[i]! - probabilities.data[k * voxels + i]!));
    }
    t.diagnostic(`max |probability - PyTorch| = ${worst.toExponential(2)}`);
    // Probabilities lie in [0, 1]; the same fp32 windows blended with our Gaussian map and scipy's agree to
    // ~1e-7 (measured 1.2e-7). Mirroring the ResidualEncoderUNet over all three axes instead of the checkpoint's
    // (1, 2) moves them by up to 0.29 (measured), which this bound catches.
    assert.ok(worst < 1e-4, `probabilities differ by ${worst}`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
