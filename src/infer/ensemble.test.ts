/**
 * Ensembles across models (`predict -m A -m B`) against nnUNetv2_ensemble's rule computed here by
 * hand: A is the committed PlainConvUNet folder (folds 0 and 1), B a copy of the
 * ResidualEncoderUNet folder whose plans resample to another spacing, so each model runs in its
 * own plan. Each model's --save-probabilities output is read back; their float32 mean, (pA + pB) / 2,
 * must be the ensemble's probabilities bit for bit and its argmax (first of tied classes) the
 * ensemble's mask voxel for voxel: the ensemble sums the same float32 volumes in the same order.
 * Models with other labels are refused naming both (exit 2).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/index.js';
import { readNifti } from '../io/index.js';
import { argmax, loadModels } from './ensemble.js';
import { predictFiles } from './predictFiles.js';

const NNUNET = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nnunet');
const PLAIN = path.join(NNUNET, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetPlans__3d_fullres');
const RESENC = path.join(NNUNET, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetResEncUNetMPlans__3d_fullres');
const CASE = path.join(NNUNET, 'case/case_0000.nii.gz');

/** A copy of `source` (fold 0) with plans.json and dataset.json edited. */
function copyModel(source: string, target: string, edit: { plans?: (plans: any) => void; dataset?: (dataset: any) => void }): string {
  fs.mkdirSync(path.join(target, 'fold_0'), { recursive: true });
  fs.copyFileSync(path.join(source, 'fold_0/checkpoint_final.pth'), path.join(target, 'fold_0/checkpoint_final.pth'));
  for (const [name, change] of [['plans.json', edit.plans], ['dataset.json', edit.dataset]] as const) {
    const json = JSON.parse(fs.readFileSync(path.join(source, name), 'utf8'));
    change?.(json);
    fs.writeFileSync(path.join(target, name), JSON.stringify(json));
  }
  return target;
}

async function probabilitiesOf(files: readonly string[]): Promise<Float32Array[]> {
  return Promise.all(files.map(async (file) => (await readNifti(file)).data as Float32Array));
}

describe('predict -m A -m B (nnUNetv2_ensemble)', () => {
  let dir = '';
  let other = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-ensemble-'));
    other = copyModel(RESENC, path.join(dir, 'resenc_coarse'), {
      plans: (plans) => {
        plans.configurations['3d_fullres'].spacing = [2.5, 1.25, 1.25];
      },
    });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is the float32 mean of each model\'s probabilities, argmaxed', async (t) => {
    const single = async (model: string | string[], name: string) => {
      const output = path.join(dir, name, 'case.nii.gz');
      const result = await predictFiles({ model, input: CASE, output, saveProbabilities: true });
      return { result, mask: (await readNifti(output)).data as Uint8Array, probabilities: await probabilitiesOf(result.cases[0]!.probabilities) };
    };
    const a = await single(PLAIN, 'a');
    const b = await single(other, 'b');
    const ensemble = await single([PLAIN, other], 'ab');
    assert.equal(ensemble.result.checkpoints.length, 3, 'two folds of A and one of B');
    assert.equal(ensemble.probabilities.length, 3);
    // The models disagree (otherwise the test could not tell a mean from either one).
    let apart = 0;
    for (let k = 0; k < 3; k++) for (let i = 0; i < a.probabilities[k]!.length; i++) apart = Math.max(apart, Math.abs(a.probabilities[k]![i]! - b.probabilities[k]![i]!));
    t.diagnostic(`max |pA - pB| = ${apart.toFixed(3)}`);
    assert.ok(apart > 0.05, `the two models give nearly the same probabilities (${apart})`);
    const mean = a.probabilities.map((pa, k) => {
      const pb = b.probabilities[k]!;
      return Float32Array.from(pa, (value, i) => Math.fround(Math.fround(value + pb[i]!) / 2));
    });
    for (let k = 0; k < 3; k++) assert.deepEqual(ensemble.probabilities[k], mean[k], `class ${k} probabilities`);
    const expected = argmax(mean);
    // argmax by hand on two voxels: ties keep the lower class.
    assert.deepEqual([...argmax([Float32Array.of(0.4, 0.2), Float32Array.of(0.4, 0.3), Float32Array.of(0.2, 0.5)])], [0, 2]);
    let differing = 0;
    for (let i = 0; i < expected.length; i++) if (ensemble.mask[i] !== expected[i]) differing++;
    assert.equal(differing, 0, 'voxels whose label differs from the argmax of the mean');
    const changedFromA = expected.reduce((n, label, i) => n + (label !== a.mask[i] ? 1 : 0), 0);
    const changedFromB = expected.reduce((n, label, i) => n + (label !== b.mask[i] ? 1 : 0), 0);
    t.diagnostic(`ensemble mask differs from A's in ${changedFromA} voxels, from B's in ${changedFromB} (of ${expected.length})`);
  });

  it('refuses models whose labels differ, naming both (exit 2), before predicting', async () => {
    const renamed = copyModel(RESENC, path.join(dir, 'renamed'), {
      dataset: (dataset) => {
        dataset.labels = { background: 0, lesion: 1, nodule: 2 };
      },
    });
    await assert.rejects(loadModels({ model: [PLAIN, renamed] }), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.equal(error.code, 'ensemble-mismatch');
      assert.equal(error.file, renamed);
      assert.match(error.message, /renamed: its labels \{background=0, lesion=1, nodule=2\} differ from those of the first -m .*3d_fullres \{background=0, effusion=2, lesion=1\}/);
      return true;
    });
    const output = path.join(dir, 'refused', 'case.nii.gz');
    await assert.rejects(predictFiles({ model: [PLAIN, renamed], input: CASE, output }), /differ from those of the first -m/);
    assert.equal(fs.existsSync(output), false, 'nothing written');
  });
});
