/**
 * results.json of a study: plain JSON the report renders (report imports these types only). One
 * arm per (pre-trained model, arm), one fold result per (seed, fold) with its per-case metrics, the
 * fold's means, the paper's F1 (2PS/(P+S) of the fold's mean precision and sensitivity), the
 * training curve and the seconds per epoch; the pre-training runs' curves; the overlay slices; the
 * paired comparisons and the paper's four findings (comparisons.ts, findings.ts).
 * Across folds: mean and population std of the fold means (each fold counts once), as the paper.
 * With several seeds (armSummary): the mean over seeds of each seed's mean over folds, the
 * fold-to-fold std (the mean over seeds of each seed's std over folds: what a one-seed study
 * reports) and the seed-to-seed std (the std over seeds of the seeds' means), all population stds.
 * Version 2 added arm names and options, seeds, comparisons and findings; version 1 files (one
 * seed, arms named by their strategy) still read.
 */
import type { CpuInfo } from '../core/index.js';
import type { RunEnvironment } from '../train/index.js';
import type { StudyComparisons } from './comparisons.js';
import type { StudyFindings } from './findings.js';
import { f1OfMeans, summarise, summariseCases, type CaseMetrics } from '../eval/index.js';

export const RESULTS_FORMAT = 'lesionseg-study-results';
export const RESULTS_VERSION = 2;

/** The metrics the tables use; `f1` is the paper's F1 of the means (see F1_NOTE in eval). */
export const TABLE_METRICS = ['dsc', 'nsd', 'sensitivity', 'precision', 'f1', 'accuracy', 'hd95', 'secondsPerEpoch'] as const;
export type TableMetric = (typeof TABLE_METRICS)[number];

export interface MeanStd {
  mean: number | null;
  /** Fold-to-fold population std (with seeds: its mean over seeds). */
  std: number | null;
  /** (seed, fold) values used. */
  n: number;
  /** Seed-to-seed population std of the seeds' means over folds (only with several seeds). */
  seedStd?: number | null;
}

/** Per test case; null where a metric is undefined (e.g. DSC with both masks empty) or infinite. */
export interface CaseResult {
  caseId: string;
  dsc: number | null;
  nsd: number | null;
  sensitivity: number | null;
  precision: number | null;
  specificity: number | null;
  accuracy: number | null;
  hd95: number | null;
}

export interface EpochPoint {
  epoch: number;
  trainLoss: number;
  valLoss: number | null;
  pseudoDice: number | null;
  lr: number;
  seconds: number;
}

export interface FoldResult {
  fold: number;
  /** The training seed of this run (only in studies with several seeds). */
  seed?: number;
  runDir: string;
  predictionDir: string;
  cases: CaseResult[];
  /** This fold's means over its test cases (f1: the paper's F1 of the means). */
  metrics: Record<TableMetric, number | null>;
  epochs: EpochPoint[];
}

export interface ArmResult {
  pretrained: string;
  strategy: string;
  /** The arm's name (the strategy's unless a named variant; absent in version 1 files). */
  name?: string;
  /** The strategy's options of a variant (decoderInit, fuseLevels). */
  options?: Record<string, string>;
  /** The seeds of a study with several (absent: one seed). */
  seeds?: number[];
  /** One per (seed, fold), seed by seed. */
  folds: FoldResult[];
  /** Mean and std over the fold means (with seeds: see the file comment). */
  summary: Record<TableMetric, MeanStd>;
}

/** An arm's name: `name`, or for version 1 files its strategy. */
export function armName(arm: Pick<ArmResult, 'name' | 'strategy'>): string {
  return arm.name ?? arm.strategy;
}

export interface PretrainResult {
  model: string;
  seed?: number;
  mode: 'single' | 'multi';
  datasets: string[];
  runDir: string;
  epochs: EpochPoint[];
  secondsPerEpoch: number | null;
}

/** One axial slice of a test case with the ground truth and each arm's prediction (DIR/overlays/<case>.json). */
export interface OverlaySlice {
  caseId: string;
  fold: number;
  /** Slice index (z) in the image. */
  slice: number;
  width: number;
  height: number;
  /** [sy, sx] mm, for the aspect ratio. */
  pixelSpacingMm: [number, number];
  /** Base64 of Int16 little-endian HU, row-major (y rows, x columns). */
  ctHu: string;
  /** Base64 of Uint8 0/1 masks. */
  groundTruth: string;
  /** `name`: the arm's name where it differs from the strategy. */
  predictions: { pretrained: string; strategy: string; name?: string; mask: string }[];
  /** The whole volumes (absolute paths) behind the slice, for the report's viewer page of the case (absent in files written before). */
  files?: { image: string; groundTruth: string; predictions: string[] };
}

