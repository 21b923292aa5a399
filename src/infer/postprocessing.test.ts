/**
 * nnU-Net's postprocessing against scipy and by hand: postprocessing.pkl written by
 * test/fixtures/postprocessing/make_postprocessing_fixtures.py with Python's pickle in nnU-Net's
 * structure (function references, numpy int64 labels, a region tuple), its JSON twin, a pickle
 * naming os.system (refused, never run), and seeded label maps postprocessed there with
 * scipy.ndimage.label under full (26) connectivity: ours must equal them voxel for voxel (integer
 * labels: no tolerance). Hand cases pin 26-connectivity and the tie rule (every largest kept).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/index.js';
import { readNpy } from '../io/index.js';
import { applyPostprocessing, largestComponents26, readPostprocessing, resolvePostprocessingFile, postprocessingFilesIn } from './postprocessing.js';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/postprocessing/make_postprocessing_fixtures.py');

describe('largestComponents26 (hand cases)', () => {
  it('joins voxels that touch only at a corner (26-connectivity, not 6)', () => {
    // Shape [2, 2, 3], index z*6 + y*3 + x: (0,0,0) touches (1,1,1) at a corner only; (1,1,2) and
    // (0,1,2) join (1,1,1) by faces. One component of 4 under 26-connectivity, all kept; under
    // 6-connectivity (0,0,0) would be a component of 1 and be removed.
    const mask = new Uint8Array(12);
    for (const i of [0, 6 + 3 + 1, 6 + 3 + 2, 3 + 2]) mask[i] = 1;
    assert.deepEqual([...largestComponents26(mask, [2, 2, 3])], [...mask]);
    // A row 1 0 1 1 0: components {0} (1 voxel) and {2, 3} (2): the single voxel goes.
    assert.deepEqual([...largestComponents26(Uint8Array.from([1, 0, 1, 1, 0]), [1, 1, 5])], [0, 0, 1, 1, 0]);
  });

  it('keeps every component tied for the largest, removes the smaller ones', () => {
    // One row of 7 voxels: 1 1 0 1 1 0 1 -> sizes 2, 2, 1: the two pairs stay, the single goes.
    const mask = Uint8Array.from([1, 1, 0, 1, 1, 0, 1]);
    assert.deepEqual([...largestComponents26(mask, [1, 1, 7])], [1, 1, 0, 1, 1, 0, 0]);
  });

  it('an empty mask stays empty', () => {
    assert.deepEqual([...largestComponents26(new Uint8Array(8), [2, 2, 2])], [0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('applyPostprocessing (hand case)', () => {
  it('foreground step treats labels together; a per-label step only its label', () => {
    // Row: 1 2 0 2 0 1 1 1 -> foreground components {0,1} (2 voxels) and {5,6,7} (3): the first pair goes.
    const segmentation = Uint8Array.from([1, 2, 0, 2, 0, 1, 1, 1]);
    const changed = applyPostprocessing(segmentation, [1, 1, 8], { steps: [{ labels: [1, 2], labelsOrRegions: [1, 2], backgroundLabel: 0 }] });
    // Components {0, 1} (2 voxels), {3} (1) and {5, 6, 7} (3): only the last stays.
    assert.deepEqual([...segmentation], [0, 0, 0, 0, 0, 1, 1, 1]);
    assert.equal(changed, 3);
    // Per label: label 2's voxels {1} and {3, 4} -> {3, 4} stays; label 1's {0} and {6} tie -> both stay.
    const perLabel = Uint8Array.from([1, 2, 0, 2, 2, 0, 1, 0]);
    applyPostprocessing(perLabel, [1, 1, 8], { steps: [{ labels: [2], labelsOrRegions: 2, backgroundLabel: 0 }, { labels: [1], labelsOrRegions: 1, backgroundLabel: 0 }] });
    assert.deepEqual([...perLabel], [1, 0, 0, 2, 2, 0, 1, 0]);
  });
});

describe('nnU-Net postprocessing files (Python pickle, scipy reference)', () => {
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-pp-'));
    const run = spawnSync('/usr/bin/python3', [SCRIPT, dir], { encoding: 'utf8' });
    assert.equal(run.status, 0, `${SCRIPT} failed (needs python3-numpy and python3-scipy, scripts/setup.sh): ${run.stderr}`);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the pickle as nnU-Net wrote it: three steps, numpy ints as numbers, the region tuple', () => {
    const pp = readPostprocessing(path.join(dir, 'postprocessing.pkl'));
    assert.deepEqual(pp.steps.map((s) => s.labels), [[1, 2, 3], [2], [1, 3]]);
    assert.deepEqual(pp.steps.map((s) => s.labelsOrRegions), [[1, 2, 3], 2, [1, 3]]);
    assert.deepEqual(pp.steps.map((s) => s.backgroundLabel), [0, 0, 0]);
    const twin = readPostprocessing(path.join(dir, 'postprocessing.json'));
    assert.deepEqual(twin.steps.map((s) => s.labels), pp.steps.map((s) => s.labels));
  });

  it('gives scipy.ndimage.label\'s answer (full connectivity, ties kept) on every seeded label map', () => {
    const pp = readPostprocessing(path.join(dir, 'postprocessing.pkl'));
    for (let k = 0; k < 4; k++) {
      const input = readNpy(path.join(dir, `input_${k}.npy`));
      const expected = readNpy(path.join(dir, `expected_${k}.npy`));
      const segmentation = Uint8Array.from(input.data as Uint8Array);
      applyPostprocessing(segmentation, input.shape as [number, number, number], pp);
      assert.deepEqual([...segmentation], [...(expected.data as Uint8Array)], `case ${k}`);
      if (k < 3) assert.notDeepEqual([...segmentation], [...(input.data as Uint8Array)], `case ${k} changes`);
    }
  });

  it('refuses a pickle naming another global, by file and name (exit 2 code, nothing run)', () => {
    const file = path.join(dir, 'hostile.pkl');
    assert.throws(() => readPostprocessing(file), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.equal(error.code, 'bad-postprocessing');
      assert.equal(error.file, file);
      assert.match(error.message, /refuses global posix\.system/);
      return true;
    });
  });

  it('refuses other functions and malformed kwargs in the JSON twin', () => {
    const file = path.join(dir, 'other.json');
    fs.writeFileSync(file, JSON.stringify({ postprocessing_fns: ['remove_small_components'], postprocessing_kwargs: [{ labels_or_regions: 1 }] }));
    assert.throws(() => readPostprocessing(file), /postprocessing_fns\[0\] is "remove_small_components"/);
    fs.writeFileSync(file, JSON.stringify({ postprocessing_fns: ['remove_all_but_largest_component_from_segmentation'], postprocessing_kwargs: [{ labels_or_regions: -1 }] }));
    assert.throws(() => readPostprocessing(file), /labels_or_regions must be a label value/);
  });

  it('finds the pickle in a folder first, and in a model folder\'s crossval_results_folds_*', () => {
    assert.equal(resolvePostprocessingFile(dir), path.join(dir, 'postprocessing.pkl'));
    const model = path.join(dir, 'model');
    const crossval = path.join(model, 'crossval_results_folds_0_1_2_3_4');
    fs.mkdirSync(crossval, { recursive: true });
    fs.copyFileSync(path.join(dir, 'postprocessing.json'), path.join(crossval, 'postprocessing.json'));
    assert.deepEqual(postprocessingFilesIn(model), [path.join(crossval, 'postprocessing.json')]);
  });
});

describe('largestComponents26 (many components)', () => {
  it('handles more components than a function call takes arguments (200,000 isolated voxels and one pair)', () => {
    // Every other voxel of every other row and slice: isolated under 26-connectivity.
    const shape: [number, number, number] = [2 * 20, 2 * 50, 2 * 100 + 2];
    const mask = new Uint8Array(shape[0] * shape[1] * shape[2]);
    let isolated = 0;
    for (let z = 0; z < shape[0]; z += 2) for (let y = 0; y < shape[1]; y += 2) for (let x = 0; x < shape[2] - 2; x += 2, isolated++) mask[(z * shape[1] + y) * shape[2] + x] = 1;
    // ... and one pair at the end of the first row: the only component of 2.
    mask[shape[2] - 2] = 1;
    mask[shape[2] - 1] = 1;
    const keep = largestComponents26(mask, shape);
    assert.equal(isolated, 20 * 50 * 100);
    assert.deepEqual([...keep].flatMap((v, i) => (v === 1 ? [i] : [])), [shape[2] - 2, shape[2] - 1]);
  });
});
