/**
 * Preprocessing of one case held in memory, in nnU-Net's order (nnunetv2 preprocessing/
 * preprocessors/default_preprocessor.py `run_case_npy`, NNUNET.md section 2): transpose ->
 * crop to nonzero (-1 outside marker in the label map) -> normalise (BEFORE resampling) ->
 * resample image and label map to the plan's spacing -> sample class locations. The properties
 * returned hold what inference needs to undo it (crop box, shapes, spacing, affine, transpose).
 */
import { InputError, Rng, type Affine, type Shape3, type Volume } from '../core/index.js';
import { cropToNonzero, type BoundingBox } from './crop.js';
import { checkCaseShapes, numericData } from './fingerprint.js';
import { normalizeChannel } from './normalize.js';
import { transposeTriple } from './planning.js';
import type { Plan, PlanConfiguration } from './planning_schema.js';
import { computeNewShape, resampleSegmentationToShape, resampleVolumeToShape } from './resample.js';

/** nnU-Net `_sample_foreground_locations`: at most 10000 per label, but at least 1 % of its voxels. */
export const CLASS_LOCATION_SAMPLES = 10000;
export const CLASS_LOCATION_MIN_FRACTION = 0.01;
export const CLASS_LOCATION_SEED = 1234;

export interface CaseProperties {
  caseId: string;
  /** Spacing of the input, [z, y, x] as read (before the transpose). */
  originalSpacing: Shape3;
  /** The input's NIfTI affine (voxel (x, y, z) -> world), for writing predictions back. */
  affine: Affine;
  /** All following shapes, the box and the coordinates are in network (transposed) order. */
  shapeBeforeCropping: Shape3;
  bboxUsedForCropping: BoundingBox;
  shapeAfterCroppingBeforeResampling: Shape3;
  shapeAfterResampling: Shape3;
  spacingBeforeResampling: Shape3;
  targetSpacing: Shape3;
  transpose: { forward: Shape3; backward: Shape3 };
  /** Label value -> sampled [z, y, x] voxel coordinates of that label in the preprocessed arrays. */
  classLocations: Record<string, [number, number, number][]>;
}

export interface PreprocessedCase {
  /** float32 [C, z, y, x]. */
  data: Float32Array;
  /** [C, z, y, x]. */
  shape: [number, number, number, number];
  /** int8 [1, z, y, x] with -1 outside the nonzero region; null when no label was given. */
  seg: Int8Array | null;
  properties: CaseProperties;
  /** Seconds of each step (the label's resampling and sampling counted in `resample`). */
  seconds: PreprocessSeconds;
}

export interface PreprocessSeconds {
  transpose: number;
  crop: number;
  normalize: number;
  resample: number;
}

export interface PreprocessCaseOptions {
  caseId?: string;
  /** Foreground labels to sample locations of (default: the positive values in the label map). */
  foregroundLabels?: readonly number[];
}

function fileOf(volume: Volume, fallback: string): string {
  const file = (volume as { file?: unknown }).file;
  return typeof file === 'string' ? file : fallback;
}

/** Permute a [z, y, x] array so that output axis k is input axis order[k]. */
export function transposeArray<T extends ArrayLike<number>>(
  data: T,
  shape: Shape3,
  order: readonly number[],
  create: (length: number) => T & { [index: number]: number },
): { data: T; shape: Shape3 } {
  if (order[0] === 0 && order[1] === 1 && order[2] === 2) return { data, shape: [...shape] };
  const newShape = transposeTriple(shape, order);
  const strides = [shape[1] * shape[2], shape[2], 1];
  const s0 = strides[order[0]!]!;
  const s1 = strides[order[1]!]!;
  const s2 = strides[order[2]!]!;
  const output = create(data.length);
  let index = 0;
  for (let a = 0; a < newShape[0]; a++) {
    for (let b = 0; b < newShape[1]; b++) {
      const base = a * s0 + b * s1;
      for (let c = 0; c < newShape[2]; c++) output[index++] = data[base + c * s2]!;
    }
  }
  return { data: output, shape: newShape };
}

function checkLabelValues(label: Volume, caseName: string): void {
  const data = numericData(label);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isInteger(v) || v < 0 || v > 127) {
      throw new InputError(`label value ${v} at voxel ${i}: labels must be integers in 0..127`, {
        file: fileOf(label, `${caseName} label`),
        code: 'bad-label',
      });
    }
  }
}

/** Sample class locations from a label map ([z, y, x] shape) as nnU-Net does, seeded per case. */
export function sampleClassLocations(
  seg: Int8Array,
  shape: Shape3,
  labels: readonly number[],
  seed = CLASS_LOCATION_SEED,
): Record<string, [number, number, number][]> {
  const rng = new Rng(seed);
  const counts = new Map<number, number>(labels.map((l) => [l, 0]));
  for (let i = 0; i < seg.length; i++) {
    const c = counts.get(seg[i]!);
    if (c !== undefined) counts.set(seg[i]!, c + 1);
  }
  const indices = new Map<number, Int32Array>(labels.map((l) => [l, new Int32Array(counts.get(l)!)]));
  const filled = new Map<number, number>(labels.map((l) => [l, 0]));
  for (let i = 0; i < seg.length; i++) {
    const list = indices.get(seg[i]!);
    if (list === undefined) continue;
    const k = filled.get(seg[i]!)!;
    list[k] = i;
    filled.set(seg[i]!, k + 1);
  }
  const plane = shape[1] * shape[2];
  const result: Record<string, [number, number, number][]> = {};
  for (const label of labels) {
    const list = indices.get(label)!;
    const n = list.length;
    const target = Math.max(Math.min(CLASS_LOCATION_SAMPLES, n), Math.ceil(n * CLASS_LOCATION_MIN_FRACTION));
    const picked: [number, number, number][] = [];
    // Partial Fisher-Yates: `target` distinct voxels, drawn without replacement.
    for (let k = 0; k < target; k++) {
      const j = rng.int(k, n);
      const chosen = list[j]!;
      list[j] = list[k]!;
      list[k] = chosen;
      const z = Math.floor(chosen / plane);
      const rest = chosen - z * plane;
      const y = Math.floor(rest / shape[2]);
      picked.push([z, y, rest - y * shape[2]]);
    }
    result[String(label)] = picked;
  }
  return result;
}

