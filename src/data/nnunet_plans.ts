/**
 * nnU-Net v2's plans.json (nnunetv2 utilities/plans_handling/plans_handler.py) as our Plan: one
 * configuration (3d_fullres; inheritance through `inherits_from` resolved as PlansManager does)
 * becomes the preprocessing (transpose, target spacing, normalisation schemes with the pooled CT
 * statistics of `foreground_intensity_properties_per_channel`, resampling orders), the patch
 * and the network (`architecture.network_class_name` + `arch_kwargs`, read by the architecture
 * registry's nnU-Net part, src/models/nnunetArchitecture.ts). Everything that would make our
 * preprocessing or network differ from nnU-Net's is refused, each problem named with its JSON
 * path in one ValidationError (with the problems of shape and type that the zod schemas of
 * src/io/dataset/nnunet-plans-schema.ts find): architectures the registry does not build (by class name), dropout, conv_bias false, norms other than affine InstanceNorm3d, other
 * resampling functions or normalisation schemes, reorienting image readers. Region-based labels
 * come out as the regions (one sigmoid head each) and the label each head writes.
 * A `2d` configuration (conv_op Conv2d) becomes a plan with spatialDims 2 (patch [1, y, x], its
 * network built with kernel depth 1); a cascade stage (`previous_stage`) records it as
 * previousStage and its network takes one more input channel per foreground label.
 * The network comes out as the registry's name and the UNetConfig its builder takes.
 */
import { InputError, parseJson, ValidationError, type InputErrorCode, type Issue } from '../core/index.js';
import { NnunetConfigurationSchema, NnunetPlansSchema, nnunetRegionsOf, segmentationClassCount, type DatasetJson, type NnunetRegions } from '../io/index.js';
import { networkFromNnunet, nnunetSpatialDims, ownConfigFields, type ArchitectureConfig, type ArchitectureName } from '../models/index.js';
import type { NormalizationScheme } from './normalize.js';
import { transposeTriple } from './planning.js';
import type { ChannelNormalizationPlan, NetworkPlan, Plan } from './planning_schema.js';
import type { Triple } from './planning_topology.js';
import type { ResampleSettings } from './resample.js';

/** The network of an nnU-Net configuration: a registry name and the config it builds (deep supervision off). */
export interface NnunetNetwork {
  name: ArchitectureName;
  config: ArchitectureConfig;
}

export interface NnunetPlanResult {
  plan: Plan;
  network: NnunetNetwork;
  configuration: string;
  /** Region-based models: the regions and the label each head writes (null: softmax over labels). */
  regions: NnunetRegions | null;
}

const SCHEMES: Readonly<Record<string, NormalizationScheme>> = {
  CTNormalization: 'ct',
  ZScoreNormalization: 'zscore',
  NoNormalization: 'none',
  RescaleTo01Normalization: 'rescale_to_0_1',
  RGBTo01Normalization: 'rgb_to_0_1',
};

const READERS = ['NibabelIO', 'SimpleITKIO'];
const RESAMPLING_FUNCTION = 'resample_data_or_seg_to_shape';
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isPositiveInt = (value: unknown): value is number => Number.isInteger(value) && (value as number) > 0;

/** The longest `inherits_from` chain followed (nnU-Net's own plans chain one or two deep). */
export const MAX_INHERITANCE_DEPTH = 16;

/**
 * The configuration's dict with `inherits_from` resolved (parent first, child keys win), followed
 * in a loop: a chain that comes back to a configuration, or one longer than
 * MAX_INHERITANCE_DEPTH, is refused naming the chain. Only the plans' own keys name configurations
 * ('constructor' or '__proto__' are not configurations of every plan).
 */
