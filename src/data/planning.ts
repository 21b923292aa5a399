/**
 * Experiment planning, as nnU-Net's ExperimentPlanner does it (NNUNET.md section 1), of 3d_fullres
 * and, like nnU-Net's plan_experiment, 2d, 3d_lowres and 3d_cascade_fullres (plan.configurations):
 * target spacing (median, with the anisotropy rule), transpose (lowest resolution axis first),
 * median shape at the target spacing, then per preset the patch size, topology and batch size,
 * and the normalisation per channel, and whether the loss uses batch Dice (nnU-Net's rule,
 * planning_batch_dice.ts). One plan may cover several datasets (pooled fingerprint), so that
 * pre-trained weights fit the datasets they are transferred to. The class count excludes each
 * dataset's ignore label (no output channel for it).
 */
import { InputError, type Shape3 } from '../core/index.js';
import { segmentationClassCount } from '../io/index.js';
import { DEFAULT_ARCHITECTURE } from '../models/index.js';
import { searchLowres } from './planning_batch_dice.js';
import type { DatasetFingerprint } from './fingerprint.js';
import { normalizationForChannel } from './normalize.js';
import { getPreset, vramReference, type PatchRule, type PlanPreset, type PresetName } from './planning_presets.js';
import {
  PLAN_VERSION,
  type ChannelNormalizationPlan,
  type NetworkPlan,
  type Plan,
  type PlanConfiguration,
} from './planning_schema.js';
import {
  convFeatureMapSize,
  featuresPerStage,
  poolAndConvPropsNd,
  type Topology,
  type TopologyLimits,
  type TopologyNd,
  type Triple,
} from './planning_topology.js';
import { computeNewShape, DATA_RESAMPLING, roundHalfEven, SEGMENTATION_RESAMPLING } from './resample.js';
import { median, percentile } from './fingerprint_stats.js';

/** nnU-Net ANISO_THRESHOLD. */
export const ANISOTROPY_THRESHOLD = 3;

/** nnU-Net `determine_fullres_target_spacing` ([z, y, x] spacings and cropped shapes per case). */
export function determineTargetSpacing(spacings: readonly Shape3[], shapesAfterCrop: readonly Shape3[]): Triple {
  const target = [0, 1, 2].map((axis) => median(spacings.map((s) => s[axis]!))) as Triple;
  const targetSize = [0, 1, 2].map((axis) => median(shapesAfterCrop.map((s) => s[axis]!)));
  let worst = 0;
  for (const axis of [1, 2]) if (target[axis]! > target[worst]!) worst = axis;
  const others = [0, 1, 2].filter((axis) => axis !== worst);
  const otherSpacingMax = Math.max(...others.map((axis) => target[axis]!));
  const otherSizeMin = Math.min(...others.map((axis) => targetSize[axis]!));
  const anisotropicSpacing = target[worst]! > ANISOTROPY_THRESHOLD * otherSpacingMax;
  const anisotropicVoxels = targetSize[worst]! * ANISOTROPY_THRESHOLD < otherSizeMin;
  if (anisotropicSpacing && anisotropicVoxels) {
    let spacing = percentile(
      spacings.map((s) => s[worst]!),
      10,
    );
    if (spacing < otherSpacingMax) spacing = Math.max(otherSpacingMax, spacing) + 1e-5;
    target[worst] = spacing;
  }
  return target;
}

/** nnU-Net `determine_transpose`: the lowest-resolution axis first, the others in order. */
export function determineTranspose(targetSpacing: Triple): { forward: Triple; backward: Triple } {
  let worst = 0;
  for (const axis of [1, 2]) if (targetSpacing[axis]! > targetSpacing[worst]!) worst = axis;
  const forward = [worst, ...[0, 1, 2].filter((axis) => axis !== worst)] as Triple;
  const backward = [0, 1, 2].map((axis) => forward.indexOf(axis)) as Triple;
  return { forward, backward };
}

export function transposeTriple<T>(values: readonly T[], order: readonly number[]): [T, T, T] {
  return [values[order[0]!]!, values[order[1]!]!, values[order[2]!]!];
}

export interface ConfigurationInput {
  /** Target spacing in network order: 3 axes, or the slice's 2 (the 2d configuration). */
  targetSpacing: readonly number[];
  /** Median shape at the target spacing, network order, as many axes (may be fractional, as nnU-Net's median). */
  medianShape: readonly number[];
  numInputChannels: number;
  /** Output classes including background (the largest over the datasets for a shared plan). */
  numClasses: number;
  /** Training cases (all datasets together). */
  numTraining: number;
  /** Voxels of the dataset the batch cap compares with (nnU-Net's approximate_n_voxels_dataset); default: median voxels x cases. */
  datasetVoxels?: number;
}

