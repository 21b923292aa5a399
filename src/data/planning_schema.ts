/**
 * The plans file (plan.json): our own schema, validated at the edge. `validatePlan` lists every
 * problem at once (as core Issues); `loadPlan` reads and validates a file; `savePlan` writes one
 * atomically. Spacings, shapes and patch sizes are in NETWORK axis order, i.e. after
 * `configuration.transpose.forward` is applied to [z, y, x] (as nnU-Net stores them); with the
 * usual lowest-resolution-z data the transpose is the identity.
 */
import * as fs from 'node:fs';
import { atomicWriteJsonSync, InputError, ValidationError, type InputErrorCode, type Issue } from '../core/index.js';
import { NORMALIZATION_SCHEMES, type IntensityProperties, type NormalizationScheme } from './normalize.js';
import { PRESET_NAMES, type PresetName } from './planning_presets.js';
import type { ResampleSettings } from './resample.js';
import type { Triple } from './planning_topology.js';

export const PLAN_VERSION = 1;

export interface PlanDataset {
  name: string;
  /** Label name -> value, background 0 included (dataset.json `labels`). */
  labels: Record<string, number>;
  /** Channel index -> name (dataset.json `channel_names`). */
  channelNames: Record<string, string>;
  numTraining: number;
  fileEnding: string;
}

export interface FingerprintSummary {
  numCases: number;
  /** Median spacing of the cases, [z, y, x] before any transpose. */
  medianSpacing: Triple;
  /** Median shape after cropping to nonzero, [z, y, x]. */
  medianShapeAfterCrop: Triple;
  medianRelativeSizeAfterCropping: number;
  /** Pooled foreground intensity statistics per channel (nnU-Net's names). */
  foregroundIntensityPropertiesPerChannel: IntensityProperties[];
  /** How the foreground intensities were sampled. */
  intensitySampling: { samplesPerCase: number; seed: number; generator: string };
  cases: { dataset: string; id: string; spacing: Triple; shapeAfterCrop: Triple }[];
}

export interface ChannelNormalizationPlan {
  channel: string;
  scheme: NormalizationScheme;
  useMaskForNorm: boolean;
  /** The pooled foreground statistics CT normalisation uses (present for 'ct'). */
  ct?: { mean: number; std: number; percentile_00_5: number; percentile_99_5: number };
}

/** The architectures a plan may name (ResidualEncoderUNet: from nnU-Net's ResEnc plans). */
export const PLAN_ARCHITECTURES = ['PlainConvUNet', 'ResidualEncoderUNet'] as const;

export interface NetworkPlan {
  architecture: (typeof PLAN_ARCHITECTURES)[number];
  nStages: number;
  featuresPerStage: number[];
  kernelSizes: Triple[];
  strides: Triple[];
  /** PlainConvUNet: convs per encoder stage. ResidualEncoderUNet: 2, the convs of one residual block. */
  nConvPerStage: number;
  nConvPerStageDecoder: number;
  /** ResidualEncoderUNet only: BasicBlockD blocks per encoder stage. */
  nBlocksPerStage?: number[];
  convBias: boolean;
  norm: { kind: 'instance'; eps: number; affine: boolean };
  nonlin: { kind: 'leaky_relu'; negativeSlope: number };
}

export interface PlanConfiguration {
  patchSize: Triple;
  batchSize: number;
  targetSpacing: Triple;
  /** Median shape of the cases resampled to the target spacing (network order). */
  medianShape: Triple;
  transpose: { forward: Triple; backward: Triple };
  normalization: ChannelNormalizationPlan[];
  resampling: { data: ResampleSettings; segmentation: ResampleSettings };
  network: NetworkPlan;
  deepSupervision: boolean;
  batchDice: boolean;
  /** The planner's memory proxy for this patch (nnU-Net's compute_conv_feature_map_size). */
  vramEstimate: number;
}

export interface Plan {
  version: number;
  preset: PresetName;
  datasets: PlanDataset[];
  fingerprint: FingerprintSummary;
  configuration: PlanConfiguration;
}

