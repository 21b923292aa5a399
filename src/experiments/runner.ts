/**
 * The study runner behind `lesionseg experiment`: datasets (synthesised or as given), one pooled
 * plan, the target's split, pre-training (single- and multi-lesion, once per seed), a training run
 * per (pre-trained model, arm, seed, fold), prediction of each fold's test cases, evaluation,
 * overlay slices, and results.json with the paired comparisons and the paper's findings. On a
 * finished study folder it trains nothing and rewrites results.json from the runs in seconds. Resumable at every level: finished runs (checkpoint_final) are reused,
 * an interrupted run continues from its latest checkpoint (`--resume`), existing predictions are
 * kept. Pre-training, training and prediction are the study's steps (studySteps.ts), run by an
 * executor: separate `lesionseg` processes here, up to `spec.jobs` at once with `spec.threads`
 * threads each (executor.ts), or Slurm jobs (slurm.ts); the light steps (synth, plan, evaluate,
 * overlays) run here. See
 * layout.ts for the folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteJsonSync, cpuInfo, InputError, LesionsegError, parseDevice, SILENT_LOGGER, SILENT_PROGRESS, type Logger, type ProgressReporter } from '../core/index.js';
import { ignoreLabelOf, listRawCases, readDatasetJson, type RawCase } from '../io/index.js';
import { writeSynthDataset } from '../synth/index.js';
import { loadPlan, planDatasets, savePlan } from '../data/index.js';
import { readEpochLog, readSplitFile, runEnvironment, type SplitFold } from '../train/index.js';
import { evaluateFolder, F1_NOTE, writeEvaluation, type CaseMetrics } from '../eval/index.js';
import { limitedSplit, pretrainJobs, runParts, studyLayout, studyPairs, studySeeds, trainJobs, type PretrainJob, type RunKey, type StudyLayout, type TrainJob } from './layout.js';
import { studyComparisons } from './comparisons.js';
import { studyFindings } from './findings.js';
import { localExecutor, type ExecutorOutcome, type StepExecutor } from './executor.js';
import { pretrainStepKey, armStepKey, studyPaths, studySteps, type StudyStep } from './studySteps.js';
import { staleRun } from './staleRun.js';
import { StepTimings } from './timings.js';
import { writeOverlay } from './overlays.js';
import { armSummary, caseResult, foldMetrics, RESULTS_FORMAT, RESULTS_VERSION, type ArmResult, type EpochPoint, type FoldResult, type PretrainResult, type StudyResults } from './results.js';
import { specToJson, type ExperimentSpec } from './spec.js';
import type { StepRunner } from './steps.js';

export interface RunExperimentOptions {
  spec: ExperimentSpec;
  outDir: string;
  /** Where the heavy steps run (default: child processes through runStep, spec.jobs at once). */
  executor?: StepExecutor;
  /** Starts a `lesionseg` step here (the local executor's). */
  runStep?: StepRunner;
  logger?: Logger;
  progress?: ProgressReporter;
  /** Overlay figures: how many test cases of the first fold (default 2). */
  overlayCases?: number;
  /** Bootstrap resamples of each comparison (default 10,000). */
  bootstrapResamples?: number;
}

/** Spec keys that may change between calls on the same folder (they extend the grid or change resources only). */
const MUTABLE_SPEC_KEYS = new Set(['name', 'pretrained', 'strategies', 'threads', 'jobs', 'workers', 'prediction', 'target', 'executor', 'slurm']);

function checkSameStudy(layout: StudyLayout, spec: ExperimentSpec): void {
  if (!fs.existsSync(layout.spec)) return;
  const before = JSON.parse(fs.readFileSync(layout.spec, 'utf8')) as Record<string, unknown>;
  const now = specToJson(spec);
  const changed = [...new Set([...Object.keys(now), ...Object.keys(before)])].filter((key) => {
    if (key === 'target') {
      const { folds: _a, ...restBefore } = (before.target ?? {}) as Record<string, unknown>;
      const { folds: _b, ...restNow } = now.target as Record<string, unknown>;
      return JSON.stringify(restBefore) !== JSON.stringify(restNow);
    }
    // More or fewer seeds extend or shrink the grid; seeds or none is another folder layout.
    if (key === 'seeds') return (before.seeds === undefined) !== (now.seeds === undefined);
    return !MUTABLE_SPEC_KEYS.has(key) && JSON.stringify(before[key]) !== JSON.stringify(now[key]);
  });
  if (changed.length > 0) {
    throw new InputError(`the study folder was run with another spec (${changed.join(', ')} differ); use another --out, or delete the folder to start again`, { file: layout.spec, code: 'spec-mismatch' });
  }
}