function resolveConfiguration(configurations: Record<string, unknown>, name: string, file: string): Record<string, unknown> {
  const chain: string[] = [];
  const layers: Record<string, unknown>[] = [];
  let current: string = name;
  for (;;) {
    const own = Object.hasOwn(configurations, current) ? configurations[current] : undefined;
    if (!isRecord(own)) {
      const via = chain.length > 0 ? ` (inherited by ${chain.join(' <- ')})` : '';
      throw new InputError(`configuration '${current}'${via} is not in the plans (they hold ${Object.keys(configurations).join(', ')})`, { file, code: 'unknown-configuration' });
    }
    chain.push(current);
    layers.push(own);
    const parent = own.inherits_from;
    if (parent === undefined || parent === null) break;
    if (typeof parent !== 'string') throw new InputError(`configurations.${current}.inherits_from must name a configuration, got ${JSON.stringify(parent)}`, { file, code: 'bad-plan' });
    if (chain.includes(parent)) throw new InputError(`configuration inheritance loops: ${[...chain, parent].join(' -> ')}`, { file, code: 'bad-plan' });
    if (chain.length >= MAX_INHERITANCE_DEPTH) {
      throw new InputError(`configuration inheritance is deeper than ${MAX_INHERITANCE_DEPTH}: ${[...chain.slice(0, 4), '...', ...chain.slice(-2), parent].join(' -> ')}`, { file, code: 'bad-plan' });
    }
    current = parent;
  }
  return Object.assign({}, ...layers.reverse()) as Record<string, unknown>;
}

