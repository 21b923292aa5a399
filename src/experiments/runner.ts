/**
 * The study runner behind `lesionseg experiment`: datasets (synthesised or as given), one pooled
 * plan, the target's split, pre-training (single- and multi-lesion, once per seed), a training run
 * per (pre-trained model, arm, seed, fold), prediction of each fold's test cases, evaluation,
 * overlay slices, and results.json with the paired comparisons and the paper's findings. On a
 * finished study folder it trains nothing and rewrites results.json from the runs in seconds. Resumable at every level: finished runs (checkpoint_final) are reused,
 * an interrupted run continues from its latest checkpoint (`--resume`), existing predictions are
 * kept. Pre-training, training and prediction run as separate `lesionseg` processes (StepRunner),
 * up to `spec.jobs` at once (each with `spec.threads` threads; pre-training first, then the arms,
 * each arm's steps in order); the light steps (synth, plan, evaluate, overlays) run here. See
 * layout.ts for the folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteJsonSync, cpuInfo, InputError, parseDevice, SILENT_LOGGER, SILENT_PROGRESS, type Logger, type ProgressReporter } from '../core/index.js';
import { ignoreLabelOf, listRawCases, readDatasetJson, type RawCase } from '../io/index.js';
import { writeSynthDataset } from '../synth/index.js';
import { datasetInfo, loadPlan, planDatasets, savePlan } from '../data/index.js';
import { readEpochLog, readSplitFile, type SplitFold } from '../train/index.js';
import { evaluateFolder, F1_NOTE, writeEvaluation, type CaseMetrics } from '../eval/index.js';
import { limitedSplit, pretrainJobs, runParts, studyLayout, studyPairs, studySeeds, trainingSeed, trainJobs, type PretrainJob, type RunKey, type StudyLayout, type TrainJob } from './layout.js';
import { armTrainArgs } from './arms.js';
import { studyComparisons } from './comparisons.js';
import { studyFindings } from './findings.js';
import { runPool } from './pool.js';
import { staleRun } from './staleRun.js';
import { stepKey, StepTimings } from './timings.js';
import { writeOverlay } from './overlays.js';
import { armSummary, caseResult, foldMetrics, RESULTS_FORMAT, RESULTS_VERSION, type ArmResult, type EpochPoint, type FoldResult, type PretrainResult, type StudyResults } from './results.js';
import { specToJson, type ExperimentSpec } from './spec.js';
import type { StepRunner } from './steps.js';

export interface RunExperimentOptions {
  spec: ExperimentSpec;
  outDir: string;
  runStep: StepRunner;
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

const isFinished = (runDir: string): boolean => fs.existsSync(path.join(runDir, 'checkpoint_final.json'));
const finalCheckpoint = (runDir: string): string => path.join(runDir, 'checkpoint_final.safetensors');

function seconds(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`;
}

export async function runExperiment(options: RunExperimentOptions): Promise<StudyResults> {
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
  const plan = loadPlan(layout.plan);

  // 3. The target's split.
  const targetDir = datasetDir(spec.target.dataset);
  const targetCases = new Map(listRawCases(targetDir).map((c) => [c.id, c] as const));
  const split: SplitFold[] = spec.target.split.kind === 'file' ? readSplitFile(spec.target.split.path) : limitedSplit([...targetCases.keys()], spec.target.split.folds, spec.target.split.seed);
  for (const fold of spec.target.folds) if (fold >= split.length) throw new InputError(`fold ${fold} does not exist: the split has ${split.length} folds`, { file: spec.target.split.kind === 'file' ? spec.target.split.path : layout.split, code: 'bad-fold' });
  atomicWriteJsonSync(layout.split, { source: spec.target.split.kind === 'file' ? spec.target.split.path : `limited-annotation split (${spec.target.split.folds} folds, seed ${spec.target.split.seed})`, folds: split });

  const common = ['--plan', layout.plan, '--device', spec.device, '--precision', spec.precision, '--threads', String(spec.threads), '--resume'];
  const lengthArgs = (l: ExperimentSpec['training']): string[] => ['--epochs', String(l.epochs), '--iters-per-epoch', String(l.iterationsPerEpoch), '--val-iters', String(l.validationIterations)];
  // Caches live in DIR/preprocessed/<dataset.json name> (the layout `pretrain --preprocessed ROOT` uses), shared by every run.
  const cacheName = (name: string): string => datasetInfo(datasetDir(name)).name;
  // A multi-lesion run is its --out folder; a single-lesion run is --out/<dataset.json name>.
  const pretrainedRunDir = (job: PretrainJob): string => (job.mode === 'multi' ? layout.pretrainRun(job.model, job.seed) : path.join(layout.pretrainRun(job.model, job.seed), cacheName(job.datasets[0]!)));
  const seedArgs = (seed: number | null): string[] => ['--seed', String(trainingSeed(spec, seed))];
  const pretrain = pretrainJobs(spec);
  const train = trainJobs(spec);
  const total = pretrain.length + train.length;
  let step = 0;

  const timings = new StepTimings(layout.timings);
  // A finished run is reused only if it was trained the way its strategy trains now.
  const stale = train.map((job) => staleRun(layout.run(job), job)).filter((why): why is string => why !== null);
  if (stale.length > 0) {
    throw new InputError(
      `finished runs of this study were trained another way than their strategies train now:\n  - ${stale.slice(0, 10).join('\n  - ')}${stale.length > 10 ? `\n  - and ${stale.length - 10} more` : ''}\ndelete those run folders (and their predictions/ and evaluations/) to train them again, or use another --out`,
      { file: layout.root, code: 'stale-run' },
    );
  }

  // 4. Pre-training (independent runs).
  await runPool(pretrain.map((job) => async () => {
    const runDir = pretrainedRunDir(job);
    const label = `[${++step}/${total}] pretrain ${job.model} (${job.mode}: ${job.datasets.join(', ')})${seedText(job.seed)}`;
    if (isFinished(runDir)) {
      logger.info(`${label}: finished earlier, reused`);
      return;
    }
    const t = performance.now();
    await options.runStep(['pretrain', '--datasets', job.datasets.map(datasetDir).join(','), '--mode', job.mode, '--out', layout.pretrainRun(job.model, job.seed), '--preprocessed', path.join(layout.root, 'preprocessed'), '--workers', String(spec.workers), ...common, ...seedArgs(job.seed), ...lengthArgs(spec.pretraining)], path.join(layout.logs, `pretrain_${job.model}${seedPart(job.seed)}.log`));
    timings.add(pretrainStepKey(job), (performance.now() - t) / 1000);
    logger.info(`${label}: ${seconds(t)}`);
  }), spec.jobs);

  // 5. Training, prediction and evaluation per (model, arm, seed, fold).
  const evaluated = new Map<string, { fold: FoldResult; metrics: CaseMetrics[] }>();
  await runPool(train.map((job) => async () => {
    const runDir = layout.run(job);
    const label = `[${++step}/${total}] ${job.arm}${job.strategy === 'scratch' ? '' : ` from ${job.pretrained}`}, fold ${job.fold}${seedText(job.seed)}`;
    const t = performance.now();
    if (isFinished(runDir)) {
      logger.info(`${label}: trained earlier, reused`);
    } else {
      const source = pretrain.find((p) => p.model === job.pretrained && p.seed === job.seed);
      const pretrained = source === undefined ? [] : ['--pretrained', finalCheckpoint(pretrainedRunDir(source))];
      await options.runStep(
        ['train', '--dataset', targetDir, '--strategy', job.strategy, ...armTrainArgs(job.options), '--out', runDir, ...pretrained, '--split', layout.split, '--fold', String(job.fold), '--preprocessed', layout.preprocessed(cacheName(spec.target.dataset)), '--workers', String(spec.workers), ...common, ...seedArgs(job.seed), ...lengthArgs(spec.training)],
        path.join(layout.logs, `train_${runName(job)}.log`),
      );
      timings.add(armStepKey('train', job), (performance.now() - t) / 1000);
      logger.info(`${label}: trained in ${seconds(t)}`);
    }
    const cases = split[job.fold]!.test.map((id) => targetCases.get(id)!);
    const tp = performance.now();
    const predicted = await predictTestCases(job, runDir, cases, layout, spec, options.runStep);
    if (predicted > 0) {
      timings.add(armStepKey('predict', job), (performance.now() - tp) / 1000);
      logger.info(`${label}: predicted ${predicted} test case(s) in ${seconds(tp)}`);
    }
    evaluated.set(key(job), await evaluateArm(job, runDir, split[job.fold]!, cases, layout, spec));
  }), spec.jobs);

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
  return results;
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

function seedPart(seed: number | null): string {
  return seed === null ? '' : `_seed${seed}`;
}

function seedText(seed: number | null): string {
  return seed === null ? '' : `, seed ${seed}`;
}

/** A run's name in logs and temporary folders: <model>_<arm>[_seed<s>]_fold<K>. */
function runName(job: RunKey): string {
  return `${job.pretrained}_${job.arm}${seedPart(job.seed)}_fold${job.fold}`;
}