function epochPoints(runDir: string): EpochPoint[] {
  return readEpochLog(path.join(runDir, 'log.jsonl')).map((r) => ({ epoch: r.epoch, trainLoss: r.train_loss, valLoss: r.val_loss, pseudoDice: r.pseudo_dice, lr: r.lr, seconds: r.epoch_seconds }));
}


function seconds(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`;
}

/** What a study call ended with: the results, or (Slurm --detach) the jobs it submitted. */
export type ExperimentOutcome = { kind: 'results'; results: StudyResults } | Extract<ExecutorOutcome, { kind: 'detached' }>;

const missingRunner = (): Promise<void> => Promise.reject(new LesionsegError('no-executor', 'runExperiment needs an executor or a runStep'));

/** Run the study and return its results (an executor that detaches is an error here: use startExperiment). */
export async function runExperiment(options: RunExperimentOptions): Promise<StudyResults> {
  const outcome = await startExperiment(options);
  if (outcome.kind === 'detached') throw new LesionsegError('detached', `the study's ${outcome.jobs.length} job(s) were submitted and not waited for (${outcome.registry})`);
  return outcome.results;
}

/** Run the study: every step not done yet, then evaluation, comparisons and results.json (see the file comment). */
export async function startExperiment(options: RunExperimentOptions): Promise<ExperimentOutcome> {
  const started = performance.now();
  const { spec } = options;
  const logger = options.logger ?? SILENT_LOGGER;
  const progress = options.progress ?? SILENT_PROGRESS;
  const layout = studyLayout(path.resolve(options.outDir));
  parseDevice(spec.device); // an unknown device is an error before anything runs
  checkSameStudy(layout, spec);
  fs.mkdirSync(layout.root, { recursive: true });
  atomicWriteJsonSync(layout.spec, specToJson(spec));

  // 1. Datasets.
  const datasetDir = (name: string): string => {
    const source = spec.datasets[name]!;
    return source.kind === 'folder' ? source.path : layout.dataset(name);
  };
  const used = [spec.target.dataset, ...spec.sources];
  for (const name of used) {
    const source = spec.datasets[name]!;
    if (source.kind === 'folder') {
      if (!fs.existsSync(path.join(source.path, 'dataset.json'))) throw new InputError(`dataset '${name}' has no dataset.json (import it first: lesionseg import ...)`, { file: source.path, code: 'not-found' });
      continue;
    }
    await writeSynthDataset({ kind: source.lesion, cases: source.cases, out: layout.dataset(name), seed: source.seed, size: source.size, progress });
  }

  // 2. One plan pooled over every dataset, so that every pre-trained model fits every target network.
  if (!fs.existsSync(layout.plan)) {
    const t = performance.now();
    savePlan(layout.plan, await planDatasets(used.map(datasetDir), spec.preset, { progress }));
    logger.info(`plan (${spec.preset}) over ${used.join(', ')}: ${seconds(t)}`);
  }
  loadPlan(layout.plan); // read once, so that a damaged plan is refused before any step starts

  // 3. The target's split.
  const targetDir = datasetDir(spec.target.dataset);
  const targetCases = new Map(listRawCases(targetDir).map((c) => [c.id, c] as const));
  const split: SplitFold[] = spec.target.split.kind === 'file' ? readSplitFile(spec.target.split.path) : limitedSplit([...targetCases.keys()], spec.target.split.folds, spec.target.split.seed);
  for (const fold of spec.target.folds) if (fold >= split.length) throw new InputError(`fold ${fold} does not exist: the split has ${split.length} folds`, { file: spec.target.split.kind === 'file' ? spec.target.split.path : layout.split, code: 'bad-fold' });
  atomicWriteJsonSync(layout.split, { source: spec.target.split.kind === 'file' ? spec.target.split.path : `limited-annotation split (${spec.target.split.folds} folds, seed ${spec.target.split.seed})`, folds: split });

  const steps = studySteps({ spec, layout, split, targetCases });
  const { pretrainedRunDir } = studyPaths(spec, layout);
  const pretrain = pretrainJobs(spec);
  const train = trainJobs(spec);
  const total = steps.filter((s) => s.kind !== 'predict').length;
  const ordinal = new Map(steps.filter((s) => s.kind !== 'predict').map((s, i) => [s.key, i + 1]));
  const trainKeyOf = new Map(steps.filter((s) => s.kind === 'predict').map((s) => [s.key, s.after[0]!]));
  const tag = (step: StudyStep): string => `[${ordinal.get(step.kind === 'predict' ? trainKeyOf.get(step.key)! : step.key)}/${total}] ${step.label}`;

  const timings = new StepTimings(layout.timings);
  // A finished run is reused only if it was trained the way its strategy trains now.
  const stale = train.map((job) => staleRun(layout.run(job), job)).filter((why): why is string => why !== null);
  if (stale.length > 0) {
    throw new InputError(
      `finished runs of this study were trained another way than their strategies train now:\n  - ${stale.slice(0, 10).join('\n  - ')}${stale.length > 10 ? `\n  - and ${stale.length - 10} more` : ''}\ndelete those run folders (and their predictions/ and evaluations/) to train them again, or use another --out`,
      { file: layout.root, code: 'stale-run' },
    );
  }

  // 4. Pre-training, training and prediction: the executor's (child processes here, or Slurm jobs).
  const executor = options.executor ?? localExecutor(options.runStep ?? missingRunner, spec.jobs);
  const outcome = await executor.run(steps, {
      reused: (step) => {
        if (step.kind === 'pretrain') logger.info(`${tag(step)}: finished earlier, reused`);
        else if (step.kind === 'train') logger.info(`${tag(step)}: trained earlier, reused`);
      },
      finished: (step, stepSeconds) => {
        if (stepSeconds !== null) timings.add(step.key, stepSeconds);
        const took = stepSeconds === null ? '' : ` in ${stepSeconds.toFixed(1)} s`;
        if (step.kind === 'pretrain') logger.info(`${tag(step)}: pre-trained${took}`);
        else if (step.kind === 'train') logger.info(`${tag(step)}: trained${took}`);
        else logger.info(`${tag(step)}: predicted its test case(s)${took}`);
      },
  });
  if (outcome.kind === 'detached') return outcome;

  // 5. Evaluation per (model, arm, seed, fold), here.
  const evaluated = new Map<string, { fold: FoldResult; metrics: CaseMetrics[] }>();
  for (const job of train) {
    const cases = split[job.fold]!.test.map((id) => targetCases.get(id)!);
    evaluated.set(key(job), await evaluateArm(job, layout.run(job), split[job.fold]!, cases, layout, spec));
  }

  // 6. Overlay slices of the first fold's test cases.
  const overlays = await writeOverlays(spec, layout, evaluated, targetCases, options.overlayCases ?? 2);

  // 7. Paired comparisons and the paper's findings (pure, from the evaluated runs).
  const arms = armResults(spec, evaluated);
  const comparisons = studyComparisons(arms, { seed: spec.seed, ...(options.bootstrapResamples !== undefined ? { resamples: options.bootstrapResamples } : {}) });

  const results: StudyResults = {
    format: RESULTS_FORMAT,
    version: RESULTS_VERSION,
    name: spec.name,
    createdAt: new Date().toISOString(),
    wallSeconds: (performance.now() - started) / 1000,
    stepSeconds: timings.summarise([
      ...pretrain.map((job) => ({ kind: 'pretrain' as const, key: pretrainStepKey(job) })),
      ...train.flatMap((job) => (['train', 'predict'] as const).map((kind) => ({ kind, key: armStepKey(kind, job) }))),
    ]),
    hardware: cpuInfo(),
    environment: runEnvironment(spec.threads),
    target: { dataset: spec.target.dataset, label: spec.target.label, toleranceMm: spec.target.toleranceMm, folds: spec.target.folds },
    f1Note: F1_NOTE,
    arms,
    pretraining: pretrain.map((job: PretrainJob): PretrainResult => {
      const runDir = pretrainedRunDir(job);
      const epochs = epochPoints(runDir);
      const { seed, ...rest } = job;
      return { ...rest, ...(seed !== null ? { seed } : {}), runDir: path.relative(layout.root, runDir), epochs, secondsPerEpoch: epochs.length > 0 ? epochs.reduce((s, e) => s + e.seconds, 0) / epochs.length : null };
    }),
    overlays: overlays.map((file) => path.relative(layout.root, file)),
    spec: specToJson(spec),
    comparisons,
    findings: studyFindings(arms, comparisons),
  };
  atomicWriteJsonSync(layout.results, results);
  return { kind: 'results', results };
}