type Check = (value: unknown) => string | null;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const positiveInt: Check = (v) => (Number.isInteger(v) && (v as number) > 0 ? null : 'must be a positive integer');
const positive: Check = (v) => (typeof v === 'number' && v > 0 && Number.isFinite(v) ? null : 'must be a positive number');
const finite: Check = (v) => (typeof v === 'number' && Number.isFinite(v) ? null : 'must be a finite number');
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'must be true or false');
const text: Check = (v) => (typeof v === 'string' && v.length > 0 ? null : 'must be a non-empty string');
const oneOf =
  (values: readonly unknown[]): Check =>
  (v) =>
    values.includes(v) ? null : `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
const tripleOf =
  (item: Check): Check =>
  (v) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => item(x) === null) ? null : `must be a list of 3 values that each ${(item(null) ?? '').replace(/^must /, '')}`;
const permutation: Check = (v) =>
  Array.isArray(v) && v.length === 3 && [0, 1, 2].every((axis) => v.includes(axis)) ? null : 'must be a permutation of [0, 1, 2]';

/** Collects issues for one file while walking a parsed JSON value. */
class Walker {
  readonly issues: Issue[] = [];
  constructor(readonly file: string) {}
  report(path: string, code: InputErrorCode, message: string): void {
    this.issues.push({ file: this.file, path, code, message });
  }
  field(parent: unknown, path: string, key: string, check: Check): unknown {
    const fullPath = path ? `${path}.${key}` : key;
    if (!isRecord(parent) || !(key in parent)) {
      this.report(fullPath, 'missing-field', `${fullPath} is missing`);
      return undefined;
    }
    const value = parent[key];
    const problem = check(value);
    if (problem !== null) this.report(fullPath, 'bad-value', `${fullPath} ${problem} (got ${JSON.stringify(value)})`);
    return value;
  }
  object(parent: unknown, path: string, key: string): unknown {
    return this.field(parent, path, key, (v) => (isRecord(v) ? null : 'must be an object'));
  }
  list(parent: unknown, path: string, key: string, minLength = 1): unknown[] {
    const value = this.field(parent, path, key, (v) =>
      Array.isArray(v) && v.length >= minLength ? null : `must be a list of at least ${minLength} entries`,
    );
    return Array.isArray(value) ? value : [];
  }
}

function validateResampling(w: Walker, parent: unknown, path: string): void {
  for (const key of ['data', 'segmentation']) {
    const settings = w.object(parent, path, key);
    const p = `${path}.${key}`;
    w.field(settings, p, 'order', oneOf([0, 1, 3]));
    w.field(settings, p, 'orderZ', oneOf([0, 1, 3]));
    w.field(settings, p, 'forceSeparateZ', oneOf([null, true, false]));
    w.field(settings, p, 'anisotropyThreshold', positive);
  }
}

function validateNetwork(w: Walker, network: unknown, path: string): void {
  const nStages = w.field(network, path, 'nStages', positiveInt);
  const architecture = w.field(network, path, 'architecture', oneOf(PLAN_ARCHITECTURES));
  if (architecture === 'ResidualEncoderUNet') {
    const blocks = w.list(network, path, 'nBlocksPerStage');
    if (typeof nStages === 'number' && blocks.length !== nStages) w.report(`${path}.nBlocksPerStage`, 'bad-value', `${path}.nBlocksPerStage has ${blocks.length} entries, nStages is ${nStages}`);
    blocks.forEach((entry, i) => {
      if (positiveInt(entry) !== null) w.report(`${path}.nBlocksPerStage.${i}`, 'bad-value', `${path}.nBlocksPerStage.${i} must be a positive integer`);
    });
  }
  for (const key of ['featuresPerStage', 'kernelSizes', 'strides']) {
    const list = w.list(network, path, key);
    if (typeof nStages === 'number' && list.length !== nStages) {
      w.report(`${path}.${key}`, 'bad-value', `${path}.${key} has ${list.length} entries, nStages is ${nStages}`);
    }
    list.forEach((entry, i) => {
      const check = key === 'featuresPerStage' ? positiveInt : tripleOf(positiveInt);
      const problem = check(entry);
      if (problem !== null) w.report(`${path}.${key}.${i}`, 'bad-value', `${path}.${key}.${i} ${problem}`);
    });
  }
  w.field(network, path, 'nConvPerStage', positiveInt);
  w.field(network, path, 'nConvPerStageDecoder', positiveInt);
  w.field(network, path, 'convBias', bool);
  const norm = w.object(network, path, 'norm');
  w.field(norm, `${path}.norm`, 'kind', oneOf(['instance']));
  w.field(norm, `${path}.norm`, 'eps', positive);
  w.field(norm, `${path}.norm`, 'affine', bool);
  const nonlin = w.object(network, path, 'nonlin');
  w.field(nonlin, `${path}.nonlin`, 'kind', oneOf(['leaky_relu']));
  w.field(nonlin, `${path}.nonlin`, 'negativeSlope', finite);
}

/** Every problem with a parsed plan, reported against `file`. Empty when the plan is valid. */
export function validatePlan(json: unknown, file = 'plan.json'): Issue[] {
  const w = new Walker(file);
  if (!isRecord(json)) {
    w.report('', 'wrong-type', 'the plan must be a JSON object');
    return w.issues;
  }
  w.field(json, '', 'version', oneOf([PLAN_VERSION]));
  w.field(json, '', 'preset', oneOf(PRESET_NAMES));
  w.list(json, '', 'datasets').forEach((dataset, i) => {
    const p = `datasets.${i}`;
    w.field(dataset, p, 'name', text);
    const labels = w.object(dataset, p, 'labels');
    if (isRecord(labels)) {
      for (const [name, value] of Object.entries(labels)) {
        if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 127) {
          w.report(`${p}.labels.${name}`, 'bad-value', `label '${name}' must be an integer in 0..127`);
        }
      }
      if (!Object.values(labels).includes(0)) w.report(`${p}.labels`, 'missing-background', 'labels must hold background 0');
    }
    w.object(dataset, p, 'channelNames');
    w.field(dataset, p, 'numTraining', positiveInt);
    w.field(dataset, p, 'fileEnding', text);
  });
  const fingerprint = w.object(json, '', 'fingerprint');
  w.field(fingerprint, 'fingerprint', 'numCases', positiveInt);
  w.field(fingerprint, 'fingerprint', 'medianSpacing', tripleOf(positive));
  w.field(fingerprint, 'fingerprint', 'medianShapeAfterCrop', tripleOf(positive));
  w.list(fingerprint, 'fingerprint', 'foregroundIntensityPropertiesPerChannel');

  const c = w.object(json, '', 'configuration');
  const p = 'configuration';
  w.field(c, p, 'patchSize', tripleOf(positiveInt));
  w.field(c, p, 'batchSize', positiveInt);
  w.field(c, p, 'targetSpacing', tripleOf(positive));
  w.field(c, p, 'medianShape', tripleOf(positive));
  const transpose = w.object(c, p, 'transpose');
  w.field(transpose, `${p}.transpose`, 'forward', permutation);
  w.field(transpose, `${p}.transpose`, 'backward', permutation);
  w.list(c, p, 'normalization').forEach((channel, i) => {
    const q = `${p}.normalization.${i}`;
    w.field(channel, q, 'channel', text);
    const scheme = w.field(channel, q, 'scheme', oneOf(NORMALIZATION_SCHEMES));
    w.field(channel, q, 'useMaskForNorm', bool);
    if (scheme === 'ct') {
      const ct = w.object(channel, q, 'ct');
      for (const key of ['mean', 'percentile_00_5', 'percentile_99_5']) w.field(ct, `${q}.ct`, key, finite);
      w.field(ct, `${q}.ct`, 'std', (v) => (typeof v === 'number' && v >= 0 ? null : 'must be a number >= 0'));
    }
  });
  const normalization = isRecord(c) && Array.isArray(c.normalization) ? c.normalization : [];
  const datasets = Array.isArray(json.datasets) ? json.datasets : [];
  datasets.forEach((dataset, i) => {
    if (isRecord(dataset) && isRecord(dataset.channelNames)) {
      const count = Object.keys(dataset.channelNames).length;
      if (count !== normalization.length) {
        w.report(`datasets.${i}.channelNames`, 'channel-mismatch', `dataset ${i} has ${count} channel(s), the configuration normalises ${normalization.length}`);
      }
    }
  });
  validateResampling(w, w.object(c, p, 'resampling'), `${p}.resampling`);
  validateNetwork(w, w.object(c, p, 'network'), `${p}.network`);
  w.field(c, p, 'deepSupervision', bool);
  w.field(c, p, 'batchDice', bool);
  return w.issues;
}

/** Read and validate a plan file; a ValidationError lists every problem. */
export function loadPlan(file: string): Plan {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new InputError('cannot read the plan file', { file, code: 'not-found', cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`the plan is not valid JSON (${(cause as Error).message})`, { file, code: 'bad-json', cause });
  }
  const issues = validatePlan(json, file);
  if (issues.length > 0) throw new ValidationError(issues, { file });
  return json as Plan;
}

/** Validate, then write the plan atomically. */
export function savePlan(file: string, plan: Plan): void {
  const issues = validatePlan(plan, file);
  if (issues.length > 0) throw new ValidationError(issues, { file });
  atomicWriteJsonSync(file, plan);
}
