/**
 * Folder-level evaluation: pairs ground-truth and predicted NIfTI label maps by case id (the file
 * name without .nii.gz / .nii) and computes every per-case metric for one label, with the voxel
 * spacing of the ground truth. With a split, each fold's test cases are evaluated (predictions from
 * `<pred>/fold_<k>/` when that folder exists, else from `<pred>/`).
 *
 * Unlike nnU-Net's evaluator, nothing is skipped silently: a missing prediction is an error that
 * lists every missing case unless `allowMissing` is set (then the missing cases are listed in the
 * result), and a prediction or lung mask off its ground truth's grid (core's one same-grid test,
 * checked on the headers of every case before any is evaluated) is an InputError naming the case
 * and the file. Predictions without a ground truth are listed, not evaluated. With an
 * ignore label, the voxels whose ground truth holds it count in no metric (caseMetrics.ts says
 * how, for the surface metrics too), as nnU-Net's evaluate_predictions does. A mask holding a
 * value that is not an integer (0.5, NaN) is refused naming the file and the value, where a voxel
 * comparison would read it silently as background.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import {
  assertSameGrid,
  InputError,
  type ProgressReporter,
  SILENT_PROGRESS,
  type Shape3,
  type TypedArray,
} from '../core/index.js';
import { assertIntegerLabels, gridFromHeader, readNifti, readNiftiHeader, type NiftiImage } from '../io/index.js';
import { caseMetrics, type CaseMetrics } from './caseMetrics.js';
import { lungInvolvement, type LungInvolvement } from './lungs.js';
import { maskOfLabel } from './mask.js';
import type { EvaluationSplit } from '../io/index.js';

export interface EvaluateFolderOptions {
  gtDir: string;
  predDir: string;
  /** The label evaluated (voxels equal to it are foreground); 1 by default. */
  label?: number;
  /** The dataset's ignore label (dataset.json "ignore"): ground-truth voxels holding it are left out. */
  ignoreLabel?: number | null;
  /** NSD tolerance in mm; 3 by default. */
  toleranceMm?: number;
  /** Lung masks (left 1, right 2) named like the ground truth: adds lung involvement per case. */
  lungsDir?: string;
  /** Evaluate each fold's test cases instead of every ground-truth case. */
  split?: EvaluationSplit;
  /** Evaluate what is there and list missing predictions instead of failing. */
  allowMissing?: boolean;
  progress?: ProgressReporter;
}

export const EVALUATE_FOLDER_DEFAULTS = { label: 1, toleranceMm: 3, allowMissing: false } as const;

export interface EvaluatedCase {
  caseId: string;
  /** Fold index when a split was given. */
  fold: number | undefined;
  gtFile: string;
  predFile: string;
  spacingMm: Shape3;
  metrics: CaseMetrics;
  /** Lung involvement of the reference and of the predicted infection (with lungsDir). */
  lungs?: { ref: LungInvolvement; pred: LungInvolvement; lungFile: string };
}

export interface MissingPrediction {
  caseId: string;
  fold: number | undefined;
  expectedIn: string;
}

export interface FolderEvaluation {
  gtDir: string;
  predDir: string;
  label: number;
  /** The ignore label whose ground-truth voxels were left out, or null. */
  ignoreLabel: number | null;
  toleranceMm: number;
  cases: EvaluatedCase[];
  missing: MissingPrediction[];
  /** Prediction case ids with no ground truth (not evaluated). */
  unmatchedPredictions: string[];
  /** Per fold: the prediction folder used and the test case ids (with a split). */
  folds?: { fold: number; predDir: string; caseIds: string[] }[];
}

const NIFTI_ENDINGS = ['.nii.gz', '.nii'] as const;

/** Case id of a NIfTI file name, or undefined for other files. */
export function caseIdOf(fileName: string): string | undefined {
  const ending = NIFTI_ENDINGS.find((e) => fileName.endsWith(e) && fileName.length > e.length);
  return ending === undefined ? undefined : fileName.slice(0, -ending.length);
}

/** The NIfTI files of a folder by case id; InputError when the folder is missing or ids repeat. */
export function listNiftiCases(dir: string, role: string): Map<string, string> {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new InputError(`${role} folder is a file, not a folder`, { file: dir, code: 'not-folder' });
    names = readdirSync(dir).sort();
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`cannot read ${role} folder: ${(error as Error).message}`, { file: dir, code: 'not-found', cause: error });
  }
  const cases = new Map<string, string>();
  const duplicates: string[] = [];
  for (const name of names) {
    const id = caseIdOf(name);
    if (id === undefined) continue;
    const file = path.join(dir, name);
    if (!statSync(file).isFile()) continue;
    if (cases.has(id)) duplicates.push(`${path.basename(cases.get(id)!)} and ${name}`);
    else cases.set(id, file);
  }
  if (duplicates.length > 0) {
    throw new InputError(`${role} folder holds two files for one case: ${duplicates.join('; ')}`, { file: dir, code: 'duplicate-case' });
  }
  return cases;
}

