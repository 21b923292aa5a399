/**
 * Medical Segmentation Decathlon Task06_Lung, unpacked as released:
 *   SRC (or SRC/Task06_Lung)/dataset.json   nnU-Net v1 style: "modality" {"0": "CT"}, "labels"
 *                                           {"0": "background", "1": "cancer"}, "training" [{image,
 *                                           label}], "test" [...], and the misspelt "relase" field
 *   imagesTr/lung_XXX.nii.gz, labelsTr/lung_XXX.nii.gz (1 = cancer), imagesTs/lung_XXX.nii.gz
 * macOS `._lung_XXX.nii.gz` files of the archive are skipped. The training list of dataset.json is
 * used when it is there (every entry must exist inside SRC), else imagesTr is scanned. Test images go
 * to imagesTs. Case ids are the file stems (lung_001).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Issue } from '../../../core/index.js';
import { findNifti, firstFolder, isInside, niftiNames, niftiStem } from './scan-helpers.js';
import type { Importer, ScanResult, SourceCase } from './types.js';

const CANCER_RULE = { kind: 'values', allowed: [0, 1] } as const;

interface MsdJson {
  training?: unknown;
  test?: unknown;
  labels?: unknown;
  modality?: unknown;
  relase?: unknown;
  release?: unknown;
}

function readMsdJson(file: string, issues: Issue[]): MsdJson | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not a JSON object');
    return json as MsdJson;
  } catch (error) {
    issues.push({ file, path: '', code: 'bad-json', message: `cannot read the MSD dataset.json: ${(error as Error).message}` });
    return undefined;
  }
}

/** A path from the MSD dataset.json (e.g. "./imagesTr/lung_001.nii.gz") resolved in `root`, or an issue. */
function listedFile(root: string, value: unknown, jsonFile: string, jsonPath: string, issues: Issue[]): string | undefined {
  if (typeof value !== 'string' || value.length === 0) {
    issues.push({ file: jsonFile, path: jsonPath, code: 'wrong-type', message: 'must be a file path such as "./imagesTr/lung_001.nii.gz"' });
    return undefined;
  }
  const file = path.resolve(root, value);
  if (!isInside(root, file)) {
    issues.push({ file: jsonFile, path: jsonPath, code: 'outside-dataset', message: `'${value}' points outside ${root}` });
    return undefined;
  }
  if (!fs.existsSync(file)) {
    issues.push({ file, path: '', code: 'not-found', message: `listed in ${jsonFile} (${jsonPath}) but not found` });
    return undefined;
  }
  return file;
}

function isAppleDouble(value: unknown): boolean {
  return typeof value === 'string' && path.basename(value).startsWith('._');
}

function scan(source: string): ScanResult {
  const issues: Issue[] = [];
  const root = firstFolder([path.join(source, 'Task06_Lung')]) ?? source;
  const jsonFile = path.join(root, 'dataset.json');
  const json = readMsdJson(jsonFile, issues);
  const cases: SourceCase[] = [];
  const notes: Record<string, unknown> = { release: 'Medical Segmentation Decathlon Task06_Lung', labels: 'labelsTr: 1 = cancer' };
  if (json) {
    const labels = json.labels as Record<string, unknown> | undefined;
    if (labels !== undefined && labels['1'] !== undefined && String(labels['1']).toLowerCase() !== 'cancer') {
      issues.push({ file: jsonFile, path: 'labels.1', code: 'unexpected-label', message: `label 1 is '${String(labels['1'])}', expected 'cancer' (is this Task06_Lung?)` });
    }
    notes.sourceDatasetJson = { modality: json.modality, labels: json.labels, release: json.relase ?? json.release };
  }
  if (json && Array.isArray(json.training)) {
    json.training.forEach((entry: unknown, index) => {
      const record = (typeof entry === 'object' && entry !== null ? entry : {}) as { image?: unknown; label?: unknown };
      if (isAppleDouble(record.image)) return;
      const image = listedFile(root, record.image, jsonFile, `training.${index}.image`, issues);
      const label = listedFile(root, record.label, jsonFile, `training.${index}.label`, issues);
      if (image && label) cases.push({ id: niftiStem(path.basename(image)), image, label: { file: label, rule: CANCER_RULE }, extras: [], facts: {} });
    });
    const listed = new Set(cases.map((c) => path.basename(c.image)));
    const unlisted = niftiNames(path.join(root, 'imagesTr')).filter((name) => !listed.has(name));
    if (unlisted.length > 0) notes.unlistedImagesIgnored = unlisted;
  } else {
    if (json) issues.push({ file: jsonFile, path: 'training', code: 'missing-field', message: 'no "training" list; expected [{"image": ..., "label": ...}]' });
    const imagesDir = path.join(root, 'imagesTr');
    const names = niftiNames(imagesDir);
    if (names.length === 0) issues.push({ file: imagesDir, path: '', code: 'not-found', message: 'no imagesTr/*.nii.gz found (is this the Task06_Lung folder?)' });
    for (const name of names) {
      const id = niftiStem(name);
      const label = findNifti(path.join(root, 'labelsTr'), id);
      if (!label) {
        issues.push({ file: path.join(root, 'labelsTr', name), path: '', code: 'not-found', message: `label of ${path.join(imagesDir, name)} not found` });
        continue;
      }
      cases.push({ id, image: path.join(imagesDir, name), label: { file: label, rule: CANCER_RULE }, extras: [], facts: {} });
    }
  }
  const testFiles = json && Array.isArray(json.test)
    ? json.test.filter((entry) => !isAppleDouble(entry)).map((entry: unknown, index) => listedFile(root, entry, jsonFile, `test.${index}`, issues))
    : niftiNames(path.join(root, 'imagesTs')).map((name) => path.join(root, 'imagesTs', name));
  for (const file of testFiles) {
    if (file) cases.push({ id: niftiStem(path.basename(file)), image: file, label: null, extras: [], facts: { split: 'test (no label)' } });
  }
  const seen = new Set<string>();
  for (const c of cases) {
    if (seen.has(c.id)) issues.push({ file: c.image, path: '', code: 'duplicate-case', message: `case id '${c.id}' appears twice` });
    seen.add(c.id);
  }
  return { cases, issues, notes };
}

export const MSD_LUNG_IMPORTER: Importer = {
  kind: 'msd-lung',
  scan,
  alignment: 'same-grid',
  detectRadiopaediaWindow: false,
  datasetJson: {
    channel_names: { '0': 'CT' },
    labels: { background: 0, cancer: 1 },
    file_ending: '.nii.gz',
    name: 'MSDLung',
    description: 'Medical Segmentation Decathlon Task06_Lung: non-small cell lung cancer, label 1 = cancer',
    reference: 'http://medicaldecathlon.com/',
    licence: 'CC-BY-SA 4.0',
  },
};
