/**
 * nnU-Net v2's plans.json (nnunetv2 experiment_planning, plans_handling/plans_handler.py) as zod
 * schemas of the keys lesionseg reads, with types inferred. nnU-Net writes more keys than we read
 * (experiment_planner_used, plans_per_stage of older versions, keys of custom planners), and a
 * configuration may set only what it changes of the one it `inherits_from`: every object here lets
 * unknown keys through, and a configuration is checked after its inheritance is resolved.
 * What we read but would build differently (another architecture, dropout, other resampling...)
 * is the converter's to refuse (src/data/nnunet_plans.ts); here only the shapes and types.
 */
import { addIssue, ALWAYS, integer, z } from '../../core/index.js';

const positiveInt = integer().positive();
const positive = z.number().positive().finite();
const triple = <T extends z.ZodType<number>>(item: T) => z.tuple([item, item, item]);

/** [0, 1, 2] in some order. */
const Permutation = triple(integer().min(0).max(2)).superRefine((axes, ctx) => {
  if (Array.isArray(axes) && new Set(axes).size !== 3) addIssue(ctx, 'bad-value', `must be a permutation of [0, 1, 2], got ${JSON.stringify(axes)}`);
}, ALWAYS);

const IntensityProperties = z.looseObject({
  mean: z.number().optional(),
  median: z.number().optional(),
  std: z.number().optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  percentile_00_5: z.number().optional(),
  percentile_99_5: z.number().optional(),
});

/** The top level of plans.json; each configuration is checked on its own, once resolved. */
export const NnunetPlansSchema = z.looseObject(
  {
    dataset_name: z.string().optional(),
    plans_name: z.string().optional(),
    configurations: z.record(z.string(), z.looseObject({ inherits_from: z.string().optional() }), { error: 'not nnU-Net v2 plans: no "configurations" object' }),
    transpose_forward: Permutation,
    transpose_backward: Permutation,
    original_median_spacing_after_transp: triple(positive).optional(),
    original_median_shape_after_transp: triple(positive).optional(),
    image_reader_writer: z.string().optional(),
    label_manager: z.string().optional(),
    foreground_intensity_properties_per_channel: z.record(z.string(), IntensityProperties).optional(),
  },
  { error: 'plans.json must hold a JSON object' },
);
export type NnunetPlansJson = z.output<typeof NnunetPlansSchema>;

/** `resampling_fn_*_kwargs`: nnU-Net's resample_data_or_seg_to_shape arguments. */
const ResamplingKwargs = z.looseObject({
  is_seg: z.boolean().optional(),
  order: integer().min(0).max(5).optional(),
  order_z: integer().min(0).max(5).optional(),
  force_separate_z: z.boolean().nullable().optional(),
});

/** dynamic-network-architectures' constructor: its class and keyword arguments. */
const Architecture = z.looseObject({
  network_class_name: z.string(),
  arch_kwargs: z.looseObject({}),
  _kw_requires_import: z.array(z.string()).optional(),
});

/** One configuration (3d_fullres, ...) with `inherits_from` resolved. */
export const NnunetConfigurationSchema = z.looseObject({
  data_identifier: z.string().optional(),
  preprocessor_name: z.string().optional(),
  batch_size: positiveInt.optional(),
  patch_size: z.array(positiveInt).min(2).max(3),
  /** 3 entries; a 2D configuration's 2 (in-plane: it keeps each case's slice spacing). */
  median_image_size_in_voxels: z.array(positive).min(2).max(3),
  spacing: z.array(positive).min(2).max(3),
  normalization_schemes: z.array(z.string()),
  use_mask_for_norm: z.array(z.boolean()),
  resampling_fn_data: z.string().optional(),
  resampling_fn_seg: z.string().optional(),
  resampling_fn_probabilities: z.string().optional(),
  resampling_fn_data_kwargs: ResamplingKwargs.optional(),
  resampling_fn_seg_kwargs: ResamplingKwargs.optional(),
  resampling_fn_probabilities_kwargs: ResamplingKwargs.optional(),
  architecture: Architecture,
  batch_dice: z.boolean(),
  previous_stage: z.string().optional(),
  next_stage: z.union([z.string(), z.array(z.string())]).optional(),
});
export type NnunetConfigurationJson = z.output<typeof NnunetConfigurationSchema>;