/** The study's arms from the evaluated runs: one per (model, arm), its folds seed by seed. */
function armResults(spec: ExperimentSpec, evaluated: Map<string, { fold: FoldResult }>): ArmResult[] {
  return studyPairs(spec).map((pair): ArmResult => {
    const folds = studySeeds(spec).flatMap((seed) => spec.target.folds.map((fold) => evaluated.get(key({ ...pair, fold, seed }))!.fold));
    const options = Object.fromEntries(Object.entries(pair.options).filter(([, v]) => v !== undefined)) as Record<string, string>;
    return {
      pretrained: pair.pretrained,
      strategy: pair.strategy,
      name: pair.arm,
      ...(Object.keys(options).length > 0 ? { options } : {}),
      ...(spec.seeds !== null ? { seeds: [...spec.seeds] } : {}),
      folds,
      summary: armSummary(folds),
    };
  });
}

function key(job: RunKey): string {
  return runParts(job).join('\0');
}

async function evaluateArm(
  job: TrainJob,
  runDir: string,
  fold: SplitFold,
  cases: readonly RawCase[],
  layout: StudyLayout,
  spec: ExperimentSpec,
): Promise<{ fold: FoldResult; metrics: CaseMetrics[] }> {
  const predictionDir = layout.predictions(job);
  const targetDir = path.dirname(path.dirname(cases[0]!.label!));
  const evaluation = await evaluateFolder({
    gtDir: path.join(targetDir, 'labelsTr'),
    predDir: predictionDir,
    label: spec.target.label,
    toleranceMm: spec.target.toleranceMm,
    split: { file: layout.split, folds: [fold] },
    // nnU-Net's ignore label (dataset.json `ignore`): its voxels count in no metric.
    ignoreLabel: ignoreLabelOf(readDatasetJson(targetDir).labels),
    ...(spec.target.lungs !== null ? { lungsDir: spec.target.lungs } : {}),
  });
  writeEvaluation(evaluation, { jsonPath: layout.evaluation(job) });
  const metrics = evaluation.cases.map((c) => c.metrics);
  const epochs = epochPoints(runDir);
  return {
    metrics,
    fold: {
      fold: job.fold,
      ...(job.seed !== null ? { seed: job.seed } : {}),
      runDir: path.relative(layout.root, runDir),
      predictionDir: path.relative(layout.root, predictionDir),
      cases: evaluation.cases.map((c) => caseResult(c.caseId, c.metrics)),
      metrics: foldMetrics(metrics, epochs),
      epochs,
    },
  };
}

