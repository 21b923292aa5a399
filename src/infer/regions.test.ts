/**
 * Region-based nnU-Net models (LabelManager with regions) by hand, with numpy and end to end: the
 * heads of a BraTS-style dataset.json, sigmoid probabilities thresholded at 0.5 and written in
 * regions_class_order (later heads overwrite earlier ones). End to end, the committed PlainConvUNet
 * fold 0 is read as a region model (its three output channels become three regions): the mask
 * must be the rule applied to its own saved sigmoid probabilities (in TypeScript and by numpy,
 * exactly), and those probabilities must be the sigmoid of the very logits whose softmax the same
 * network gives as a label model: softmax(logit(p)) equals the label model's probabilities.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '../core/index.js';
import { nnunetRegionsOf, readNifti, writeNpy } from '../io/index.js';
import { loadModels } from './ensemble.js';
import { predictFiles } from './predictFiles.js';
import { regionsToSegmentation, sigmoidInPlace } from './regions.js';

const NNUNET = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nnunet');
const PLAIN = path.join(NNUNET, 'models/Dataset901_Tiny/nnUNetTrainer__nnUNetPlans__3d_fullres');
const CASE = path.join(NNUNET, 'case/case_0000.nii.gz');
const BRATS = { background: 0, 'whole tumor': [1, 2, 3], 'tumor core': [2, 3], 'enhancing tumor': 3 };

describe('regions (hand cases)', () => {
  it('reads the heads as LabelManager: dataset.json order, background and ignore left out', () => {
    const regions = nnunetRegionsOf({ labels: { ...BRATS, ignore: 4 }, regions_class_order: [1, 2, 3] }, 'dataset.json');
    assert.deepEqual(regions, { names: ['whole tumor', 'tumor core', 'enhancing tumor'], regions: [[1, 2, 3], [2, 3], [3]], classOrder: [1, 2, 3] });
    // Lists of one value are no regions (has_regions needs a list of more than one).
    assert.equal(nnunetRegionsOf({ labels: { background: 0, a: [1], b: 2 } }, 'dataset.json'), null);
    assert.throws(() => nnunetRegionsOf({ labels: BRATS, regions_class_order: [1, 2] }, 'dataset.json'), (error: unknown) =>
      error instanceof ValidationError && /regions_class_order has 2 entries for 3 regions \(whole tumor, tumor core, enhancing tumor\)/.test(error.message));
  });

  it('thresholds sigmoid at 0.5 (strictly) and writes the heads in order, later ones overwriting', () => {
    // sigmoid(0) = 0.5 is not above 0.5; sigmoid(2) = 0.8808, sigmoid(-2) = 0.1192.
    const logits = [Float32Array.of(2, 2, 2, -2, 0), Float32Array.of(-2, 2, 2, 2, 2), Float32Array.of(-2, -2, 2, -2, 2)];
    const probabilities = logits.map((head) => sigmoidInPlace(head.slice()));
    assert.equal(probabilities[0]![4], 0.5);
    assert.equal(probabilities[0]![0], Math.fround(1 / (1 + Math.exp(-2))));
    // Voxel by voxel (heads 1, 2, 3): [1], [1, 2], [1, 2, 3], [2], [2, 3] above 0.5.
    assert.deepEqual([...regionsToSegmentation(probabilities, [1, 2, 3])], [1, 2, 3, 2, 3]);
    // Another order: the last head written wins.
    assert.deepEqual([...regionsToSegmentation(probabilities, [3, 2, 1])], [3, 2, 1, 2, 1]);
  });
});

describe('a region-based nnU-Net model folder, end to end', () => {
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-regions-'));
    const model = path.join(dir, 'regions_model');
    fs.mkdirSync(path.join(model, 'fold_0'), { recursive: true });
    fs.copyFileSync(path.join(PLAIN, 'fold_0/checkpoint_final.pth'), path.join(model, 'fold_0/checkpoint_final.pth'));
    fs.copyFileSync(path.join(PLAIN, 'plans.json'), path.join(model, 'plans.json'));
    const dataset = JSON.parse(fs.readFileSync(path.join(PLAIN, 'dataset.json'), 'utf8'));
    fs.writeFileSync(path.join(model, 'dataset.json'), JSON.stringify({ ...dataset, labels: BRATS, regions_class_order: [1, 2, 3] }));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs every window even when asked to skip the background (no background head for skipped voxels)', async () => {
    const { predictor } = await loadModels({ model: path.join(dir, 'regions_model'), skipBackground: true });
    assert.deepEqual(predictor.regions?.classOrder, [1, 2, 3]);
    assert.equal(predictor.members[0]!.skipsBackground, false);
    assert.deepEqual(predictor.maskLabels, [1, 2, 3]);
    predictor.dispose();
  });

  it('writes the regions of its own sigmoid probabilities, which are the sigmoid of the label model\'s logits', async (t) => {
    const output = path.join(dir, 'regions', 'case.nii.gz');
    const result = await predictFiles({ model: path.join(dir, 'regions_model'), input: CASE, output, saveProbabilities: true });
    const mask = (await readNifti(output)).data as Uint8Array;
    const p = await Promise.all(result.cases[0]!.probabilities.map(async (file) => (await readNifti(file)).data as Float32Array));
    assert.equal(p.length, 3, 'one probability map per region, no background');
    const expected = regionsToSegmentation(p, [1, 2, 3]);
    assert.deepEqual([...mask], [...expected]);
    const counts = [0, 1, 2, 3].map((label) => mask.reduce((n, v) => n + (v === label ? 1 : 0), 0));
    t.diagnostic(`voxels per label 0..3: ${counts.join(', ')}`);
    assert.ok(counts.filter((n) => n > 0).length >= 2, 'the mask holds more than one label');

    // numpy: nnU-Net's loop `segmentation[p[i] > 0.5] = c` over the same probabilities.
    const npy = path.join(dir, 'p.npy');
    writeNpy(npy, Float32Array.from(p.flatMap((head) => [...head])), [3, mask.length]);
    const script = 'import sys, numpy as np\np = np.load(sys.argv[1])\nseg = np.zeros(p.shape[1:], np.uint8)\nfor i, c in enumerate([1, 2, 3]):\n    seg[p[i] > 0.5] = c\nsys.stdout.write(",".join(str(int(n)) for n in np.bincount(seg, minlength=4)) + " " + str(int((seg != np.frombuffer(open(sys.argv[2], "rb").read(), np.uint8)).sum())))';
    fs.writeFileSync(path.join(dir, 'mask.raw'), mask);
    const run = spawnSync('/usr/bin/python3', ['-c', script, npy, path.join(dir, 'mask.raw')], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, `${counts.join(',')} 0`, 'numpy\'s mask: label counts and differing voxels');

    // The label model (the same fold's softmax): softmax(logit(p)) = q where p is not saturated in float32.
    const labelOutput = path.join(dir, 'labels', 'case.nii.gz');
    const labels = await predictFiles({ model: PLAIN, folds: [0], input: CASE, output: labelOutput, saveProbabilities: true });
    const q = await Promise.all(labels.cases[0]!.probabilities.map(async (file) => (await readNifti(file)).data as Float32Array));
    let worst = 0;
    let compared = 0;
    for (let i = 0; i < mask.length; i++) {
      if (p.some((head) => head[i]! < 1e-3 || head[i]! > 1 - 1e-3)) continue;
      const logits = p.map((head) => Math.log(head[i]! / (1 - head[i]!)));
      const top = Math.max(...logits);
      const total = logits.reduce((sum, l) => sum + Math.exp(l - top), 0);
      for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs(Math.exp(logits[k]! - top) / total - q[k]![i]!));
      compared++;
    }
    t.diagnostic(`softmax(logit(p)) vs the label model's probabilities: max difference ${worst.toExponential(2)} over ${compared} voxels`);
    // p in [1e-3, 1 - 1e-3] as float32: logit(p) is off by at most ulp(p) / (p (1 - p)) ~ 6e-5; softmax moves by at most half that.
    assert.ok(compared > mask.length / 10, `only ${compared} voxels compared`);
    assert.ok(worst < 1e-4, `max difference ${worst}`);
  });
});
