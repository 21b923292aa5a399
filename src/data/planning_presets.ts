/**
 * Planning presets as data: how each one chooses the patch, the batch and the network width.
 * - nnunet: nnU-Net's own rule (8 GB target: initial patch of 256^3 voxels shaped by the spacing,
 *   shrunk while the VRAM proxy exceeds 560e6; batch from the remaining headroom, capped at 5 % of
 *   the dataset, at least 2; features 32 .. 320);
 * - paper: the paper's fixed patch 50x160x192 and batch 2; the pooling per axis is what fits that
 *   patch (at most as many halvings as the size has factors of 2);
 * - cpu: small enough to train on 2 cores: patch under a voxel budget of 32*96*96, features
 *   16 .. 256, at most 6 stages, batch 2;
 * - tiny: for tests: budget 16*32*32, features 4 .. 32, at most 4 stages, batch 2.
 *
 * The 2d configuration (`twoD`) plans a patch of one slice: nnunet as nnU-Net does (initial patch
 * of 2048^2 pixels, VRAM reference 85e6 at batch 12, features 32 .. 512); cpu and tiny with a
 * pixel budget (cpu 128*128 at nnU-Net's 2D reference batch 12, tiny 32*32 at batch 2) and their
 * own width; paper plans no 2d (its patch is the paper's 3D one).
 */
import { InputError } from '../core/index.js';
import type { Triple } from './planning_topology.js';

export type PatchRule =
  /** nnU-Net: initial patch of `initialVoxels`, shrink while the VRAM proxy exceeds the reference. */
  | { kind: 'vram'; initialVoxels: number; referenceValue: number; referenceBatch: number; gpuMemoryGb: number }
  /** Initial patch of `budgetVoxels`, shrink while the patch has more voxels than that. */
  | { kind: 'voxels'; budgetVoxels: number }
  /** A fixed patch [z, y, x] (in network axis order). */
  | { kind: 'fixed'; patchSize: Triple };

/** How a preset plans the 2d configuration (the patch and batch rules on the slice's two axes). */
export interface TwoDRule {
  patch: Exclude<PatchRule, { kind: 'fixed' }>;
  batch: BatchRule;
  maxFeatures: number;
}

export type BatchRule = { kind: 'nnunet'; minBatch: number; maxDatasetFraction: number } | { kind: 'fixed'; batchSize: number };

export interface PlanPreset {
  name: PresetName;
  patch: PatchRule;
  batch: BatchRule;
  baseFeatures: number;
  maxFeatures: number;
  maxStages: number;
  minFeatureMapSize: number;
  /**
   * Foreground intensities drawn (with replacement) over all cases for the fingerprint. nnU-Net
   * draws 1e8; the CPU presets draw fewer because the statistics (mean, std, 0.5/99.5 percentiles)
   * are already stable at 1e6 and 1e8 draws cost ~6 s and ~400 MB even for tiny datasets.
   */
  fingerprintSamples: number;
  /** The 2d configuration's rules, or null: the preset plans no 2d. */
  twoD: TwoDRule | null;
}

export type PresetName = 'nnunet' | 'paper' | 'cpu' | 'tiny';

/** nnU-Net's 3D reference value (UNet_reference_val_3d) for its 8 GB reference GPU at batch 2. */
const NNUNET_REFERENCE_3D = 560_000_000;
const NNUNET_REFERENCE_GB = 8;
/** nnU-Net's 2D reference value (UNet_reference_val_2d) at batch 12 (UNet_reference_val_corresp_bs_2d). */
const NNUNET_REFERENCE_2D = 85_000_000;

export const PRESETS: Readonly<Record<PresetName, PlanPreset>> = Object.freeze({
  nnunet: {
    name: 'nnunet',
    fingerprintSamples: 1e8,
    patch: { kind: 'vram', initialVoxels: 256 ** 3, referenceValue: NNUNET_REFERENCE_3D, referenceBatch: 2, gpuMemoryGb: 8 },
    batch: { kind: 'nnunet', minBatch: 2, maxDatasetFraction: 0.05 },
    baseFeatures: 32,
    maxFeatures: 320,
    maxStages: 999999,
    minFeatureMapSize: 4,
    twoD: {
      patch: { kind: 'vram', initialVoxels: 2048 ** 2, referenceValue: NNUNET_REFERENCE_2D, referenceBatch: 12, gpuMemoryGb: 8 },
      batch: { kind: 'nnunet', minBatch: 2, maxDatasetFraction: 0.05 },
      maxFeatures: 512,
    },
  },
  paper: {
    name: 'paper',
    fingerprintSamples: 1e8,
    patch: { kind: 'fixed', patchSize: [50, 160, 192] },
    batch: { kind: 'fixed', batchSize: 2 },
    baseFeatures: 32,
    maxFeatures: 320,
    maxStages: 999999,
    minFeatureMapSize: 4,
    twoD: null,
  },
  cpu: {
    name: 'cpu',
    fingerprintSamples: 1e7,
    patch: { kind: 'voxels', budgetVoxels: 32 * 96 * 96 },
    batch: { kind: 'fixed', batchSize: 2 },
    baseFeatures: 16,
    maxFeatures: 256,
    maxStages: 6,
    minFeatureMapSize: 4,
    twoD: { patch: { kind: 'voxels', budgetVoxels: 128 * 128 }, batch: { kind: 'fixed', batchSize: 12 }, maxFeatures: 256 },
  },
  tiny: {
    name: 'tiny',
    fingerprintSamples: 1e6,
    patch: { kind: 'voxels', budgetVoxels: 16 * 32 * 32 },
    batch: { kind: 'fixed', batchSize: 2 },
    baseFeatures: 4,
    maxFeatures: 32,
    maxStages: 4,
    minFeatureMapSize: 4,
    twoD: { patch: { kind: 'voxels', budgetVoxels: 32 * 32 }, batch: { kind: 'fixed', batchSize: 2 }, maxFeatures: 32 },
  },
});

export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** The preset called `name`; an unknown name lists the valid ones. */
export function getPreset(name: string): PlanPreset {
  if (Object.hasOwn(PRESETS, name)) return PRESETS[name as PresetName];
  throw new InputError(`unknown preset '${name}': use one of ${PRESET_NAMES.join(', ')}`, { code: 'unknown-preset' });
}

/** The VRAM reference for a GPU memory target (nnU-Net scales its 8 GB reference linearly). */
export function vramReference(rule: Extract<PatchRule, { kind: 'vram' }>): number {
  return rule.referenceValue * (rule.gpuMemoryGb / NNUNET_REFERENCE_GB);
}