/** Convert plans.json + dataset.json to our Plan and network for `configuration` (default 3d_fullres). */
export function planFromNnunet(plansJson: unknown, datasetJson: DatasetJson, options: { plansFile: string; configuration?: string; datasetJsonFile?: string }): NnunetPlanResult {
  const file = options.plansFile;
  const name = options.configuration ?? '3d_fullres';
  const issues: Issue[] = [];
  const report = (path: string, message: string, code: InputErrorCode = 'unsupported'): void => {
    issues.push({ file, path, code, message });
  };
  if (!isRecord(plansJson) || !isRecord(plansJson.configurations)) throw new InputError('not nnU-Net v2 plans: no "configurations" object', { file, code: 'bad-plan' });
  // Shapes and types first (src/io/dataset/nnunet-plans-schema.ts), then what we would build differently.
  const top = parseJson(NnunetPlansSchema, plansJson, file);
  if (!top.ok) issues.push(...top.issues);
  const c = resolveConfiguration(plansJson.configurations, name, file);
  const at = `configurations.${name}`;
  // 2d: a 2D network run slice by slice (its patch, spacing and median shape have 2 entries, in-plane).
  const dims = nnunetSpatialDims(c.architecture);
  const previousStage = typeof c.previous_stage === 'string' ? c.previous_stage : null;
  if (previousStage !== null && !isRecord(plansJson.configurations[previousStage])) {
    report(`${at}.previous_stage`, `previous_stage '${previousStage}' is not a configuration of these plans`, 'bad-value');
  }

  const parsed = parseJson(NnunetConfigurationSchema, c, file);
  if (!parsed.ok) issues.push(...parsed.issues.map((issue) => ({ ...issue, path: issue.path === '' ? at : `${at}.${issue.path}` })));
  const configuration = parsed.ok ? parsed.value : null;
  const plans = top.ok ? top.value : null;
  // Placeholders where the schema found a problem: the conversion goes on only to report the others.
  // The patch is read from the configuration as given, so that its divisibility is checked also when another key is malformed.
  const givenPatch = Array.isArray(c.patch_size) && c.patch_size.length === dims && c.patch_size.every(isPositiveInt) ? (c.patch_size as number[]) : null;
  if (Array.isArray(c.patch_size) && givenPatch === null) report(`${at}.patch_size`, `patch_size needs ${dims} positive integers for a ${dims}D network`, 'bad-value');
  for (const key of ['spacing', 'median_image_size_in_voxels'] as const) {
    if (configuration !== null && configuration[key].length !== dims) report(`${at}.${key}`, `${key} needs ${dims} entries for a ${dims}D network`, 'bad-value');
  }
  // A 2D configuration's entries are in-plane: its patch is one slice deep and it keeps each case's slice spacing (the 1 here is not used).
  const lift = (values: readonly number[] | undefined): Triple | null => (values === undefined || values.length !== dims ? null : ((dims === 2 ? [1, ...values] : [...values]) as Triple));
  const patchSize: Triple | null = givenPatch === null ? null : lift(givenPatch);
  const targetSpacing: Triple = lift(configuration?.spacing) ?? [1, 1, 1];
  const medianShape: Triple = lift(configuration?.median_image_size_in_voxels) ?? [1, 1, 1];
  const forward: Triple = plans?.transpose_forward ?? [0, 1, 2];
  const backward: Triple = plans?.transpose_backward ?? [0, 1, 2];
  if (c.preprocessor_name !== undefined && c.preprocessor_name !== 'DefaultPreprocessor') report(`${at}.preprocessor_name`, `preprocessor '${String(c.preprocessor_name)}' is not supported (DefaultPreprocessor is)`);
  if (plansJson.image_reader_writer !== undefined && !READERS.includes(plansJson.image_reader_writer as string)) {
    report('image_reader_writer', `image reader '${String(plansJson.image_reader_writer)}' is not supported (${READERS.join(', ')} read images as lesionseg does; a reorienting reader would change the arrays)`);
  }
  if (plansJson.label_manager !== undefined && plansJson.label_manager !== 'LabelManager') report('label_manager', `label manager '${String(plansJson.label_manager)}' is not supported`);
  // Region-based models (sigmoid heads, one per region) are read as nnU-Net's LabelManager reads them.
  const regions = nnunetRegionsOf(datasetJson, options.datasetJsonFile ?? 'dataset.json');

  const channels = Object.keys(datasetJson.channel_names).sort((a, b) => Number(a) - Number(b));
  const schemes = Array.isArray(c.normalization_schemes) ? c.normalization_schemes : [];
  const masks = Array.isArray(c.use_mask_for_norm) ? c.use_mask_for_norm : [];
  if (schemes.length !== channels.length || masks.length !== channels.length) {
    report(`${at}.normalization_schemes`, `normalization_schemes and use_mask_for_norm need one entry per channel of dataset.json (${channels.length})`, 'bad-value');
  }
  const intensities = isRecord(plansJson.foreground_intensity_properties_per_channel) ? plansJson.foreground_intensity_properties_per_channel : {};
  const normalization: ChannelNormalizationPlan[] = channels.map((channel, i) => {
    const schemeName = String(schemes[i]);
    const scheme = SCHEMES[schemeName];
    if (scheme === undefined) report(`${at}.normalization_schemes.${i}`, `normalisation '${schemeName}' is not supported (${Object.keys(SCHEMES).join(', ')})`);
    const entry: ChannelNormalizationPlan = { channel: datasetJson.channel_names[channel]!, scheme: scheme ?? 'none', useMaskForNorm: masks[i] === true };
    if (scheme === 'ct') {
      const stats = intensities[channel];
      const value = (key: string): number => {
        const v = isRecord(stats) ? stats[key] : undefined;
        if (typeof v !== 'number' || !Number.isFinite(v)) report(`foreground_intensity_properties_per_channel.${channel}.${key}`, `CT normalisation needs ${key} of channel ${channel}`, 'missing-field');
        return typeof v === 'number' ? v : 0;
      };
      entry.ct = { mean: value('mean'), std: value('std'), percentile_00_5: value('percentile_00_5'), percentile_99_5: value('percentile_99_5') };
    }
    return entry;
  });

  const resampling = (key: string, segmentation: boolean): ResampleSettings => {
    if (c[`resampling_fn_${key}`] !== RESAMPLING_FUNCTION) report(`${at}.resampling_fn_${key}`, `resampling function '${String(c[`resampling_fn_${key}`])}' is not supported (${RESAMPLING_FUNCTION} is)`);
    const kwargs = isRecord(c[`resampling_fn_${key}_kwargs`]) ? (c[`resampling_fn_${key}_kwargs`] as Record<string, unknown>) : {};
    const order = (k: string, fallback: number): 0 | 1 | 3 => {
      const v = kwargs[k] ?? fallback;
      if (v !== 0 && v !== 1 && v !== 3) report(`${at}.resampling_fn_${key}_kwargs.${k}`, `interpolation order ${JSON.stringify(v)} is not supported (0, 1, 3)`);
      return (v === 0 || v === 1 || v === 3 ? v : 0) as 0 | 1 | 3;
    };
    const force = kwargs.force_separate_z ?? null;
    return { order: order('order', segmentation ? 1 : 3), orderZ: order('order_z', 0), forceSeparateZ: force as boolean | null, anisotropyThreshold: 3 };
  };
  const data = resampling('data', false);
  const segmentation = resampling('seg', true);
  const probabilities = resampling('probabilities', false);
  if (probabilities.order !== 1 || probabilities.orderZ !== 0 || probabilities.forceSeparateZ !== null) {
    report(`${at}.resampling_fn_probabilities_kwargs`, 'logits are exported with order 1, order_z 0 and force_separate_z null (nnU-Net\'s default); other settings are not supported');
  }

  // The cascade's network also takes the previous stage's segmentation, one channel per foreground label (nnU-Net's determine_num_input_channels).
  const numClasses = segmentationClassCount(datasetJson.labels);
  const inputChannels = channels.length + (previousStage === null ? 0 : numClasses - 1);
  const network = networkOf(c.architecture, `${at}.architecture`, report, inputChannels, regions?.regions.length ?? numClasses, givenPatch);
  if (issues.length > 0) throw new ValidationError(issues, { file });

  const datasetName = typeof plansJson.dataset_name === 'string' ? plansJson.dataset_name : datasetJson.name ?? 'nnU-Net dataset';
  const originalSpacing = Array.isArray(plansJson.original_median_spacing_after_transp) ? transposeTriple(plansJson.original_median_spacing_after_transp as number[], backward) : targetSpacing;
  const originalShape = Array.isArray(plansJson.original_median_shape_after_transp) ? transposeTriple(plansJson.original_median_shape_after_transp as number[], backward) : medianShape;
  const labels: Record<string, number> = {};
  // A region's name labels the value its head writes (regions_class_order).
  for (const [label, value] of Object.entries(datasetJson.labels)) {
    const head = regions === null ? -1 : regions.names.indexOf(label);
    labels[label] = head >= 0 ? regions!.classOrder[head]! : Array.isArray(value) ? 0 : (value as number);
  }
  const plan: Plan = {
    version: 1,
    preset: 'nnunet',
    datasets: [{ name: datasetName, labels, channelNames: { ...datasetJson.channel_names }, numTraining: datasetJson.numTraining, fileEnding: datasetJson.file_ending }],
    fingerprint: {
      numCases: datasetJson.numTraining,
      medianSpacing: originalSpacing,
      medianShapeAfterCrop: originalShape,
      medianRelativeSizeAfterCropping: 1,
      foregroundIntensityPropertiesPerChannel: channels.map((channel) => intensityOf(intensities[channel])),
      intensitySampling: { samplesPerCase: 0, seed: 1234, generator: `nnU-Net v2 plans ${String(plansJson.plans_name ?? '')}`.trim() },
      cases: [],
    },
    configuration: {
      patchSize: patchSize!,
      ...(dims === 2 ? { spatialDims: 2 as const } : {}),
      ...(previousStage !== null ? { previousStage } : {}),
      batchSize: isPositiveInt(c.batch_size) ? c.batch_size : 2,
      targetSpacing,
      medianShape,
      transpose: { forward, backward },
      normalization,
      resampling: { data, segmentation },
      network: network.plan,
      deepSupervision: true,
      batchDice: configuration!.batch_dice,
      vramEstimate: 0,
    },
  };
  return { plan, network: network.network, configuration: name, regions };
}

