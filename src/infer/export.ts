/**
 * From the network's logits on the preprocessed grid back to a label map in the input's geometry
 * (nnU-Net `convert_predicted_logits_to_segmentation_with_correct_shape`, NNUNET.md section 5):
 * resample the LOGITS (linear, order 1, separate-z rule with order 0 along the low-resolution axis)
 * from the plan's spacing to the shape after cropping, argmax (softmax only for probabilities),
 * paste into zeros of the shape before cropping at the crop box, undo the transpose, and attach the
 * original spacing and affine. Classes are resampled one at a time (running argmax), so a full CT
 * needs one class of float32 at a time unless probabilities are asked for. Region-based models
 * (regions.ts) take a sigmoid per head and write the heads' labels in regions_class_order instead.
 */
import type { Shape3, Volume } from '../core/index.js';
import { resampleVolumeToShape, transposeArray, type CaseProperties, type ResampleSettings } from '../data/index.js';
import { sigmoidInPlace, writeRegion } from './regions.js';

/** nnU-Net's logits export resampling: order 1, order 0 along a separate z, its own anisotropy rule. */
export const LOGITS_RESAMPLING: Readonly<ResampleSettings> = Object.freeze({ order: 1, orderZ: 0, forceSeparateZ: null, anisotropyThreshold: 3 });

export interface ExportOptions {
  /** Label value written for each class index (default: the index itself). */
  labelValues?: readonly number[];
  /** Also return softmax probabilities per class (background 1 outside the crop box). */
  probabilities?: boolean;
  resampling?: Readonly<ResampleSettings>;
  /**
   * Region-based models (regions.ts): the label each head writes, in order; the heads' logits go
   * through a sigmoid and are thresholded at 0.5 instead of the softmax and argmax over classes.
   */
  regionClassOrder?: readonly number[];
}

export interface ExportedPrediction {
  segmentation: Volume<Uint8Array>;
  /** One volume per class, in the input's geometry; null unless asked for. */
  probabilities: Volume<Float32Array>[] | null;
  /**
   * Where the export's time went: `resampleBack` fetching and resampling each class's logits,
   * `argmax` the running argmax, paste into the uncropped grid, transpose and softmax.
   */
  seconds: { resampleBack: number; argmax: number };
}

function now(): number {
  return performance.now() / 1000;
}

function permute(values: readonly number[], order: readonly number[]): Shape3 {
  return [values[order[0]!]!, values[order[1]!]!, values[order[2]!]!];
}

/** Copy `source` (shape of the box) into `target` (shape `targetShape`) at the box. */
function pasteBox<T extends Uint8Array | Float32Array>(target: T, targetShape: Shape3, source: T, box: CaseProperties['bboxUsedForCropping']): void {
  const [bz, by, bx] = box;
  const sx = bx[1] - bx[0];
  let index = 0;
  for (let z = bz[0]; z < bz[1]; z++) {
    for (let y = by[0]; y < by[1]; y++, index += sx) {
      const at = (z * targetShape[1] + y) * targetShape[2] + bx[0];
      target.set(source.subarray(index, index + sx), at);
    }
  }
}

/**
 * The label map (and optionally probabilities) of a case from its logits. `logitsOfClass(k)` returns
 * class k's logits on the preprocessed grid (`properties.shapeAfterResampling`, network order).
 */