function presentForegroundLabels(seg: Int8Array): number[] {
  const present = new Uint8Array(128);
  for (let i = 0; i < seg.length; i++) if (seg[i]! > 0) present[seg[i]!] = 1;
  const labels: number[] = [];
  present.forEach((flag, value) => {
    if (flag) labels.push(value);
  });
  return labels;
}

/**
 * The spacing a case is resampled to, given its own (transposed) spacing: the plan's, except that
 * a 2D configuration keeps the case's slice spacing (nnU-Net's run_case_npy:
 * `[original_spacing[0]] + target_spacing`).
 */
export function caseTargetSpacing(configuration: Pick<PlanConfiguration, 'targetSpacing' | 'spatialDims'>, caseSpacing: readonly number[]): Shape3 {
  const target = configuration.targetSpacing;
  return configuration.spatialDims === 2 ? [caseSpacing[0]!, target[1], target[2]] : [target[0], target[1], target[2]];
}

/** Preprocess one case: `images` one Volume per channel, `label` or null (inference). */
export function preprocessCase(
  images: readonly Volume[],
  label: Volume | null,
  plan: Plan,
  options: PreprocessCaseOptions = {},
): PreprocessedCase {
  const caseId = options.caseId ?? 'case';
  const configuration = plan.configuration;
  const channelCount = configuration.normalization.length;
  if (images.length !== channelCount) {
    throw new InputError(`the case has ${images.length} channel(s), the plan expects ${channelCount}`, {
      file: images[0] !== undefined ? fileOf(images[0], caseId) : caseId,
      code: 'channel-mismatch',
    });
  }
  const inputShape = checkCaseShapes(images, label, caseId);
  if (label !== null) checkLabelValues(label, caseId);
  const forward = configuration.transpose.forward;
  const originalSpacing: Shape3 = [...images[0]!.spacing];
  const spacing = transposeTriple(originalSpacing, forward);

  const seconds: PreprocessSeconds = { transpose: 0, crop: 0, normalize: 0, resample: 0 };
  let mark = performance.now();
  const lap = (step: keyof PreprocessSeconds): void => {
    const time = performance.now();
    seconds[step] += (time - mark) / 1000;
    mark = time;
  };
  const transposed = images.map(
    (image) => transposeArray(numericData(image), inputShape, forward, (n) => new Float32Array(n)).data,
  );
  const transposedLabel =
    label === null ? null : transposeArray(numericData(label), inputShape, forward, (n) => new Int8Array(n)).data;
  const shapeBeforeCropping = transposeTriple(inputShape, forward);
  lap('transpose');

  const cropped = cropToNonzero(transposed, shapeBeforeCropping, transposedLabel);
  lap('crop');
  const croppedShape = cropped.shape;
  const targetSpacing = caseTargetSpacing(configuration, spacing);
  const newShape = computeNewShape(croppedShape, spacing, targetSpacing);

  const voxels = newShape[0] * newShape[1] * newShape[2];
  const data = new Float32Array(channelCount * voxels);
  cropped.channels.forEach((channel, c) => {
    const plan = configuration.normalization[c]!;
    normalizeChannel(channel, cropped.segmentation, {
      scheme: plan.scheme,
      useMaskForNorm: plan.useMaskForNorm,
      intensityProperties: plan.ct === undefined ? undefined : { ...plan.ct, median: Number.NaN, min: Number.NaN, max: Number.NaN },
    });
    lap('normalize');
    const resampled = resampleVolumeToShape(
      { data: channel, shape: croppedShape },
      newShape,
      spacing,
      targetSpacing,
      configuration.resampling.data,
    );
    data.set(resampled.data, c * voxels);
    lap('resample');
  });

  let seg: Int8Array | null = null;
  let classLocations: Record<string, [number, number, number][]> = {};
  if (label !== null) {
    seg = resampleSegmentationToShape(
      { data: cropped.segmentation, shape: croppedShape },
      newShape,
      spacing,
      targetSpacing,
      configuration.resampling.segmentation,
    ).data;
    const labels = options.foregroundLabels ?? presentForegroundLabels(seg);
    classLocations = sampleClassLocations(seg, newShape, labels);
    lap('resample');
  }

  return {
    data,
    shape: [channelCount, ...newShape],
    seg,
    properties: {
      caseId,
      originalSpacing,
      affine: images[0]!.affine,
      shapeBeforeCropping,
      bboxUsedForCropping: cropped.bbox,
      shapeAfterCroppingBeforeResampling: croppedShape,
      shapeAfterResampling: newShape,
      spacingBeforeResampling: spacing,
      targetSpacing,
      transpose: { forward: [...forward], backward: [...configuration.transpose.backward] },
      classLocations,
    },
    seconds,
  };
}