export interface ConfigurationResult {
  /** The patch [z, y, x]; a 2d configuration's is [1, y, x]. */
  patchSize: Triple;
  batchSize: number;
  /** The topology on [z, y, x]; a 2d configuration's has stride and kernel 1 along z. */
  topology: Topology;
  featuresPerStage: number[];
  vramEstimate: number;
}

const product = (values: readonly number[]): number => values.reduce((a, b) => a * b, 1);

function axisToShrink(patch: readonly number[], medianShape: readonly number[]): number {
  // np.argsort(ratios)[-1]: the largest ratio, the last axis among ties.
  let best = 0;
  for (let axis = 1; axis < patch.length; axis++) if (patch[axis]! / medianShape[axis]! >= patch[best]! / medianShape[best]!) best = axis;
  return best;
}

/** A 2D topology as the 3D one our networks build: stride and kernel 1 along z, a patch one slice deep. */
function liftTopology(topology: TopologyNd): Topology {
  if (topology.patchSize.length === 3) return topology as Topology;
  const lift = (values: readonly number[]): Triple => [1, values[0]!, values[1]!];
  return {
    poolsPerAxis: [0, topology.poolsPerAxis[0]!, topology.poolsPerAxis[1]!],
    strides: topology.strides.map(lift),
    kernelSizes: topology.kernelSizes.map(lift),
    patchSize: lift(topology.patchSize),
    divisibleBy: lift(topology.divisibleBy),
  };
}

/**
 * Patch size, topology and batch size for one preset (nnU-Net `get_plans_for_configuration`), for
 * a 3D configuration or, given the slice's two axes, the 2d one (the preset's `twoD` rules).
 */
export function planConfiguration(input: ConfigurationInput, preset: PlanPreset): ConfigurationResult {
  const { targetSpacing, medianShape } = input;
  const dims = targetSpacing.length;
  if ((dims !== 2 && dims !== 3) || medianShape.length !== dims) throw new RangeError(`planConfiguration takes 2 or 3 axes, got spacing ${targetSpacing.length}, median shape ${medianShape.length}`);
  const twoD = dims === 2 ? preset.twoD : null;
  if (dims === 2 && twoD === null) throw new InputError(`preset '${preset.name}' plans no 2d configuration`, { code: 'bad-plan' });
  const rule: PatchRule = twoD?.patch ?? preset.patch;
  const batchRule = twoD?.batch ?? preset.batch;
  const maxFeatures = twoD?.maxFeatures ?? preset.maxFeatures;
  const limits: TopologyLimits = {
    minFeatureMapSize: preset.minFeatureMapSize,
    maxPoolsPerAxis: targetSpacing.map(() => 999999),
    maxStages: preset.maxStages,
  };
  let initial: number[];
  if (rule.kind === 'fixed') {
    initial = [...rule.patchSize];
    // The pooling must fit the fixed patch: no more halvings than the size has factors of 2.
    limits.maxPoolsPerAxis = rule.patchSize.map((size) => {
      let pools = 0;
      while (size % 2 ** (pools + 1) === 0) pools++;
      return pools;
    });
  } else {
    const volume = rule.kind === 'vram' ? rule.initialVoxels : rule.budgetVoxels;
    const inverse = targetSpacing.map((s) => 1 / s);
    const ratio = volume / product(inverse);
    const scale = dims === 3 ? Math.cbrt(ratio) : Math.sqrt(ratio);
    initial = inverse.map((t, axis) => Math.min(roundHalfEven(t * scale), medianShape[axis]!));
  }

  const network = (topology: TopologyNd) => ({
    featuresPerStage: featuresPerStage(topology.strides.length, preset.baseFeatures, maxFeatures),
    strides: topology.strides,
    numClasses: input.numClasses,
  });
  const vram = (topology: TopologyNd): number => convFeatureMapSize(topology.patchSize, network(topology));
  let topology = poolAndConvPropsNd(targetSpacing, initial, limits);
  let patch = [...topology.patchSize];

  if (rule.kind !== 'fixed') {
    const reference = rule.kind === 'vram' ? vramReference(rule) : rule.budgetVoxels;
    // nnU-Net shrinks while estimate / reference batch * 2 exceeds the reference (its batch of at least 2).
    const estimate = (t: TopologyNd): number => (rule.kind === 'vram' ? (vram(t) / rule.referenceBatch) * 2 : product(t.patchSize));
    let current = estimate(topology);
    for (let guard = 0; current > reference; guard++) {
      const axis = axisToShrink(patch, medianShape);
      const trial = [...patch];
      trial[axis]! -= topology.divisibleBy[axis]!;
      const step = poolAndConvPropsNd(targetSpacing, trial, limits).divisibleBy[axis]!;
      if (patch[axis]! - step < 1 || guard > 10_000) {
        throw new InputError(`preset '${preset.name}': cannot shrink the patch (${patch.join('x')}) under its budget`, {
          code: 'bad-plan',
        });
      }
      patch[axis]! -= step;
      topology = poolAndConvPropsNd(targetSpacing, patch, limits);
      patch = [...topology.patchSize];
      current = estimate(topology);
    }
  }

  const vramEstimate = vram(topology);
  let batchSize: number;
  if (batchRule.kind === 'fixed') {
    batchSize = batchRule.batchSize;
  } else if (rule.kind === 'vram') {
    const fromMemory = roundHalfEven((vramReference(rule) / vramEstimate) * rule.referenceBatch);
    const datasetVoxels = input.datasetVoxels ?? product(medianShape) * input.numTraining;
    const cap = roundHalfEven((datasetVoxels * batchRule.maxDatasetFraction) / product(patch));
    batchSize = Math.max(Math.min(fromMemory, cap), batchRule.minBatch);
  } else {
    throw new InputError(`preset '${preset.name}': the nnU-Net batch rule needs the VRAM patch rule`, { code: 'bad-plan' });
  }
  const lifted = liftTopology(topology);
  return {
    patchSize: lifted.patchSize,
    batchSize,
    topology: lifted,
    featuresPerStage: network(topology).featuresPerStage,
    vramEstimate,
  };
}

