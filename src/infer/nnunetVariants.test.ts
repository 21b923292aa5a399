/**
 * nnU-Net v2 trainer variants and plans presets (issue 23): model folders nnUNetv2_train names
 * `<trainer>__<plans>__3d_fullres`, built here from the committed fixture checkpoints by rewriting
 * them through our .pth writer with another trainer_name and inference_allowed_mirroring_axes
 * (what nnUNetTrainerNoMirroring, nnUNetTrainer_250epochs, nnUNetTrainerDA5 ... save; their
 * networks are plans.json's). Each loads whatever its trainer class, mirrors over the checkpoint's
 * axes (None: not at all, as nnU-Net's predictor) and gives the mask PyTorch gave for the same
 * weights (test/fixtures/nnunet/case/*_mask.npy), or our own mask with those axes named explicitly.
 * A trainer whose network is not plans.json's, and an architecture class we do not build, are refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointError, type Logger } from '../core/index.js';
import { readNifti, readNnunetCheckpoint, readNpy, type SafetensorsEntry } from '../io/index.js';
import { buildInferenceNetwork, readInferenceCheckpoint } from '../checkpoint/index.js';
import { writeNnunetModelCopy, type NnunetCopyOptions } from '../checkpoint/test-support.js';
import { lesionseg, STACK_LINE } from '../cli/test-support.js';
import { predictFiles } from './predictFiles.js';
import { FULL_MIRROR_RULE } from './adaptiveMirroring.js';

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nnunet');
const DATASET = path.join(HERE, 'models/Dataset901_Tiny');
const PLAIN = path.join(DATASET, 'nnUNetTrainer__nnUNetPlans__3d_fullres');
const RESENC = path.join(DATASET, 'nnUNetTrainer__nnUNetResEncUNetMPlans__3d_fullres');
const CASE = path.join(HERE, 'case/case_0000.nii.gz');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nnunet-variants-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** `source`'s folds rewritten as `<name>/fold_K/checkpoint_final.pth` with the variant's fields; plans.json edited by `plans`. */
function variantFolder(name: string, source: string, folds: number[], options: Omit<NnunetCopyOptions, 'source' | 'fold'>, plans?: (json: Record<string, unknown>) => void): string {
  const folder = path.join(tmp, name);
  for (const fold of folds) {
    const { weights } = readNnunetCheckpoint(path.join(source, `fold_${fold}`, 'checkpoint_final.pth'));
    writeNnunetModelCopy(folder, weights, { ...options, source, fold });
  }
  if (plans !== undefined) {
    const json = JSON.parse(fs.readFileSync(path.join(folder, 'plans.json'), 'utf8')) as Record<string, unknown>;
    plans(json);
    fs.writeFileSync(path.join(folder, 'plans.json'), JSON.stringify(json));
  }
  return folder;
}

async function predictMask(model: string, mirrorAxes?: (0 | 1 | 2)[]): Promise<{ mask: ArrayLike<number | bigint>; log: string[]; probabilities: Float32Array }> {
  const dir = fs.mkdtempSync(path.join(tmp, 'out-'));
  const log: string[] = [];
  const logger: Logger = { info: (line) => log.push(line), warn: (line) => log.push(line) };
  const output = path.join(dir, 'case.nii.gz');
  const result = await predictFiles({ model, input: CASE, output, saveProbabilities: true, configuration: '3d_fullres', mirrorRule: FULL_MIRROR_RULE, ...(mirrorAxes !== undefined ? { mirrorAxes } : {}) }, logger);
  const probabilities = (await readNifti(result.cases[0]!.probabilities[1]!)).data as Float32Array;
  return { mask: (await readNifti(output)).data, log, probabilities };
}

function differing(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): number {
  assert.equal(a.length, b.length);
  let count = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) count++;
  return count;
}

const SAME_AS_REFERENCE = [
  { trainer: 'nnUNetTrainer_250epochs', plans: 'nnUNetPlans', source: PLAIN, folds: [0, 1], axes: [0, 1, 2], reference: 'plain', epochs: 250 },
  { trainer: 'nnUNetTrainerDA5', plans: 'nnUNetPlans', source: PLAIN, folds: [0, 1], axes: [0, 1, 2], reference: 'plain', epochs: 3 },
  { trainer: 'MyLabTrainer_ftLR1e3', plans: 'nnUNetPlans', source: PLAIN, folds: [0, 1], axes: [0, 1, 2], reference: 'plain', epochs: 3 },
  { trainer: 'nnUNetTrainer', plans: 'nnUNetResEncUNetLPlans', source: RESENC, folds: [0], axes: [1, 2], reference: 'resenc', epochs: 1000 },
  { trainer: 'nnUNetTrainer', plans: 'nnUNetResEncUNetXLPlans', source: RESENC, folds: [0], axes: [1, 2], reference: 'resenc', epochs: 1000 },
];

for (const item of SAME_AS_REFERENCE) {
  test(`${item.trainer}__${item.plans}__3d_fullres loads and predicts PyTorch's mask for the same weights, mirroring [${item.axes.join(', ')}]`, async () => {
    const folder = variantFolder(`${item.trainer}__${item.plans}__3d_fullres`, item.source, item.folds, { trainerName: item.trainer, mirrorAxes: item.axes }, (json) => {
      json.plans_name = item.plans;
    });
    const checkpoint = readInferenceCheckpoint(path.join(folder, 'fold_0/checkpoint_final.pth'));
    assert.deepEqual(checkpoint.mirrorAxes, item.axes);
    // num_epochs from the name where nnU-Net's trainer sets it; else the epochs the checkpoint records (3).
    assert.equal(checkpoint.numEpochs, item.epochs);
    const { mask, log } = await predictMask(folder);
    assert.match(log.join('\n'), new RegExp(`model: nnU-Net ${item.trainer} 3d_fullres fold 0 .*; mirroring axes \\[${item.axes.join(', ')}\\] \\(full\\)`));
    assert.equal(differing(mask, readNpy(path.join(HERE, `case/${item.reference}_mask.npy`)).data), 0, 'voxels whose label differs from the PyTorch reference');
  });
}

