/**
 * dataset.json of an nnU-Net v2 raw dataset: one validator that collects every problem (as core
 * Issues) and the read/write helpers around it, plus the label-space helpers every layer shares
 * (the ignore label and the number of classes the network predicts).
 *
 * The ignore label (nnU-Net v2, nnunetv2/utilities/label_handling/label_handling.py LabelManager):
 * the label NAMED "ignore" marks voxels without annotation. It must be an integer, not a region,
 * and the highest label value (nnU-Net asserts ignore == max(other labels) + 1); it is no class of
 * the network (num_segmentation_heads leaves it out), and the loss, the sampler and the evaluation
 * leave its voxels out.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteJsonSync, ValidationError, type InputErrorCode, type Issue } from '../core/index.js';

export interface DatasetJson {
  /** Channel index ("0", "1", ...) -> name ("CT"); the name "CT" selects CT normalisation. */
  channel_names: Record<string, string>;
  /** Label name -> value, or -> list of values for region-based training; must hold background 0. */
  labels: Record<string, number | number[]>;
  numTraining: number;
  /** File extension of every image and label, e.g. ".nii.gz". */
  file_ending: string;
  name?: string;
  description?: string;
  [key: string]: unknown;
}

/** nnU-Net's name of the ignore label in dataset.json `labels`. */
export const IGNORE_LABEL_NAME = 'ignore';

/** The value of the ignore label (the label named "ignore"), or null when there is none. */
export function ignoreLabelOf(labels: Readonly<Record<string, number | readonly number[]>>): number | null {
  const value = Object.hasOwn(labels, IGNORE_LABEL_NAME) ? labels[IGNORE_LABEL_NAME] : undefined;
  return typeof value === 'number' ? value : null;
}

/**
 * Classes the network predicts for a label map: every label but the ignore label, background
 * included (nnU-Net's num_segmentation_heads for label-based training).
 */
export function segmentationClassCount(labels: Readonly<Record<string, number | readonly number[]>>): number {
  return Object.keys(labels).filter((name) => name !== IGNORE_LABEL_NAME).length;
}

/** Endings our NIfTI reader handles. */
export const SUPPORTED_FILE_ENDINGS = ['.nii.gz', '.nii'] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isLabelValue(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0;
}