export function exportPrediction(
  logitsOfClass: (classIndex: number) => Float32Array,
  numClasses: number,
  properties: CaseProperties,
  options: ExportOptions = {},
): ExportedPrediction {
  const labelValues = options.labelValues ?? Array.from({ length: numClasses }, (_, k) => k);
  if (labelValues.length !== numClasses) throw new RangeError(`${labelValues.length} label values for ${numClasses} classes`);
  if (labelValues.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) throw new RangeError('label values must be integers in 0..255 for a uint8 mask');
  const settings = options.resampling ?? LOGITS_RESAMPLING;
  const croppedShape = properties.shapeAfterCroppingBeforeResampling;
  const croppedVoxels = croppedShape[0] * croppedShape[1] * croppedShape[2];

  const resampled = (k: number): Float32Array =>
    resampleVolumeToShape(
      { data: logitsOfClass(k), shape: properties.shapeAfterResampling },
      croppedShape,
      properties.targetSpacing,
      properties.spacingBeforeResampling,
      settings,
    ).data;

  // Running argmax over classes; ties keep the lower class (numpy/torch argmax).
  const best = new Float32Array(croppedVoxels).fill(-Infinity);
  const argmax = new Uint8Array(croppedVoxels);
  const kept: Float32Array[] = [];
  const start = now();
  let resampleBack = 0;
  const regions = options.regionClassOrder ?? null;
  if (regions !== null && regions.length !== numClasses) throw new RangeError(`${regions.length} entries in regions_class_order for ${numClasses} heads`);
  const labels = new Uint8Array(croppedVoxels);
  for (let k = 0; k < numClasses; k++) {
    const before = now();
    const values = resampled(k);
    resampleBack += now() - before;
    if (regions !== null) {
      writeRegion(labels, sigmoidInPlace(values), regions[k]!);
      if (options.probabilities) kept.push(values);
      continue;
    }
    for (let i = 0; i < croppedVoxels; i++) {
      if (values[i]! > best[i]!) {
        best[i] = values[i]!;
        argmax[i] = k;
      }
    }
    if (options.probabilities) kept.push(values);
  }
  if (regions === null) for (let i = 0; i < croppedVoxels; i++) labels[i] = labelValues[argmax[i]!]!;

  const fullShape = properties.shapeBeforeCropping;
  const fullVoxels = fullShape[0] * fullShape[1] * fullShape[2];
  const backward = properties.transpose.backward;
  const inputShape = permute(fullShape, backward);
  const geometry = { shape: inputShape, spacing: [...properties.originalSpacing] as Shape3, affine: properties.affine };
  const toInputOrder = <T extends Uint8Array | Float32Array>(data: T, create: (n: number) => T): T =>
    transposeArray(data, fullShape, backward, create).data;

  const pasted = new Uint8Array(fullVoxels);
  pasteBox(pasted, fullShape, labels, properties.bboxUsedForCropping);
  const segmentation: Volume<Uint8Array> = { data: toInputOrder(pasted, (n) => new Uint8Array(n)), ...geometry };

  let probabilities: Volume<Float32Array>[] | null = null;
  if (options.probabilities && regions !== null) {
    // Sigmoid probabilities already; 0 for every head outside the crop box.
    probabilities = kept.map((values) => {
      const full = new Float32Array(fullVoxels);
      pasteBox(full, fullShape, values, properties.bboxUsedForCropping);
      return { data: toInputOrder(full, (n) => new Float32Array(n)), ...geometry, shape: [...inputShape] as Shape3 };
    });
  } else if (options.probabilities) {
    // Softmax in place over the kept logits (max already known per voxel).
    const total = new Float32Array(croppedVoxels);
    for (const values of kept) {
      for (let i = 0; i < croppedVoxels; i++) {
        const e = Math.exp(values[i]! - best[i]!);
        values[i] = e;
        total[i] = total[i]! + e;
      }
    }
    probabilities = kept.map((values, k) => {
      for (let i = 0; i < croppedVoxels; i++) values[i] = values[i]! / total[i]!;
      const full = new Float32Array(fullVoxels).fill(k === 0 ? 1 : 0);
      pasteBox(full, fullShape, values, properties.bboxUsedForCropping);
      return { data: toInputOrder(full, (n) => new Float32Array(n)), ...geometry, shape: [...inputShape] as Shape3 };
    });
  }
  return { segmentation, probabilities, seconds: { resampleBack, argmax: now() - start - resampleBack } };
}