export interface StepSeconds {
  pretraining: number;
  training: number;
  prediction: number;
  total: number;
  /** Steps with a recorded time, and those run before times were recorded (not in the sums). */
  timedSteps: number;
  untimedSteps: number;
}

export interface StudyResults {
  format: typeof RESULTS_FORMAT;
  version: typeof RESULTS_VERSION;
  name: string;
  createdAt: string;
  /** Wall seconds of the `experiment` call that wrote this file (reused runs cost nothing). */
  wallSeconds: number;
  /** Seconds of the study's steps summed over every call that ran them (DIR/timings.json). */
  stepSeconds: StepSeconds;
  /** The CPU of the machine that wrote this file (the runs' own sidecars record theirs). */
  hardware?: CpuInfo;
  /**
   * What the numbers depend on besides seeds and settings, on the machine that wrote this file: CPU
   * flags, the steps' thread count, libtorch, oneDNN, OpenBLAS and ATen's kernel set (each run's
   * sidecar records its own; absent in files written before).
   */
  environment?: RunEnvironment;
  target: { dataset: string; label: number; toleranceMm: number; folds: number[] };
  f1Note: string;
  arms: ArmResult[];
  pretraining: PretrainResult[];
  /** Overlay files, relative to the study folder. */
  overlays: string[];
  spec: Record<string, unknown>;
  /** Paired comparisons (absent in version 1 files). */
  comparisons?: StudyComparisons;
  /** The paper's four findings with verdicts (absent in version 1 files). */
  findings?: StudyFindings;
}

function nullIfNotFinite(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

export function caseResult(caseId: string, m: CaseMetrics): CaseResult {
  return {
    caseId,
    dsc: nullIfNotFinite(m.dsc),
    nsd: nullIfNotFinite(m.nsd),
    sensitivity: nullIfNotFinite(m.sensitivity),
    precision: nullIfNotFinite(m.precision),
    specificity: nullIfNotFinite(m.specificity),
    accuracy: nullIfNotFinite(m.accuracy),
    hd95: nullIfNotFinite(m.hd95),
  };
}

/** The fold's table metrics from its cases' metrics and its epochs. */
export function foldMetrics(cases: readonly CaseMetrics[], epochs: readonly EpochPoint[]): Record<TableMetric, number | null> {
  const summary = summariseCases(cases);
  const m = summary.metrics;
  const seconds = epochs.length > 0 ? epochs.reduce((sum, e) => sum + e.seconds, 0) / epochs.length : NaN;
  return {
    dsc: nullIfNotFinite(m.dsc.mean),
    nsd: nullIfNotFinite(m.nsd.mean),
    sensitivity: nullIfNotFinite(m.sensitivity.mean),
    precision: nullIfNotFinite(m.precision.mean),
    f1: nullIfNotFinite(f1OfMeans(m.precision.mean, m.sensitivity.mean)),
    accuracy: nullIfNotFinite(m.accuracy.mean),
    hd95: nullIfNotFinite(m.hd95.mean),
    secondsPerEpoch: nullIfNotFinite(seconds),
  };
}

/**
 * Mean and population std over the folds (folds without a value are left out). With several seeds
 * (folds carrying `seed`): the mean of the seeds' means, the mean of the seeds' fold-to-fold stds,
 * and the std of the seeds' means as `seedStd`.
 */
export function armSummary(folds: readonly FoldResult[]): Record<TableMetric, MeanStd> {
  const seeds = [...new Set(folds.map((f) => f.seed))];
  const out = {} as Record<TableMetric, MeanStd>;
  for (const metric of TABLE_METRICS) {
    const valuesOf = (list: readonly FoldResult[]): number[] => list.map((f) => f.metrics[metric]).filter((v): v is number => v !== null);
    const n = valuesOf(folds).length;
    if (seeds.length <= 1) {
      const stat = summarise(valuesOf(folds));
      out[metric] = { mean: nullIfNotFinite(stat.mean), std: nullIfNotFinite(stat.std), n };
      continue;
    }
    const perSeed = seeds.map((seed) => summarise(valuesOf(folds.filter((f) => f.seed === seed)))).filter((stat) => stat.n > 0);
    const means = summarise(perSeed.map((stat) => stat.mean));
    const foldStd = summarise(perSeed.map((stat) => stat.std));
    out[metric] = { mean: nullIfNotFinite(means.mean), std: nullIfNotFinite(foldStd.mean), n, seedStd: perSeed.length > 1 ? nullIfNotFinite(means.std) : null };
  }
  return out;
}
