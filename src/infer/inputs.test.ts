/** What `predict -i/-o` name: single files, channel siblings, folders of cases, and their errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import { collectPredictionCases, probabilityFile } from './inputs.js';

function folderWith(names: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-inputs-'));
  for (const name of names) fs.writeFileSync(path.join(dir, name), '');
  return dir;
}

test('a folder of <case>_XXXX files: cases sorted, channels in order, one output per case', () => {
  const dir = folderWith(['b_0000.nii.gz', 'a_0001.nii.gz', 'a_0000.nii.gz', 'b_0001.nii.gz', 'notes.txt', 'dataset.json']);
  const cases = collectPredictionCases(dir, '/out');
  assert.deepEqual(cases, [
    { caseId: 'a', channelFiles: [path.join(dir, 'a_0000.nii.gz'), path.join(dir, 'a_0001.nii.gz')], outputFile: '/out/a.nii.gz' },
    { caseId: 'b', channelFiles: [path.join(dir, 'b_0000.nii.gz'), path.join(dir, 'b_0001.nii.gz')], outputFile: '/out/b.nii.gz' },
  ]);
  assert.throws(() => collectPredictionCases(dir, '/out/one.nii.gz'), (e: unknown) => e instanceof InputError && /holds 2 cases: -o must be a folder/.test(e.message));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a single file: plain name or case_0000 with its sibling channels; -o a file or a folder', () => {
  const dir = folderWith(['ct.nii', 'lung_7_0000.nii.gz', 'lung_7_0001.nii.gz', 'lung_8_0000.nii.gz']);
  assert.deepEqual(collectPredictionCases(path.join(dir, 'ct.nii'), '/o/mask.nii.gz'), [{ caseId: 'ct', channelFiles: [path.join(dir, 'ct.nii')], outputFile: '/o/mask.nii.gz' }]);
  assert.deepEqual(collectPredictionCases(path.join(dir, 'lung_7_0000.nii.gz'), '/o'), [
    { caseId: 'lung_7', channelFiles: [path.join(dir, 'lung_7_0000.nii.gz'), path.join(dir, 'lung_7_0001.nii.gz')], outputFile: '/o/lung_7.nii.gz' },
  ]);
  assert.equal(probabilityFile('/o/lung_7.nii.gz', 2), '/o/lung_7_probabilities_2.nii.gz');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a missing channel, a folder without cases, a missing input and a non-NIfTI file are InputErrors naming them', () => {
  const dir = folderWith(['c_0000.nii.gz', 'c_0002.nii.gz', 'x.png']);
  assert.throws(() => collectPredictionCases(dir, '/o'), (e: unknown) => e instanceof InputError && /case 'c' lacks channel file\(s\) c_0001/.test(e.message));
  const empty = folderWith(['readme.md']);
  assert.throws(() => collectPredictionCases(empty, '/o'), (e: unknown) => e instanceof InputError && /no images named <case>_0000.nii.gz/.test(e.message));
  assert.throws(() => collectPredictionCases(path.join(dir, 'nope.nii.gz'), '/o'), (e: unknown) => e instanceof InputError && /nope.nii.gz: input not found/.test(e.message));
  assert.throws(() => collectPredictionCases(path.join(dir, 'x.png'), '/o'), (e: unknown) => e instanceof InputError && /must be a .nii or .nii.gz/.test(e.message));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(empty, { recursive: true, force: true });
});
