/**
 * All metrics of one test case (pred against ref), computed with one pass for the counts and one
 * surface-distance computation shared by NSD and HD95. Empty-mask conventions: confusion.ts and
 * surfaceMetrics.ts.
 *
 * With an ignore mask (voxels whose reference is the dataset's ignore label): the counts, and so
 * DSC, sensitivity, precision, specificity, accuracy and the volumes, leave those voxels out, as
 * nnU-Net's evaluation does. nnU-Net has no surface metrics; ours (NSD, HD95, surface areas) are
 * computed on both masks with the ignore region set to background. That removes the prediction
 * inside the region, but where a predicted structure reaches into the region its cut face there
 * is a surface of the prediction that the metrics see (a region-restricted surface metric would
 * need distances to the region's boundary excluded as well).
 */
import { InputError } from '../core/index.js';
import {
  accuracyFromCounts,
  confusion,
  diceFromCounts,
  f1FromCounts,
  precisionFromCounts,
  sensitivityFromCounts,
  specificityFromCounts,
} from './confusion.js';
import { checkMaskPair, checkSpacing, voxelVolumeMl, type BinaryMask } from './mask.js';
import { surfaceDistances, totalArea } from './surface.js';
import { robustHausdorffFromDistances, surfaceDiceFromDistances } from './surfaceMetrics.js';

export interface CaseMetrics {
  dsc: number;
  /** NSD at `toleranceMm`. */
  nsd: number;
  toleranceMm: number;
  /** Area-weighted 95th-percentile Hausdorff distance, mm (Infinity when one mask is empty). */
  hd95: number;
  sensitivity: number;
  precision: number;
  specificity: number;
  /** Per-case F1 (= DSC for binary masks). */
  f1: number;
  accuracy: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  predVolumeMl: number;
  refVolumeMl: number;
  /** Surface areas on the corner grid, mm^2. */
  predSurfaceMm2: number;
  refSurfaceMm2: number;
  /** True when both masks are empty (DSC, NSD, HD95, sensitivity, precision are then NaN). */
  emptyBoth: boolean;
}

export interface CaseMetricsOptions {
  /** NSD tolerance in mm; 3 mm (infection, lesions) by default, 1 mm is used for lungs. */
  toleranceMm?: number;
  /** Names the case (or file) in error messages. */
  caseName?: string;
  /** Voxels left out (the reference's ignore label; see the file comment). */
  ignore?: BinaryMask;
}

export const CASE_METRICS_DEFAULTS = { toleranceMm: 3 } as const;

/** The mask with the ignored voxels set to background. */
function withoutIgnored(mask: BinaryMask, ignore: BinaryMask): BinaryMask {
  const data = new Uint8Array(mask.data.length);
  for (let i = 0; i < data.length; i++) data[i] = mask.data[i] !== 0 && ignore.data[i] === 0 ? 1 : 0;
  return { data, shape: mask.shape };
}

export function caseMetrics(
  pred: BinaryMask,
  ref: BinaryMask,
  spacingMm: readonly number[],
  options: CaseMetricsOptions = {},
): CaseMetrics {
  const toleranceMm = options.toleranceMm ?? CASE_METRICS_DEFAULTS.toleranceMm;
  const context = options.caseName ?? 'caseMetrics';
  if (!(Number.isFinite(toleranceMm) && toleranceMm >= 0)) {
    throw new InputError(`${context}: NSD tolerance must be a finite number of mm >= 0, got ${toleranceMm}`);
  }
  checkMaskPair(pred, ref, context);
  const spacing = checkSpacing(spacingMm, context);
  const ignore = options.ignore;
  const counts = confusion(pred, ref, ignore);
  const distances = ignore === undefined ? surfaceDistances(pred, ref, spacing) : surfaceDistances(withoutIgnored(pred, ignore), withoutIgnored(ref, ignore), spacing);
  const voxelMl = voxelVolumeMl(spacing, context);
  return {
    dsc: diceFromCounts(counts),
    nsd: surfaceDiceFromDistances(distances, toleranceMm),
    toleranceMm,
    hd95: robustHausdorffFromDistances(distances, 95),
    sensitivity: sensitivityFromCounts(counts),
    precision: precisionFromCounts(counts),
    specificity: specificityFromCounts(counts),
    f1: f1FromCounts(counts),
    accuracy: accuracyFromCounts(counts),
    ...counts,
    predVolumeMl: (counts.tp + counts.fp) * voxelMl,
    refVolumeMl: (counts.tp + counts.fn) * voxelMl,
    predSurfaceMm2: totalArea(distances.areasPred),
    refSurfaceMm2: totalArea(distances.areasRef),
    emptyBoth: counts.tp + counts.fp + counts.fn === 0,
  };
}
