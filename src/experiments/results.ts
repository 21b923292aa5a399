/**
 * results.json of a study: plain JSON the report renders (report imports these types only). One
 * arm per (pre-trained model, strategy), one fold result per fold with its per-case metrics, the
 * fold's means, the paper's F1 (2PS/(P+S) of the fold's mean precision and sensitivity), the
 * training curve and the seconds per epoch; the pre-training runs' curves; and the overlay slices.
 * Across folds: mean and population std of the fold means (each fold counts once), as the paper.
 */
import type { CpuInfo } from '../core/index.js';
import { f1OfMeans, summarise, summariseCases, type CaseMetrics } from '../eval/index.js';

export const RESULTS_FORMAT = 'lesionseg-study-results';
export const RESULTS_VERSION = 1;

/** The metrics the tables use; `f1` is the paper's F1 of the means (see F1_NOTE in eval). */
export const TABLE_METRICS = ['dsc', 'nsd', 'sensitivity', 'precision', 'f1', 'accuracy', 'hd95', 'secondsPerEpoch'] as const;
export type TableMetric = (typeof TABLE_METRICS)[number];

export interface MeanStd {
  mean: number | null;
  std: number | null;
  n: number;
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
  folds: FoldResult[];
  /** Mean and std over the fold means. */
  summary: Record<TableMetric, MeanStd>;
}

export interface PretrainResult {
  model: string;
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
  predictions: { pretrained: string; strategy: string; mask: string }[];
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
  target: { dataset: string; label: number; toleranceMm: number; folds: number[] };
  f1Note: string;
  arms: ArmResult[];
  pretraining: PretrainResult[];
  /** Overlay files, relative to the study folder. */
  overlays: string[];
  spec: Record<string, unknown>;
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

/** Mean and population std over the folds (folds without a value are left out). */
export function armSummary(folds: readonly FoldResult[]): Record<TableMetric, MeanStd> {
  const out = {} as Record<TableMetric, MeanStd>;
  for (const metric of TABLE_METRICS) {
    const values = folds.map((f) => f.metrics[metric]).filter((v): v is number => v !== null);
    const stat = summarise(values);
    out[metric] = { mean: nullIfNotFinite(stat.mean), std: nullIfNotFinite(stat.std), n: stat.n };
  }
  return out;
}