test('nnUNetTrainerNoMirroring (inference_allowed_mirroring_axes None): no mirroring, logged; the mask of --no-tta (mirror axes []) on the same weights', async (t) => {
  const folder = variantFolder('nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres', PLAIN, [0, 1], { trainerName: 'nnUNetTrainerNoMirroring', mirrorAxes: null });
  const checkpoint = readInferenceCheckpoint(path.join(folder, 'fold_0/checkpoint_final.pth'));
  assert.equal(checkpoint.mirrorAxes?.length, 0);
  const variant = await predictMask(folder);
  assert.match(variant.log.join('\n'), /model: nnU-Net nnUNetTrainerNoMirroring 3d_fullres fold 0 \(PlainConvUNet, epoch 3, inference_allowed_mirroring_axes None: no mirroring\) \(ensemble of 2\); mirroring axes \[\];/);
  const explicit = await predictMask(PLAIN, []);
  assert.equal(differing(variant.mask, explicit.mask), 0);
  let same = 0;
  for (let i = 0; i < explicit.probabilities.length; i++) same = Math.max(same, Math.abs(variant.probabilities[i]! - explicit.probabilities[i]!));
  assert.equal(same, 0, 'the same passes in the same order give the same bits');
  // Mirroring did not run: PyTorch's probabilities with mirroring (0, 1, 2) differ from these.
  const reference = readNpy(path.join(HERE, 'case/plain_probabilities.npy')).data as Float32Array;
  const voxels = explicit.probabilities.length;
  let moved = 0;
  for (let i = 0; i < voxels; i++) moved = Math.max(moved, Math.abs(variant.probabilities[i]! - reference[voxels + i]!));
  t.diagnostic(`max |no-mirroring probability - PyTorch's mirrored one| = ${moved.toExponential(2)}`);
  assert.ok(moved > 1e-3, `mirroring changes the probabilities by ${moved} only`);
});

test('nnUNetTrainer_onlyMirror01 (axes (0, 1)): the mask of --mirror-axes 0,1 on the same weights', async () => {
  const folder = variantFolder('nnUNetTrainer_onlyMirror01__nnUNetPlans__3d_fullres', PLAIN, [0, 1], { trainerName: 'nnUNetTrainer_onlyMirror01', mirrorAxes: [0, 1] });
  const variant = await predictMask(folder);
  assert.match(variant.log.join('\n'), /; mirroring axes \[0, 1\] \(full\)/);
  const explicit = await predictMask(PLAIN, [0, 1]);
  assert.equal(differing(variant.mask, explicit.mask), 0);
  assert.deepEqual(variant.probabilities, explicit.probabilities);
});

test('nnUNetTrainer_250epochs_NoMirroring: 250 epochs from the name, no mirroring from the checkpoint', () => {
  const folder = variantFolder('nnUNetTrainer_250epochs_NoMirroring__nnUNetPlans__3d_fullres', PLAIN, [0], { trainerName: 'nnUNetTrainer_250epochs_NoMirroring', mirrorAxes: null });
  const checkpoint = readInferenceCheckpoint(path.join(folder, 'fold_0/checkpoint_final.pth'));
  assert.equal(checkpoint.numEpochs, 250);
  assert.deepEqual(checkpoint.mirrorAxes, []);
});

test('a trainer that builds another network than plans.json (nnUNetTrainerBN\'s batch norms) is refused naming the trainer and the weights', () => {
  const { weights } = readNnunetCheckpoint(path.join(PLAIN, 'fold_0/checkpoint_final.pth'));
  const batchNorm = new Map<string, SafetensorsEntry>(weights);
  for (const [name, entry] of weights) {
    if (name.endsWith('.norm.weight')) for (const stat of ['running_mean', 'running_var']) batchNorm.set(name.replace(/weight$/, stat), entry);
  }
  const file = writeNnunetModelCopy(path.join(tmp, 'nnUNetTrainerBN__nnUNetPlans__3d_fullres'), batchNorm, { trainerName: 'nnUNetTrainerBN' });
  const checkpoint = readInferenceCheckpoint(file);
  assert.throws(() => buildInferenceNetwork(checkpoint, { type: 'cpu' }), (error: unknown) =>
    error instanceof CheckpointError && /the weights do not fit the PlainConvUNet plans\.json describes \(nnU-Net nnUNetTrainerBN 3d_fullres fold 0 .*\): unexpected encoder\.stages\.0\.\S*norm\.running_mean/.test(error.message));
});

test('predict -m a model folder with a custom architecture class: exit 2, the class and what lesionseg builds named, nothing written', async () => {
  const folder = variantFolder('MyTrainer__MyPlans__3d_fullres', PLAIN, [0], { trainerName: 'MyTrainer' }, (json) => {
    (json.configurations as Record<string, { architecture: { network_class_name: string } }>)['3d_fullres']!.architecture.network_class_name = 'my_lab.networks.AttentionUNet';
  });
  const output = path.join(tmp, 'custom', 'mask.nii.gz');
  const run = await lesionseg('predict', '-m', folder, '-i', CASE, '-o', output);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /architecture 'my_lab\.networks\.AttentionUNet' is not supported: lesionseg builds dynamic_network_architectures\.architectures\.unet\.PlainConvUNet, /);
  assert.ok(!run.stderr.includes(STACK_LINE), run.stderr);
  assert.equal(fs.existsSync(output), false);
});