function checkOptions(options: EvaluateFolderOptions): { label: number; ignoreLabel: number | null; toleranceMm: number } {
  const label = options.label ?? EVALUATE_FOLDER_DEFAULTS.label;
  const ignoreLabel = options.ignoreLabel ?? null;
  const toleranceMm = options.toleranceMm ?? EVALUATE_FOLDER_DEFAULTS.toleranceMm;
  if (!(Number.isInteger(label) && label >= 1)) throw new InputError(`label must be a positive integer, got ${label}`);
  if (ignoreLabel !== null && !(Number.isInteger(ignoreLabel) && ignoreLabel >= 1 && ignoreLabel !== label)) {
    throw new InputError(`the ignore label must be a positive integer other than the evaluated label ${label}, got ${ignoreLabel}`);
  }
  if (!(Number.isFinite(toleranceMm) && toleranceMm >= 0)) throw new InputError(`NSD tolerance must be a finite number of mm >= 0, got ${toleranceMm}`);
  return { label, ignoreLabel, toleranceMm };
}

interface Job {
  caseId: string;
  fold: number | undefined;
  gtFile: string;
  predFile: string;
}

/** The (fold, case) pairs to evaluate, the missing predictions and the per-fold folders. */
function planJobs(options: EvaluateFolderOptions, gt: Map<string, string>): Pick<FolderEvaluation, 'missing' | 'unmatchedPredictions' | 'folds'> & { jobs: Job[] } {
  const jobs: Job[] = [];
  const missing: MissingPrediction[] = [];
  if (options.split === undefined) {
    const predictions = listNiftiCases(options.predDir, 'prediction');
    for (const [caseId, gtFile] of gt) {
      const predFile = predictions.get(caseId);
      if (predFile === undefined) missing.push({ caseId, fold: undefined, expectedIn: options.predDir });
      else jobs.push({ caseId, fold: undefined, gtFile, predFile });
    }
    const unmatchedPredictions = [...predictions.keys()].filter((id) => !gt.has(id));
    return { jobs, missing, unmatchedPredictions };
  }
  const split = options.split;
  const noGroundTruth = [...new Set(split.folds.flatMap((f) => f.test).filter((id) => !gt.has(id)))];
  if (noGroundTruth.length > 0) {
    throw new InputError(`${noGroundTruth.length} test case(s) of the split have no ground truth in ${options.gtDir}: ${noGroundTruth.join(', ')}`, {
      file: split.file,
      code: 'missing-ground-truth',
    });
  }
  const folds: NonNullable<FolderEvaluation['folds']> = [];
  const unmatched = new Set<string>();
  split.folds.forEach((fold, index) => {
    const foldDir = path.join(options.predDir, `fold_${index}`);
    const predDir = existsSync(foldDir) && statSync(foldDir).isDirectory() ? foldDir : options.predDir;
    const predictions = listNiftiCases(predDir, `fold ${index} prediction`);
    for (const id of predictions.keys()) if (!gt.has(id)) unmatched.add(id);
    folds.push({ fold: index, predDir, caseIds: fold.test });
    for (const caseId of fold.test) {
      const predFile = predictions.get(caseId);
      if (predFile === undefined) missing.push({ caseId, fold: index, expectedIn: predDir });
      else jobs.push({ caseId, fold: index, gtFile: gt.get(caseId)!, predFile });
    }
  });
  return { jobs, missing, unmatchedPredictions: [...unmatched].sort(), folds };
}

function missingMessage(missing: readonly MissingPrediction[]): string {
  const lines = missing.map((m) => `  - ${m.caseId}${m.fold === undefined ? '' : ` (fold ${m.fold})`}: no ${m.caseId}.nii.gz or ${m.caseId}.nii in ${m.expectedIn}`);
  return `${missing.length} prediction(s) missing (use --allow-missing to evaluate the others):\n${lines.join('\n')}`;
}

/** A label map of the case, refused (naming the case, the role and the file) unless its values are integers. */
async function readCaseImage(file: string, caseId: string, role: string): Promise<NiftiImage> {
  try {
    const image = await readNifti(file);
    assertIntegerLabels(image.data, file, role.endsWith('mask') ? role : `${role} mask`);
    return image;
  } catch (error) {
    if (error instanceof InputError) throw new InputError(`case '${caseId}': ${role}: ${error.message}`, { code: error.code, cause: error });
    throw error;
  }
}

/**
 * Refuse (InputError naming the case and the file) a prediction or lung mask that does not lie on
 * its ground truth's grid, from the headers alone, so that a bad case is found before any is evaluated.
 */
