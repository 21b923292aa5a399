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
import { addIssue, ALWAYS, atomicWriteJsonSync, integer, parseJson, ValidationError, z, type Issue } from '../../core/index.js';

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

const isLabelValue = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;

/** "0".."N-1", each a string name. */
const ChannelNames = z
  .record(z.string(), z.string({ error: 'channel name must be a string' }), {
    error: (issue) => (issue.input === undefined ? 'channel_names is missing (e.g. {"0": "CT"})' : 'channel_names must be a non-empty object such as {"0": "CT"}'),
  })
  .superRefine((channels, ctx) => {
    if (!isRecord(channels)) return;
    const keys = Object.keys(channels);
    if (keys.length === 0) return addIssue(ctx, 'wrong-type', 'channel_names must be a non-empty object such as {"0": "CT"}');
    const indices = keys.map(Number).sort((a, b) => a - b);
    if (!indices.every((value, index) => value === index) || !keys.every((key) => /^\d+$/.test(key))) {
      addIssue(ctx, 'bad-channels', `channel indices must be "0".."${keys.length - 1}", got ${keys.map((k) => `"${k}"`).join(', ')}`);
    }
  }, ALWAYS);

/** A label value (an integer >= 0), or a region: a non-empty list of them. */
const LabelEntry = z.union([integer().min(0), z.array(integer().min(0)).min(1)], {
  error: (issue) =>
    Array.isArray(issue.input) ? 'a region must be a non-empty list of integer label values >= 0' : `label value must be an integer >= 0, got ${JSON.stringify(issue.input)}`,
});

/** Rules across the labels: distinct values, background 0, the ignore label highest, 0..N without regions. */
function checkLabels(labels: Record<string, unknown>, ctx: z.RefinementCtx): void {
  if (Object.keys(labels).length === 0) return addIssue(ctx, 'wrong-type', 'labels must be a non-empty object');
  const values = new Set<number>();
  /** Scalar label value -> the first name that holds it (a second name with that value is an issue). */
  const nameOfValue = new Map<number, string>();
  let regions = false;
  for (const [name, value] of Object.entries(labels)) {
    if (Array.isArray(value)) {
      regions = true;
      if (name === IGNORE_LABEL_NAME) addIssue(ctx, 'wrong-type', 'the ignore label must be one integer value, not a region (list)', [name]);
      else if (value.every(isLabelValue)) value.forEach((v) => values.add(v));
    } else if (isLabelValue(value)) {
      const first = nameOfValue.get(value);
      if (first !== undefined) {
        addIssue(ctx, 'duplicate-label-value', `label '${name}' has the value ${String(value)} that '${first}' already has: each label needs its own value`, [name]);
      } else nameOfValue.set(value, name);
      values.add(value);
    }
  }
  const ignore = labels[IGNORE_LABEL_NAME];
  if (isLabelValue(ignore)) {
    const others = [...values].filter((v) => v !== ignore);
    const highestOther = others.length === 0 ? -1 : Math.max(...others);
    if (ignore !== highestOther + 1) {
      addIssue(
        ctx,
        'ignore-not-highest',
        `the ignore label must have the highest label value, one above the others (nnU-Net: max of the other labels + 1 = ${highestOther + 1} here), got ${String(ignore)}`,
        [IGNORE_LABEL_NAME],
      );
    }
  }
  if (!Object.values(labels).some((value) => value === 0)) addIssue(ctx, 'missing-background', 'labels must include the background label 0 (e.g. "background": 0)');
  if ('background' in labels && labels.background !== 0) addIssue(ctx, 'missing-background', 'background must be label 0', ['background']);
  const sorted = [...values].sort((a, b) => a - b);
  if (!regions && !sorted.every((value, index) => value === index)) {
    addIssue(ctx, 'labels-not-consecutive', `label values must be consecutive integers 0..N (nnU-Net), got ${sorted.join(', ')}`);
  }
}

const Labels = z
  .record(z.string(), LabelEntry, {
    error: (issue) => (issue.input === undefined ? 'labels is missing (e.g. {"background": 0, "lesion": 1})' : 'labels must be a non-empty object'),
  })
  .superRefine((labels, ctx) => {
    if (isRecord(labels)) checkLabels(labels, ctx);
  }, ALWAYS);

const FileEnding = z
  .string({ error: (issue) => (issue.input === undefined ? 'file_ending is missing (e.g. ".nii.gz")' : 'file_ending must be a string') })
  .superRefine((ending, ctx) => {
    if (/[/\\]|\.\./.test(ending)) addIssue(ctx, 'outside-dataset', `file_ending '${ending}' contains a path; it must be an extension such as ".nii.gz"`);
    else if (!(SUPPORTED_FILE_ENDINGS as readonly string[]).includes(ending)) {
      addIssue(ctx, 'unsupported-file-ending', `file_ending '${ending}' is not supported (use ${SUPPORTED_FILE_ENDINGS.join(' or ')})`);
    }
  });