function networkPlan(result: ConfigurationResult): NetworkPlan {
  return {
    architecture: DEFAULT_ARCHITECTURE,
    nStages: result.topology.strides.length,
    featuresPerStage: result.featuresPerStage,
    kernelSizes: result.topology.kernelSizes,
    strides: result.topology.strides,
    nConvPerStage: 2,
    nConvPerStageDecoder: 2,
    convBias: true,
    norm: { kind: 'instance', eps: 1e-5, affine: true },
    nonlin: { kind: 'leaky_relu', negativeSlope: 0.01 },
  };
}

function channelNormalization(fingerprint: DatasetFingerprint): ChannelNormalizationPlan[] {
  const [first, ...rest] = fingerprint.datasets;
  if (first === undefined) throw new InputError('no dataset to plan', { code: 'bad-plan' });
  const channels = Object.keys(first.channelNames).sort((a, b) => Number(a) - Number(b));
  for (const other of rest) {
    const names = Object.keys(other.channelNames);
    const sameSchemes = channels.every(
      (c) =>
        other.channelNames[c] !== undefined &&
        normalizationForChannel(other.channelNames[c]!) === normalizationForChannel(first.channelNames[c]!),
    );
    if (names.length !== channels.length || !sameSchemes) {
      throw new InputError(
        `dataset '${other.name}' has channels ${JSON.stringify(other.channelNames)}, '${first.name}' has ` +
          `${JSON.stringify(first.channelNames)}: one shared plan needs the same channels`,
        { file: other.path, code: 'channel-mismatch' },
      );
    }
  }
  return channels.map((key, index) => {
    const scheme = normalizationForChannel(first.channelNames[key]!);
    const properties = fingerprint.summary.foregroundIntensityPropertiesPerChannel[index]!;
    const plan: ChannelNormalizationPlan = {
      channel: first.channelNames[key]!,
      scheme,
      // nnU-Net: only z-score uses the nonzero mask, and only when cropping removed a lot.
      useMaskForNorm: scheme === 'zscore' && fingerprint.summary.medianRelativeSizeAfterCropping < 0.75,
    };
    if (scheme === 'ct') {
      plan.ct = {
        mean: properties.mean,
        std: properties.std,
        percentile_00_5: properties.percentile_00_5,
        percentile_99_5: properties.percentile_99_5,
      };
    }
    return plan;
  });
}

/**
 * Plan a (possibly pooled) fingerprint with a preset, as nnU-Net's plan_experiment does: the plan's
 * configuration is 3d_fullres; `configurations` holds 2d (when the preset plans one) and, when the
 * low-resolution search keeps one (planning_batch_dice.ts), 3d_lowres (batch Dice off) and
 * 3d_cascade_fullres (3d_fullres after 3d_lowres).
 */
