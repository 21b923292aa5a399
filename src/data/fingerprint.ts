/**
 * Dataset fingerprint, as nnU-Net extracts it (nnunetv2 experiment_planning/dataset_fingerprint/
 * fingerprint_extractor.py, NNUNET.md section 1): per case the spacing, the shape after cropping
 * to nonzero and the relative size of that crop; per channel the foreground (label > 0) intensities,
 * `floor(1e8 / numberOfCases)` of them drawn WITH replacement from each case, pooled over all cases
 * into mean, median, std, min, max and the 0.5 / 99.5 percentiles.
 *
 * Differences from nnU-Net, on purpose: the draws come from core's Rng (xoshiro128**) seeded with
 * 1234 afresh for every case, not numpy's RandomState(1234), so the samples (not the method)
 * differ; statistics accumulate in float64. Several datasets can be fingerprinted together: the
 * cases are pooled (the sample budget is split over all of them), for one shared plan.
 */
import * as path from 'node:path';
import { assertSameGrid, InputError, Rng, SILENT_PROGRESS, voxelCount, type ProgressReporter, type Shape3, type Volume } from '../core/index.js';
import { listRawCases, readDatasetJson, readNifti } from '../io/index.js';
import { cropToNonzero } from './crop.js';
import { intensityProperties, median } from './fingerprint_stats.js';
import type { FingerprintSummary } from './planning_schema.js';
import type { Triple } from './planning_topology.js';

/** nnU-Net `num_foreground_voxels_for_intensitystats`. */
export const FOREGROUND_SAMPLE_BUDGET = 1e8;
export const FOREGROUND_SAMPLE_SEED = 1234;

export interface DatasetInfo {
  name: string;
  /** The dataset folder as given. */
  path: string;
  labels: Record<string, number>;
  channelNames: Record<string, string>;
  numTraining: number;
  fileEnding: string;
}

export interface DatasetFingerprint {
  datasets: DatasetInfo[];
  summary: FingerprintSummary;
}

export interface CaseFingerprint {
  spacing: Shape3;
  shapeBeforeCrop: Shape3;
  shapeAfterCrop: Shape3;
  relativeSizeAfterCrop: number;
  /** Per channel: the sampled foreground intensities (empty when the case has no foreground). */
  samples: Float32Array[];
}

function describe(volume: Volume, fallback: string): string {
  const file = (volume as { file?: unknown }).file;
  return typeof file === 'string' ? file : fallback;
}

/** A volume's voxels as numbers (int64 NIfTI data arrives as BigInt64Array and is converted). */
export function numericData(volume: Volume): ArrayLike<number> {
  const data = volume.data;
  return data instanceof BigInt64Array ? Float64Array.from(data, (v) => Number(v)) : data;
}

/**
 * Checks every channel and the label lie on channel 0's grid (core's one same-grid test: shape,
 * spacing, origin, direction) and returns that shape; throws an InputError (GRID_MISMATCH) naming the file.
 */
export function checkCaseShapes(images: readonly Volume[], label: Volume | null, caseName = 'case'): Shape3 {
  const first = images[0];
  if (first === undefined) throw new InputError('a case needs at least one image', { file: caseName, code: 'missing-image' });
  const reference = `channel 0 (${describe(first, `${caseName} channel 0`)})`;
  images.forEach((image, c) => {
    if (c > 0) assertSameGrid(describe(image, `${caseName} channel ${c}`), image, first, `channel ${c}`, reference);
  });
  if (label !== null) assertSameGrid(describe(label, `${caseName} label`), label, first, 'the label', reference);
  return [...first.shape];
}

/** nnU-Net `analyze_case` for one case held in memory. */
export function fingerprintCase(
  images: readonly Volume[],
  label: Volume,
  samplesPerCase: number,
  seed = FOREGROUND_SAMPLE_SEED,
): CaseFingerprint {
  const shape = checkCaseShapes(images, label);
  const cropped = cropToNonzero(
    images.map(numericData),
    shape,
    numericData(label),
  );
  const seg = cropped.segmentation;
  let foregroundCount = 0;
  for (let i = 0; i < seg.length; i++) if (seg[i]! > 0) foregroundCount++;
  const foreground = new Int32Array(foregroundCount);
  for (let i = 0, k = 0; i < seg.length; i++) if (seg[i]! > 0) foreground[k++] = i;
  const rng = new Rng(seed);
  const samples = cropped.channels.map((channel) => {
    if (foregroundCount === 0) return new Float32Array(0);
    const drawn = new Float32Array(samplesPerCase);
    for (let s = 0; s < samplesPerCase; s++) drawn[s] = channel[foreground[rng.int(0, foregroundCount)]!]!;
    return drawn;
  });
  return {
    spacing: [...images[0]!.spacing],
    shapeBeforeCrop: shape,
    shapeAfterCrop: cropped.shape,
    relativeSizeAfterCrop: voxelCount(cropped.shape) / voxelCount(shape),
    samples,
  };
}

/** A case's facts without its samples, as the summary lists them. */
export type CaseFacts = Omit<CaseFingerprint, 'samples'> & { dataset: string; id: string };

/**
 * The summary a plan stores, from the cases' facts and the pooled foreground samples per channel
 * (reordered in place while the percentiles are selected).
 */
