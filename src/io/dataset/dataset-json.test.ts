/**
 * dataset.json label rules: the ignore label (highest value, an integer, no region), a label value
 * held by two names, and the label-space helpers (ignore value, classes the network predicts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ignoreLabelOf, segmentationClassCount, validateDatasetJson, type DatasetJson } from '../index.js';

const FILE = '/data/Dataset001_X/dataset.json';
const base: DatasetJson = { channel_names: { '0': 'CT' }, labels: { background: 0, lesion: 1 }, numTraining: 2, file_ending: '.nii.gz' };
const issuesOf = (labels: unknown): string[] => validateDatasetJson({ ...base, labels }, FILE).map((issue) => `${issue.code} ${issue.path}`).sort();

test('an ignore label with the highest value (max + 1) is valid', () => {
  assert.deepEqual(issuesOf({ background: 0, lesion: 1, ignore: 2 }), []);
  assert.deepEqual(issuesOf({ background: 0, a: 1, b: 2, ignore: 3 }), []);
});

test('an ignore label that is not the highest value is an issue naming labels.ignore', () => {
  assert.deepEqual(issuesOf({ background: 0, ignore: 1, lesion: 2 }), ['ignore-not-highest labels.ignore']);
  const [issue] = validateDatasetJson({ ...base, labels: { background: 0, ignore: 1, lesion: 2 } }, FILE);
  assert.equal(issue!.file, FILE);
  assert.match(issue!.message, /= 3 here\), got 1/);
  // highest but not one above the others: also not consecutive
  assert.deepEqual(issuesOf({ background: 0, lesion: 1, ignore: 5 }), ['ignore-not-highest labels.ignore', 'labels-not-consecutive labels']);
});

test('the ignore label cannot be a region', () => {
  assert.deepEqual(issuesOf({ background: 0, lesion: [1], ignore: [2] }), ['missing-field regions_class_order', 'wrong-type labels.ignore']);
});

test('two names with one value are an issue naming the second name', () => {
  assert.deepEqual(issuesOf({ background: 0, lesion: 1, tumour: 1 }), ['duplicate-label-value labels.tumour']);
  const [issue] = validateDatasetJson({ ...base, labels: { background: 0, lesion: 1, tumour: 1 } }, FILE);
  assert.equal(issue!.file, FILE);
  assert.match(issue!.message, /'tumour' has the value 1 that 'lesion' already has/);
  assert.deepEqual(issuesOf({ background: 0, nothing: 0, lesion: 1 }), ['duplicate-label-value labels.nothing']);
  // the ignore label sharing a value is the same mistake (reported once, as a duplicate)
  assert.deepEqual(issuesOf({ background: 0, lesion: 1, ignore: 1 }), ['duplicate-label-value labels.ignore']);
});

test('regions may share members (as today): only scalar values must be distinct', () => {
  assert.deepEqual(
    validateDatasetJson({ ...base, labels: { background: 0, whole: [1, 2], core: 2 }, regions_class_order: [1, 2] }, FILE),
    [],
  );
});

test('ignoreLabelOf and segmentationClassCount', () => {
  assert.equal(ignoreLabelOf({ background: 0, lesion: 1 }), null);
  assert.equal(ignoreLabelOf({ background: 0, lesion: 1, ignore: 2 }), 2);
  assert.equal(segmentationClassCount({ background: 0, lesion: 1 }), 2);
  assert.equal(segmentationClassCount({ background: 0, lesion: 1, ignore: 2 }), 2);
  assert.equal(segmentationClassCount({ background: 0, a: 1, b: 2, ignore: 3 }), 3);
});

test('every problem of a dataset.json at once, each with its JSON path (zod schema)', () => {
  const found = (json: unknown): string[] => validateDatasetJson(json, FILE).map((issue) => `${issue.code} ${issue.path}`);
  assert.deepEqual(found(5), ['wrong-type ']);
  assert.deepEqual(found({}), ['missing-field channel_names', 'missing-field labels', 'missing-field numTraining', 'missing-field file_ending']);
  const bad = { modality: { '0': 'CT' }, labels: { background: 0, a: [1, -2], b: 'x', c: [] }, numTraining: -1, file_ending: '../x', name: 3, licence: 'CC-BY' };
  assert.deepEqual(found(bad), [
    'bad-value labels.a.1',
    'wrong-type labels.b',
    'bad-value labels.c',
    'bad-value numTraining',
    'outside-dataset file_ending',
    'wrong-type name',
    'missing-field regions_class_order',
  ]);
  const [negative] = validateDatasetJson({ ...base, labels: { background: 0, a: [1, -2] }, regions_class_order: [1] }, FILE);
  assert.equal(negative!.message, 'must be >= 0, got -2');
  // nnU-Net v1's "modality" is read as channel_names, and keys nnU-Net adds pass through.
  assert.deepEqual(found({ ...base, channel_names: undefined, modality: { '0': 'CT' }, overwrite_image_reader_writer: 'NibabelIOWithReorient' }), []);
});