function intensityOf(value: unknown): Plan['fingerprint']['foregroundIntensityPropertiesPerChannel'][number] {
  const get = (key: string): number => (isRecord(value) && typeof value[key] === 'number' ? (value[key] as number) : 0);
  return { mean: get('mean'), median: get('median'), std: get('std'), min: get('min'), max: get('max'), percentile_00_5: get('percentile_00_5'), percentile_99_5: get('percentile_99_5') };
}

/** arch_kwargs -> our network plan and builder config (the registry's reader), reporting everything we would build differently. */
function networkOf(
  architecture: unknown,
  at: string,
  report: (path: string, message: string, code?: InputErrorCode) => void,
  inputChannels: number,
  numClasses: number,
  patchSize: readonly number[] | null,
): { plan: NetworkPlan; network: NnunetNetwork } {
  const network = networkFromNnunet(architecture, { at, report, inputChannels, numClasses, patchSize });
  const { config } = network;
  const plan: NetworkPlan = {
    architecture: network.name as NetworkPlan['architecture'],
    nStages: config.featuresPerStage.length,
    featuresPerStage: config.featuresPerStage,
    kernelSizes: config.kernelSizes as Triple[],
    strides: config.strides as Triple[],
    nConvPerStage: config.nConvPerStage!,
    nConvPerStageDecoder: config.nConvPerStageDecoder!,
    ...ownConfigFields(network.name, config),
    convBias: true,
    norm: { kind: 'instance', eps: config.normEps!, affine: true },
    nonlin: { kind: 'leaky_relu', negativeSlope: config.negativeSlope! },
  };
  return { plan, network };
}