export function summarizeFingerprint(
  cases: readonly CaseFacts[],
  pooledSamples: readonly Float32Array[],
  samplesPerCase: number,
  seed = FOREGROUND_SAMPLE_SEED,
): FingerprintSummary {
  if (cases.length === 0) throw new InputError('no cases to fingerprint', { code: 'no-cases' });
  return {
    numCases: cases.length,
    medianSpacing: [0, 1, 2].map((a) => median(cases.map((k) => k.spacing[a]!))) as Triple,
    medianShapeAfterCrop: [0, 1, 2].map((a) => median(cases.map((k) => k.shapeAfterCrop[a]!))) as Triple,
    medianRelativeSizeAfterCropping: median(cases.map((k) => k.relativeSizeAfterCrop)),
    foregroundIntensityPropertiesPerChannel: pooledSamples.map((samples) => intensityProperties(samples)),
    intensitySampling: { samplesPerCase, seed, generator: 'core Rng (xoshiro128**), with replacement, reseeded per case' },
    cases: cases.map((k) => ({ dataset: k.dataset, id: k.id, spacing: k.spacing, shapeAfterCrop: k.shapeAfterCrop })),
  };
}

/** Collects case fingerprints, copying their samples into pooled arrays as they arrive. */
export class FingerprintPool {
  readonly cases: CaseFacts[] = [];
  private readonly pooled: Float32Array[];
  private filled: number[];
  constructor(
    readonly channels: number,
    readonly totalCases: number,
    readonly samplesPerCase: number,
  ) {
    this.pooled = Array.from({ length: channels }, () => new Float32Array(totalCases * samplesPerCase));
    this.filled = new Array<number>(channels).fill(0);
  }
  add(fingerprint: CaseFingerprint, dataset: string, id: string): void {
    const { samples, ...facts } = fingerprint;
    if (samples.length !== this.channels) {
      throw new InputError(`case has ${samples.length} channels, expected ${this.channels}`, { file: `${dataset}/${id}`, code: 'channel-mismatch' });
    }
    samples.forEach((channelSamples, c) => {
      this.pooled[c]!.set(channelSamples, this.filled[c]!);
      this.filled[c]! += channelSamples.length;
    });
    this.cases.push({ ...facts, dataset, id });
  }
  summary(seed = FOREGROUND_SAMPLE_SEED): FingerprintSummary {
    const samples = this.pooled.map((array, c) => array.subarray(0, this.filled[c]!));
    return summarizeFingerprint(this.cases, samples, this.samplesPerCase, seed);
  }
}

/** Dataset facts a plan records, from dataset.json (region-based labels are not supported). */
export function datasetInfo(datasetDir: string): DatasetInfo {
  const json = readDatasetJson(datasetDir);
  const file = path.join(datasetDir, 'dataset.json');
  const labels: Record<string, number> = {};
  for (const [name, value] of Object.entries(json.labels)) {
    if (typeof value !== 'number') {
      throw new InputError(`label '${name}' is a region (a list of values); region-based training is not supported`, {
        file,
        code: 'unsupported-regions',
      });
    }
    if (value > 127) throw new InputError(`label '${name}' = ${value}: labels above 127 do not fit int8`, { file, code: 'bad-label' });
    labels[name] = value;
  }
  return {
    name: path.basename(path.resolve(datasetDir)),
    path: datasetDir,
    labels,
    channelNames: { ...json.channel_names },
    numTraining: json.numTraining,
    fileEnding: json.file_ending,
  };
}

export interface FingerprintOptions {
  progress?: ProgressReporter;
  /** Foreground intensities drawn over all cases together (nnU-Net: 1e8). */
  sampleBudget?: number;
  seed?: number;
}

/** Fingerprint one dataset, or several pooled into one (for a shared plan). */
export async function computeFingerprint(
  datasetDirs: string | readonly string[],
  options: FingerprintOptions = {},
): Promise<DatasetFingerprint> {
  const dirs = typeof datasetDirs === 'string' ? [datasetDirs] : [...datasetDirs];
  if (dirs.length === 0) throw new InputError('no dataset given', { code: 'no-dataset' });
  const datasets = dirs.map(datasetInfo);
  const names = new Set<string>();
  for (const d of datasets) {
    if (names.has(d.name)) throw new InputError(`dataset '${d.name}' is given twice`, { file: d.path, code: 'duplicate-dataset' });
    names.add(d.name);
  }
  const caseLists = dirs.map((dir) => listRawCases(dir, 'Tr'));
  const totalCases = caseLists.reduce((sum, list) => sum + list.length, 0);
  if (totalCases === 0) throw new InputError('no training cases found (imagesTr is empty)', { file: dirs[0], code: 'no-cases' });
  const seed = options.seed ?? FOREGROUND_SAMPLE_SEED;
  const samplesPerCase = Math.floor((options.sampleBudget ?? FOREGROUND_SAMPLE_BUDGET) / totalCases);
  const progress = options.progress ?? SILENT_PROGRESS;
  progress.start('fingerprint', totalCases);
  const channels = Object.keys(datasets[0]!.channelNames).length;
  const pool = new FingerprintPool(channels, totalCases, samplesPerCase);
  try {
    for (let d = 0; d < dirs.length; d++) {
      for (const raw of caseLists[d]!) {
        if (raw.label === null) {
          throw new InputError(`case '${raw.id}' has no label file in labelsTr`, { file: raw.images[0], code: 'missing-label' });
        }
        const images = await Promise.all(raw.images.map((file) => readNifti(file)));
        const label = await readNifti(raw.label);
        pool.add(fingerprintCase(images, label, samplesPerCase, seed), datasets[d]!.name, raw.id);
        progress.tick(1, raw.id);
      }
    }
  } finally {
    progress.stop();
  }
  return { datasets, summary: pool.summary(seed) };
}
