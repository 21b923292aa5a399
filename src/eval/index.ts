/**
 * eval: segmentation metrics on host arrays. Pure functions (confusion counts, DSC, NSD, HD95,
 * per-case metrics, aggregation, lung involvement and the CT severity score (severity.ts), paired statistics: bootstrap intervals, the
 * Wilcoxon signed-rank test as SciPy 1.10, Holm), one state holder (MetricAccumulator) and the
 * folder-level evaluation behind `lesionseg evaluate` (reads NIfTI through io).
 * Surface metrics follow google-deepmind/surface-distance exactly (see surface.ts).
 */
export { type BinaryMask, maskOfLabel, voxelVolumeMl } from './mask.js';
export {
  type ConfusionCounts,
  confusion,
  dice,
  diceFromCounts,
  sensitivityFromCounts,
  precisionFromCounts,
  specificityFromCounts,
  accuracyFromCounts,
  f1FromCounts,
} from './confusion.js';
export { distanceTransform, distancesAtPoints } from './edt.js';
export { surfelAreaTable } from './surfelTable.js';
export { type SurfaceDistances, surfaceDistances, totalArea } from './surface.js';
export {
  normalizedSurfaceDice,
  hausdorff95,
  surfaceDiceFromDistances,
  robustHausdorffFromDistances,
} from './surfaceMetrics.js';
export { type CaseMetrics, type CaseMetricsOptions, CASE_METRICS_DEFAULTS, caseMetrics } from './caseMetrics.js';
export {
  type Stat,
  type Summary,
  type FoldSummary,
  type SummaryMetric,
  SUMMARY_METRICS,
  summarise,
  summariseCases,
  summariseFolds,
  f1OfMeans,
} from './summary.js';
export { type LungInvolvement, LUNG_LABELS, lungInvolvement } from './lungs.js';
export {
  type LabelRoles,
  type LobeName,
  type LobeInvolvement,
  type RegionInvolvement,
  type SeveritySummary,
  type SeveritySummaryInput,
  LOBE_NAMES,
  SEVERITY_BINS,
  SEVERITY_CONVENTION,
  SUMMARY_CSV_COLUMNS,
  labelRoles,
  lobeSeverityScore,
  lungLabelsFromPrediction,
  severitySummary,
  severitySummaryCsv,
} from './severity.js';
export { type CaseRecord, MetricAccumulator } from './accumulator.js';
export { type EvaluationSplit, type SplitFold, parseSplit, readSplit } from '../io/index.js';
export {
  type EvaluateFolderOptions,
  type EvaluatedCase,
  type FolderEvaluation,
  type MissingPrediction,
  EVALUATE_FOLDER_DEFAULTS,
  caseIdOf,
  listNiftiCases,
  labelMask,
  evaluateFolder,
} from './evaluateFolder.js';
export { F1_NOTE, evaluationReport, evaluationCsv, writeEvaluation } from './evaluationReport.js';
export { type WilcoxonMethod, type WilcoxonResult, wilcoxon, normalSf, averageRanks, signedRankDistribution } from './statsWilcoxon.js';
export { type BootstrapCi, BOOTSTRAP_DEFAULTS, bootstrapCi, quantileSorted, stratifiedBootstrapCi, stratifiedResampleIndices } from './statsBootstrap.js';
export { type PairedUnit, type PairedComparison, type PairedOptions, comparePaired, holmAdjust } from './statsPaired.js';