/** Every problem with a parsed dataset.json, as Issues reported against `file`. */
export function validateDatasetJson(json: unknown, file: string): Issue[] {
  const issues: Issue[] = [];
  const add = (jsonPath: string, code: InputErrorCode, message: string) => issues.push({ file, path: jsonPath, code, message });
  if (!isRecord(json)) {
    add('', 'wrong-type', 'dataset.json must hold a JSON object');
    return issues;
  }
  // channel_names
  const channels = json.channel_names ?? json.modality; // nnU-Net v1 called it "modality"
  if (channels === undefined) add('channel_names', 'missing-field', 'channel_names is missing (e.g. {"0": "CT"})');
  else if (!isRecord(channels) || Object.keys(channels).length === 0) {
    add('channel_names', 'wrong-type', 'channel_names must be a non-empty object such as {"0": "CT"}');
  } else {
    const keys = Object.keys(channels);
    keys.forEach((key) => {
      if (typeof channels[key] !== 'string') add(`channel_names.${key}`, 'wrong-type', 'channel name must be a string');
    });
    const indices = keys.map(Number).sort((a, b) => a - b);
    if (!indices.every((value, index) => value === index) || !keys.every((key) => /^\d+$/.test(key))) {
      add('channel_names', 'bad-channels', `channel indices must be "0".."${keys.length - 1}", got ${keys.map((k) => `"${k}"`).join(', ')}`);
    }
  }
  // labels
  const labels = json.labels;
  if (labels === undefined) add('labels', 'missing-field', 'labels is missing (e.g. {"background": 0, "lesion": 1})');
  else if (!isRecord(labels) || Object.keys(labels).length === 0) add('labels', 'wrong-type', 'labels must be a non-empty object');
  else {
    const values = new Set<number>();
    /** Scalar label value -> the first name that holds it (a second name with that value is an issue). */
    const nameOfValue = new Map<number, string>();
    let regions = false;
    for (const [name, value] of Object.entries(labels)) {
      if (Array.isArray(value)) {
        regions = true;
        if (name === IGNORE_LABEL_NAME) add(`labels.${name}`, 'wrong-type', 'the ignore label must be one integer value, not a region (list)');
        else if (value.length === 0 || !value.every(isLabelValue)) add(`labels.${name}`, 'wrong-type', 'a region must be a non-empty list of integer label values >= 0');
        else value.forEach((v) => values.add(v as number));
      } else if (!isLabelValue(value)) add(`labels.${name}`, 'wrong-type', `label value must be an integer >= 0, got ${JSON.stringify(value)}`);
      else {
        const first = nameOfValue.get(value as number);
        if (first !== undefined) {
          add(`labels.${name}`, 'duplicate-label-value', `label '${name}' has the value ${String(value)} that '${first}' already has: each label needs its own value`);
        } else nameOfValue.set(value as number, name);
        values.add(value as number);
      }
    }
    const ignore = labels[IGNORE_LABEL_NAME];
    if (isLabelValue(ignore)) {
      const others = [...values].filter((v) => v !== ignore);
      const highestOther = others.length === 0 ? -1 : Math.max(...others);
      if ((ignore as number) !== highestOther + 1) {
        add(
          `labels.${IGNORE_LABEL_NAME}`,
          'ignore-not-highest',
          `the ignore label must have the highest label value, one above the others (nnU-Net: max of the other labels + 1 = ${highestOther + 1} here), got ${String(ignore)}`,
        );
      }
    }
    const background = Object.entries(labels).find(([, value]) => value === 0);
    if (!background) add('labels', 'missing-background', 'labels must include the background label 0 (e.g. "background": 0)');
    if ('background' in labels && labels.background !== 0) add('labels.background', 'missing-background', 'background must be label 0');
    const sorted = [...values].sort((a, b) => a - b);
    if (!regions && !sorted.every((value, index) => value === index)) {
      add('labels', 'labels-not-consecutive', `label values must be consecutive integers 0..N (nnU-Net), got ${sorted.join(', ')}`);
    }
    if (regions && !Array.isArray(json.regions_class_order)) {
      add('regions_class_order', 'missing-field', 'region-based labels (lists) need regions_class_order');
    }
  }
  // numTraining
  if (json.numTraining === undefined) add('numTraining', 'missing-field', 'numTraining is missing');
  else if (!Number.isInteger(json.numTraining) || (json.numTraining as number) < 0) {
    add('numTraining', 'wrong-type', `numTraining must be an integer >= 0, got ${JSON.stringify(json.numTraining)}`);
  }
  // file_ending
  const ending = json.file_ending;
  if (ending === undefined) add('file_ending', 'missing-field', 'file_ending is missing (e.g. ".nii.gz")');
  else if (typeof ending !== 'string') add('file_ending', 'wrong-type', 'file_ending must be a string');
  else if (/[/\\]|\.\./.test(ending)) add('file_ending', 'outside-dataset', `file_ending '${ending}' contains a path; it must be an extension such as ".nii.gz"`);
  else if (!(SUPPORTED_FILE_ENDINGS as readonly string[]).includes(ending)) {
    add('file_ending', 'unsupported-file-ending', `file_ending '${ending}' is not supported (use ${SUPPORTED_FILE_ENDINGS.join(' or ')})`);
  }
  for (const key of ['name', 'description'] as const) {
    if (json[key] !== undefined && typeof json[key] !== 'string') add(key, 'wrong-type', `${key} must be a string`);
  }
  return issues;
}

/** Read and validate `<datasetDir>/dataset.json`; throws ValidationError listing every problem. */
export function readDatasetJson(datasetDir: string): DatasetJson {
  const file = path.join(datasetDir, 'dataset.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ValidationError(
      [{ file, path: '', code: missing ? 'not-found' : 'unreadable', message: missing ? 'dataset.json not found' : (error as Error).message }],
      { file, cause: error },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ValidationError([{ file, path: '', code: 'bad-json', message: `not valid JSON: ${(error as Error).message}` }], { file, cause: error });
  }
  const issues = validateDatasetJson(json, file);
  if (issues.length > 0) throw new ValidationError(issues, { file });
  const record = json as DatasetJson;
  if (record.channel_names === undefined && record.modality !== undefined) record.channel_names = record.modality as Record<string, string>;
  return record;
}

/** Validate and write `<datasetDir>/dataset.json` atomically (2-space indented). */
export function writeDatasetJson(datasetDir: string, json: DatasetJson): void {
  const file = path.join(datasetDir, 'dataset.json');
  const issues = validateDatasetJson(json, file);
  if (issues.length > 0) throw new ValidationError(issues, { file });
  atomicWriteJsonSync(file, json);
}