function pretrainStepKey(job: PretrainJob): string {
  return job.seed === null ? stepKey('pretrain', job.model) : stepKey('pretrain', job.model, `seed_${job.seed}`);
}

function armStepKey(kind: 'train' | 'predict', job: RunKey): string {
  return stepKey(kind, ...runParts(job));
}

function key(job: RunKey): string {
  return runParts(job).join('\0');
}

/**
 * Predict the test cases of a fold that have no mask yet with the run's final checkpoint, as one
 * `lesionseg predict` step over a folder of links to their images (masks are written atomically,
 * so an existing one is complete). Returns how many were predicted.
 */
async function predictTestCases(job: TrainJob, runDir: string, cases: readonly RawCase[], layout: StudyLayout, spec: ExperimentSpec, runStep: StepRunner): Promise<number> {
  const predictionDir = layout.predictions(job);
  const todo = cases.filter((c) => !fs.existsSync(layout.prediction(job, c.id)));
  if (todo.length === 0) return 0;
  const name = runName(job);
  const inputDir = path.join(layout.root, 'tmp', `predict_${name}`);
  fs.rmSync(inputDir, { recursive: true, force: true });
  fs.mkdirSync(inputDir, { recursive: true });
  try {
    for (const c of todo) for (const image of c.images) fs.symlinkSync(path.resolve(image), path.join(inputDir, path.basename(image)));
    await runStep(
      ['predict', '-m', finalCheckpoint(runDir), '-i', inputDir, '-o', predictionDir, spec.prediction.tta ? '--tta' : '--no-tta', '--device', spec.device, '--precision', spec.precision, '--threads', String(spec.threads)],
      path.join(layout.logs, `predict_${name}.log`),
    );
  } finally {
    fs.rmSync(inputDir, { recursive: true, force: true });
  }
  return todo.length;
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