async function checkCaseGrids(job: Job, lungFile: string | undefined): Promise<void> {
  const gridOf = async (file: string, role: string) => {
    try {
      return gridFromHeader(await readNiftiHeader(file));
    } catch (error) {
      if (error instanceof InputError) throw new InputError(`case '${job.caseId}': ${role}: ${error.message}`, { code: error.code, cause: error });
      throw error;
    }
  };
  const gt = await gridOf(job.gtFile, 'ground truth');
  const others: [string, string][] = [[job.predFile, 'the prediction'], ...(lungFile !== undefined ? [[lungFile, 'the lung mask'] as [string, string]] : [])];
  for (const [file, role] of others) {
    const grid = await gridOf(file, role.replace(/^the /, ''));
    try {
      assertSameGrid(file, grid, gt, role, `the ground truth ${job.gtFile}`);
    } catch (error) {
      if (error instanceof InputError) throw new InputError(`case '${job.caseId}': ${error.message}`, { code: error.code, cause: error });
      throw error;
    }
  }
}

/** 1 where the label map equals `label` (any stored datatype, int64 included). */
export function labelMask(data: TypedArray, label: number): Uint8Array {
  if (data instanceof BigInt64Array) {
    const wanted = BigInt(label);
    const out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = data[i] === wanted ? 1 : 0;
    return out;
  }
  return maskOfLabel(data, label);
}

/** Evaluates a prediction folder against a ground-truth folder (see the file comment). */
export async function evaluateFolder(options: EvaluateFolderOptions): Promise<FolderEvaluation> {
  const { label, ignoreLabel, toleranceMm } = checkOptions(options);
  const gt = listNiftiCases(options.gtDir, 'ground-truth');
  if (gt.size === 0) throw new InputError('ground-truth folder holds no .nii.gz or .nii files', { file: options.gtDir, code: 'no-cases' });
  const plan = planJobs(options, gt);
  if (plan.missing.length > 0 && !(options.allowMissing ?? EVALUATE_FOLDER_DEFAULTS.allowMissing)) {
    throw new InputError(missingMessage(plan.missing), { code: 'missing-prediction' });
  }
  const lungFiles = options.lungsDir === undefined ? undefined : listNiftiCases(options.lungsDir, 'lung mask');
  if (lungFiles !== undefined) {
    const noLungs = [...new Set(plan.jobs.map((j) => j.caseId))].filter((id) => !lungFiles.has(id));
    if (noLungs.length > 0) {
      throw new InputError(`${noLungs.length} case(s) have no lung mask in ${options.lungsDir}: ${noLungs.join(', ')}`, { code: 'missing-lung-mask' });
    }
  }

  for (const job of plan.jobs) await checkCaseGrids(job, lungFiles?.get(job.caseId));

  const progress = options.progress ?? SILENT_PROGRESS;
  const done = new Map<string, EvaluatedCase>(); // a flat prediction folder serves several folds: compute once
  const cases: EvaluatedCase[] = [];
  progress.start('evaluate', plan.jobs.length);
  try {
    for (const job of plan.jobs) {
      const key = `${job.gtFile}\0${job.predFile}`;
      const known = done.get(key);
      const evaluated = known ? { ...known, fold: job.fold } : await evaluateCase(job, { label, ignoreLabel, toleranceMm, lungFile: lungFiles?.get(job.caseId) });
      done.set(key, evaluated);
      cases.push(evaluated);
      progress.tick(1, job.caseId);
    }
  } finally {
    progress.stop();
  }
  return { gtDir: options.gtDir, predDir: options.predDir, label, ignoreLabel, toleranceMm, cases, ...plan };
}

async function evaluateCase(
  job: Job,
  settings: { label: number; ignoreLabel: number | null; toleranceMm: number; lungFile: string | undefined },
): Promise<EvaluatedCase> {
  const [gtImage, predImage] = await Promise.all([
    readCaseImage(job.gtFile, job.caseId, 'ground truth'),
    readCaseImage(job.predFile, job.caseId, 'prediction'),
  ]);
  const ref = { data: labelMask(gtImage.data, settings.label), shape: gtImage.shape };
  const pred = { data: labelMask(predImage.data, settings.label), shape: gtImage.shape };
  const spacingMm: Shape3 = [gtImage.spacing[0], gtImage.spacing[1], gtImage.spacing[2]];
  const ignore = settings.ignoreLabel === null ? undefined : { data: labelMask(gtImage.data, settings.ignoreLabel), shape: gtImage.shape };
  const metrics = caseMetrics(pred, ref, spacingMm, { toleranceMm: settings.toleranceMm, caseName: `case '${job.caseId}'`, ...(ignore !== undefined ? { ignore } : {}) });
  const evaluated: EvaluatedCase = { ...job, spacingMm, metrics };
  if (settings.lungFile !== undefined) {
    const lungImage = await readCaseImage(settings.lungFile, job.caseId, 'lung mask');
    const lungLabels = { data: lungImage.data instanceof BigInt64Array ? Array.from(lungImage.data, Number) : lungImage.data, shape: lungImage.shape };
    evaluated.lungs = {
      ref: lungInvolvement(lungLabels, ref, spacingMm),
      pred: lungInvolvement(lungLabels, pred, spacingMm),
      lungFile: settings.lungFile,
    };
  }
  return evaluated;
}