async function writeOverlays(
  spec: ExperimentSpec,
  layout: StudyLayout,
  evaluated: Map<string, { fold: FoldResult; metrics: CaseMetrics[] }>,
  targetCases: Map<string, RawCase>,
  count: number,
): Promise<string[]> {
  const fold = spec.target.folds[0];
  const seed = studySeeds(spec)[0]!;
  const pairs = studyPairs(spec);
  if (fold === undefined || pairs.length === 0 || count === 0) return [];
  // Cases ranked by ground-truth lesion volume: the largest and the median make the figures (the first seed's runs).
  const first = evaluated.get(key({ ...pairs[0]!, fold, seed }))!;
  const ranked = first.fold.cases.map((c, i) => ({ caseId: c.caseId, volume: first.metrics[i]!.refVolumeMl })).filter((c) => c.volume > 0).sort((a, b) => b.volume - a.volume);
  const chosen = [ranked[0], ranked[Math.floor(ranked.length / 2)]].filter((c, i, all): c is { caseId: string; volume: number } => c !== undefined && all.findIndex((d) => d?.caseId === c.caseId) === i).slice(0, count);
  const arms = pairs.map((pair) => ({ pretrained: pair.pretrained, strategy: pair.strategy, arm: pair.arm, predictionDir: layout.predictions({ ...pair, fold, seed }) }));
  const files: string[] = [];
  for (const c of chosen) files.push(await writeOverlay(targetCases.get(c.caseId)!, fold, spec.target.label, arms, layout.overlays));
  return files;
}