/**
 * dataset.json as nnU-Net v2 writes it. Other keys (nnU-Net's overwrite_image_reader_writer,
 * licence, reference...) pass through untouched; nnU-Net v1's "modality" is read as channel_names.
 */
export const DatasetJsonSchema = z.preprocess(
  (json) => (isRecord(json) && json.channel_names === undefined && json.modality !== undefined ? { ...json, channel_names: json.modality } : json),
  z
    .looseObject(
      {
        /** Channel index ("0", "1", ...) -> name ("CT"); the name "CT" selects CT normalisation. */
        channel_names: ChannelNames,
        /** Label name -> value, or -> list of values for region-based training; must hold background 0. */
        labels: Labels,
        numTraining: integer({
          error: (issue) => (issue.input === undefined ? 'numTraining is missing' : `numTraining must be an integer >= 0, got ${JSON.stringify(issue.input)}`),
        }).min(0, { error: (issue) => `numTraining must be an integer >= 0, got ${JSON.stringify(issue.input)}` }),
        /** File extension of every image and label, e.g. ".nii.gz". */
        file_ending: FileEnding,
        name: z.string({ error: 'name must be a string' }).optional(),
        description: z.string({ error: 'description must be a string' }).optional(),
      },
      { error: 'dataset.json must hold a JSON object' },
    )
    .superRefine((json, ctx) => {
      const labels: unknown = isRecord(json) ? json.labels : undefined;
      const regions = isRecord(labels) && Object.values(labels).some(Array.isArray);
      if (regions && !Array.isArray(json.regions_class_order)) addIssue(ctx, 'missing-field', 'region-based labels (lists) need regions_class_order', ['regions_class_order']);
    }, ALWAYS),
);

export type DatasetJson = z.output<typeof DatasetJsonSchema>;

/** Every problem with a parsed dataset.json, as Issues reported against `file`. */
export function validateDatasetJson(json: unknown, file: string): Issue[] {
  const result = parseJson(DatasetJsonSchema, json, file);
  return result.ok ? [] : result.issues;
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
  const result = parseJson(DatasetJsonSchema, json, file);
  if (!result.ok) throw new ValidationError(result.issues, { file });
  return result.value;
}

/** Validate and write `<datasetDir>/dataset.json` atomically (2-space indented). */
export function writeDatasetJson(datasetDir: string, json: DatasetJson): void {
  const file = path.join(datasetDir, 'dataset.json');
  const issues = validateDatasetJson(json, file);
  if (issues.length > 0) throw new ValidationError(issues, { file });
  atomicWriteJsonSync(file, json);
}

/**
 * The regions of a region-based dataset.json (nnU-Net's LabelManager): a model has regions when a
 * label holds a list of more than one value. Its output heads are the labels in dataset.json's
 * order, leaving out "ignore" and the background (0, or a list of zeros), each a region (its
 * values); `regions_class_order` gives, per head, the label value written where that head's
 * sigmoid is above 0.5 (later heads overwrite earlier ones), and must have one entry per head.
 */
export interface NnunetRegions {
  /** Per output head: the label name and the values of its region. */
  names: string[];
  regions: number[][];
  /** Per output head: the label value written in the mask. */
  classOrder: number[];
}

/** The regions of `json`, or null when its labels are plain values (softmax over classes). */
export function nnunetRegionsOf(json: { labels: Readonly<Record<string, number | readonly number[]>>; regions_class_order?: unknown }, file: string): NnunetRegions | null {
  const entries = Object.entries(json.labels);
  if (!entries.some(([, value]) => Array.isArray(value) && value.length > 1)) return null;
  const heads = entries.filter(([name, value]) => name !== IGNORE_LABEL_NAME && !(Array.isArray(value) ? value.every((v) => v === 0) : value === 0));
  const order = json.regions_class_order;
  if (!Array.isArray(order) || !order.every((value) => Number.isInteger(value) && value >= 0 && value <= 255)) {
    throw new ValidationError([{ file, path: 'regions_class_order', code: 'wrong-type', message: `regions_class_order must list one label value 0..255 per region (${heads.length}), got ${JSON.stringify(order)}` }], { file });
  }
  if (order.length !== heads.length) {
    throw new ValidationError([{ file, path: 'regions_class_order', code: 'bad-value', message: `regions_class_order has ${order.length} entries for ${heads.length} regions (${heads.map(([name]) => name).join(', ')}): nnU-Net needs one per region` }], { file });
  }
  return {
    names: heads.map(([name]) => name),
    regions: heads.map(([, value]) => (Array.isArray(value) ? [...value] : [value as number])),
    classOrder: order as number[],
  };
}
