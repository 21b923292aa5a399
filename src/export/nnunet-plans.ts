/**
 * Our plan as nnU-Net v2's plans.json with one configuration, the plan's (3d_fullres, 2d or
 * 3d_lowres: its name; a 2d one with its slice axis dropped from patch, spacing, median shape,
 * kernels and strides, Conv2d and InstanceNorm2d, as nnU-Net's planner writes it), and dataset.json: the
 * inverse of data's planFromNnunet (which reads the files this writes back into the same
 * preprocessing and network, a test checks). Spacings, shapes and patch are already in network
 * axis order in both. CT statistics go into `foreground_intensity_properties_per_channel` (what
 * nnU-Net's CTNormalization reads), the resampling settings into the kwargs of
 * `resample_data_or_seg_to_shape`, the network into `architecture` (the registry's
 * dynamic-network-architectures class and arch_kwargs, src/models/nnunetArchitecture.ts; deep
 * supervision left to the trainer as nnU-Net does). The image reader is NibabelIO: it reads NIfTI as lesionseg does (no reorienting).
 */
import { configurationName, type Plan, type PlanDataset } from '../data/index.js';
import { LOGITS_RESAMPLING } from '../infer/index.js';
import { nnunetArchitectureOf, type UNetConfig } from '../models/index.js';
import type { ExportArchitecture } from './model.js';

type Resampling = Plan['configuration']['resampling']['data'];

/** The plans' identifier (nnU-Net folders are `<trainer>__<plans>__<configuration>`). */
export const EXPORT_PLANS_NAME = 'nnUNetPlans';
/** The configuration a plan exports as (nnU-Net's name: the plan's own). */
export function exportConfiguration(plan: Plan): string {
  return configurationName(plan.configuration);
}

const SCHEME_NAMES: Readonly<Record<string, string>> = {
  ct: 'CTNormalization',
  zscore: 'ZScoreNormalization',
  none: 'NoNormalization',
  rescale_to_0_1: 'RescaleTo01Normalization',
  rgb_to_0_1: 'RGBTo01Normalization',
};

function transposed<T>(values: readonly T[], forward: readonly number[]): T[] {
  return forward.map((axis) => values[axis]!);
}

function resamplingKwargs(settings: Resampling, isSeg: boolean): Record<string, unknown> {
  return {
    is_seg: isSeg,
    order: settings.order,
    order_z: settings.orderZ,
    force_separate_z: settings.forceSeparateZ,
    // nnU-Net's default threshold is 3 (ANISO_THRESHOLD); name it only when ours differs.
    ...(settings.anisotropyThreshold !== 3 ? { separate_z_anisotropy_threshold: settings.anisotropyThreshold } : {}),
  };
}

export interface NnunetFiles {
  plans: Record<string, unknown>;
  datasetJson: Record<string, unknown>;
}

/** plans.json and dataset.json for the model (`dataset`: the label space of its head). */
export function nnunetPlansFromPlan(plan: Plan, architecture: ExportArchitecture, config: UNetConfig, dataset: PlanDataset): NnunetFiles {
  const c = plan.configuration;
  const name = exportConfiguration(plan);
  const dims = c.spatialDims === 2 ? 2 : 3;
  const spatial = (values: readonly number[]): number[] => (dims === 2 ? values.slice(1) : [...values]);
  const forward = c.transpose.forward;
  const channels = Object.keys(dataset.channelNames).sort((a, b) => Number(a) - Number(b));
  const datasetIndex = plan.datasets.findIndex((d) => d.name === dataset.name);
  const fingerprintStats = plan.fingerprint.foregroundIntensityPropertiesPerChannel;
  const intensities: Record<string, unknown> = {};
  channels.forEach((channel, i) => {
    const stats = fingerprintStats[i];
    const ct = c.normalization[i]?.ct;
    if (stats === undefined && ct === undefined) return;
    // CTNormalization reads mean, std and the two percentiles; ours are those of the plan's normalisation.
    intensities[channel] = {
      max: stats?.max ?? 0,
      mean: ct?.mean ?? stats?.mean ?? 0,
      median: stats?.median ?? 0,
      min: stats?.min ?? 0,
      percentile_00_5: ct?.percentile_00_5 ?? stats?.percentile_00_5 ?? 0,
      percentile_99_5: ct?.percentile_99_5 ?? stats?.percentile_99_5 ?? 0,
      std: ct?.std ?? stats?.std ?? 0,
    };
  });
  const configuration = {
    data_identifier: `${EXPORT_PLANS_NAME}_${name}`,
    preprocessor_name: 'DefaultPreprocessor',
    batch_size: c.batchSize,
    patch_size: spatial(c.patchSize),
    median_image_size_in_voxels: spatial(c.medianShape),
    spacing: spatial(c.targetSpacing),
    normalization_schemes: c.normalization.map((n) => SCHEME_NAMES[n.scheme] ?? n.scheme),
    use_mask_for_norm: c.normalization.map((n) => n.useMaskForNorm),
    resampling_fn_data: 'resample_data_or_seg_to_shape',
    resampling_fn_seg: 'resample_data_or_seg_to_shape',
    resampling_fn_data_kwargs: resamplingKwargs(c.resampling.data, false),
    resampling_fn_seg_kwargs: resamplingKwargs(c.resampling.segmentation, true),
    resampling_fn_probabilities: 'resample_data_or_seg_to_shape',
    resampling_fn_probabilities_kwargs: resamplingKwargs(LOGITS_RESAMPLING, false),
    architecture: nnunetArchitectureOf(architecture, config, dims),
    batch_dice: c.batchDice,
  };
  const plans = {
    dataset_name: dataset.name,
    plans_name: EXPORT_PLANS_NAME,
    original_median_spacing_after_transp: transposed(plan.fingerprint.medianSpacing, forward),
    original_median_shape_after_transp: transposed(plan.fingerprint.medianShapeAfterCrop, forward),
    image_reader_writer: 'NibabelIO',
    transpose_forward: [...forward],
    transpose_backward: [...c.transpose.backward],
    configurations: { [name]: configuration },
    experiment_planner_used: `lesionseg (${plan.preset} preset)`,
    label_manager: 'LabelManager',
    foreground_intensity_properties_per_channel: intensities,
  };
  const datasetJson = {
    channel_names: Object.fromEntries(channels.map((channel) => [channel, dataset.channelNames[channel]!])),
    labels: { ...dataset.labels },
    numTraining: dataset.numTraining,
    file_ending: dataset.fileEnding,
    name: dataset.name,
    ...(datasetIndex > 0 ? { description: `dataset ${datasetIndex} of a lesionseg plan over ${plan.datasets.map((d) => d.name).join(', ')}` } : {}),
  };
  return { plans, datasetJson };
}