export function planExperiment(fingerprint: DatasetFingerprint, preset: PresetName | PlanPreset): Plan {
  const spec = typeof preset === 'string' ? getPreset(preset) : preset;
  const { summary } = fingerprint;
  const spacings = summary.cases.map((c) => c.spacing);
  const shapes = summary.cases.map((c) => c.shapeAfterCrop);
  if (spacings.length === 0) throw new InputError('the fingerprint holds no cases', { code: 'bad-plan' });
  const fullresSpacing = determineTargetSpacing(spacings, shapes);
  const transpose = determineTranspose(fullresSpacing);
  const newShapes = summary.cases.map((c) => computeNewShape(c.shapeAfterCrop, c.spacing, fullresSpacing));
  const medianShape = [0, 1, 2].map((axis) => median(newShapes.map((s) => s[axis]!)));
  const targetSpacing = transposeTriple(fullresSpacing, transpose.forward);
  const medianShapeTransposed = transposeTriple(medianShape, transpose.forward);
  const numClasses = Math.max(...fingerprint.datasets.map((d) => segmentationClassCount(d.labels)));
  const numInputChannels = Object.keys(fingerprint.datasets[0]!.channelNames).length;
  const numTraining = fingerprint.datasets.reduce((sum, d) => sum + d.numTraining, 0);
  const common = { numInputChannels, numClasses, numTraining };
  const datasetVoxels = product(medianShapeTransposed) * numTraining;
  const result = planConfiguration({ ...common, targetSpacing, medianShape: medianShapeTransposed, datasetVoxels }, spec);
  const lowres = searchLowres(targetSpacing, medianShapeTransposed, result.patchSize, (spacing, shape) => planConfiguration({ ...common, targetSpacing: spacing, medianShape: shape }, spec).patchSize);
  const normalization = channelNormalization(fingerprint);
  // What every configuration shares, a copy each (a plan's objects are not aliased).
  const shared = () => ({
    transpose: structuredClone(transpose),
    normalization: structuredClone(normalization),
    resampling: { data: { ...DATA_RESAMPLING }, segmentation: { ...SEGMENTATION_RESAMPLING } },
    deepSupervision: true,
  });
  const configuration: PlanConfiguration = {
    patchSize: result.patchSize,
    batchSize: result.batchSize,
    targetSpacing,
    medianShape: medianShapeTransposed,
    ...shared(),
    network: networkPlan(result),
    // nnU-Net: 3d_fullres uses batch Dice exactly when the planner also makes a 3d_lowres.
    batchDice: lowres.lowres,
    vramEstimate: result.vramEstimate,
  };
  const configurations: NonNullable<Plan['configurations']> = {};
  if (spec.twoD !== null) {
    // 2d: the slice's axes of the full-resolution spacing and median shape; the batch cap counts the 3D dataset.
    const inPlane = planConfiguration({ ...common, targetSpacing: targetSpacing.slice(1), medianShape: medianShapeTransposed.slice(1), datasetVoxels }, spec);
    configurations['2d'] = {
      name: '2d',
      spatialDims: 2,
      patchSize: inPlane.patchSize,
      batchSize: inPlane.batchSize,
      // Axis 0 is not resampled (each case keeps its slice spacing): 1, as nnU-Net's 2d plans are read.
      targetSpacing: [1, targetSpacing[1], targetSpacing[2]],
      medianShape: [1, medianShapeTransposed[1]!, medianShapeTransposed[2]!],
      ...shared(),
      network: networkPlan(inPlane),
      batchDice: true,
      vramEstimate: inPlane.vramEstimate,
    };
  }
  if (lowres.lowres) {
    // 3d_lowres: the last spacing of the search, its median shape rounded (the batch cap counts it unrounded).
    const scaled = targetSpacing.map((spacing, axis) => (spacing / lowres.lowresSpacing[axis]!) * medianShapeTransposed[axis]!);
    const lowresShape = scaled.map(roundHalfEven) as Triple;
    const low = planConfiguration({ ...common, targetSpacing: lowres.lowresSpacing, medianShape: lowresShape, datasetVoxels: product(scaled) * numTraining }, spec);
    configurations['3d_lowres'] = {
      name: '3d_lowres',
      patchSize: low.patchSize,
      batchSize: low.batchSize,
      targetSpacing: [...lowres.lowresSpacing],
      medianShape: lowresShape,
      ...shared(),
      network: networkPlan(low),
      batchDice: false,
      vramEstimate: low.vramEstimate,
    };
    configurations['3d_cascade_fullres'] = { ...structuredClone(configuration), name: '3d_cascade_fullres', previousStage: '3d_lowres' };
  }
  return {
    version: PLAN_VERSION,
    preset: spec.name,
    datasets: fingerprint.datasets.map((d) => ({
      name: d.name,
      labels: d.labels,
      channelNames: d.channelNames,
      numTraining: d.numTraining,
      fileEnding: d.fileEnding,
    })),
    fingerprint: summary,
    configuration,
    ...(Object.keys(configurations).length > 0 ? { configurations } : {}),
  };
}
