/**
 * The heavy steps of a study as data, one description for every executor: each pre-training, each
 * arm's training and each arm's prediction is a `lesionseg` command line with a log file, the
 * steps it waits for, a test of whether its output is complete (a finished run's checkpoint_final,
 * every test case's mask) and, for prediction, the folder of links to the images it reads. The
 * local executor runs these as child processes, the Slurm executor as jobs; neither builds
 * arguments of its own. Pure apart from the files the checks read and `prepare` writes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RawCase } from '../io/index.js';
import { datasetInfo } from '../data/index.js';
import { readEpochLog, type SplitFold } from '../train/index.js';
import { pretrainJobs, runParts, trainingSeed, trainJobs, type PretrainJob, type RunKey, type StudyLayout, type TrainJob } from './layout.js';
import { armTrainArgs } from './arms.js';
import type { ExperimentSpec } from './spec.js';
import { stepKey, type StepKind } from './timings.js';

export interface StudyStep {
  /** Unique in the study, and its key in timings.json: pretrain/multi, train/none/scratch/fold_0, predict/... */
  key: string;
  kind: StepKind;
  /** A file-safe name (its log's and its job script's): pretrain_multi, train_none_scratch_fold0. */
  name: string;
  /** How messages name it: "scratch, fold 0", "pretrain multi (multi: tumor, gtv)". */
  label: string;
  /** The `lesionseg` arguments (training steps carry --resume, so running a step again continues it). */
  args: readonly string[];
  logFile: string;
  /** Keys of the steps that must be done first. */
  after: readonly string[];
  /** Whether its output is complete. */
  isDone(): boolean;
  /** How far it got (epochs in its log; predicted masks): a resubmission that moved it on is progress. */
  progress(): number;
  /** Run before every start (prediction: links to the images not predicted yet). */
  prepare(): void;
  /** Run once it is done (prediction: the links are removed). */
  cleanup(): void;
}

export interface StudyStepInputs {
  spec: ExperimentSpec;
  layout: StudyLayout;
  split: readonly SplitFold[];
  targetCases: ReadonlyMap<string, RawCase>;
}

/** Where a dataset of the spec lives: its folder as imported, or the study's synthetic copy. */
export function studyDatasetDir(spec: ExperimentSpec, layout: StudyLayout, name: string): string {
  const source = spec.datasets[name]!;
  return source.kind === 'folder' ? source.path : layout.dataset(name);
}

function seedPart(seed: number | null): string {
  return seed === null ? '' : `_seed${seed}`;
}

function seedText(seed: number | null): string {
  return seed === null ? '' : `, seed ${seed}`;
}

/** A run's name in logs and temporary folders: <model>_<arm>[_seed<s>]_fold<K>. */
export function runName(job: RunKey): string {
  return `${job.pretrained}_${job.arm}${seedPart(job.seed)}_fold${job.fold}`;
}

export function pretrainStepKey(job: PretrainJob): string {
  return job.seed === null ? stepKey('pretrain', job.model) : stepKey('pretrain', job.model, `seed_${job.seed}`);
}

export function armStepKey(kind: 'train' | 'predict', job: RunKey): string {
  return stepKey(kind, ...runParts(job));
}

export function armLabelText(job: TrainJob): string {
  return `${job.arm}${job.strategy === 'scratch' ? '' : ` from ${job.pretrained}`}, fold ${job.fold}${seedText(job.seed)}`;
}

const isFinished = (runDir: string): boolean => fs.existsSync(path.join(runDir, 'checkpoint_final.json'));
export const finalCheckpoint = (runDir: string): string => path.join(runDir, 'checkpoint_final.safetensors');
const epochsRun = (runDir: string): number => readEpochLog(path.join(runDir, 'log.jsonl')).length;

/** The study's folders and names a spec's steps use, for the runner and the status listing alike. */
export function studyPaths(spec: ExperimentSpec, layout: StudyLayout) {
  // Caches live in DIR/preprocessed/<dataset.json name> (the layout `pretrain --preprocessed ROOT` uses), shared by every run.
  const cacheName = (name: string): string => datasetInfo(studyDatasetDir(spec, layout, name)).name;
  // A multi-lesion run is its --out folder; a single-lesion run is --out/<dataset.json name>.
  const pretrainedRunDir = (job: PretrainJob): string => (job.mode === 'multi' ? layout.pretrainRun(job.model, job.seed) : path.join(layout.pretrainRun(job.model, job.seed), cacheName(job.datasets[0]!)));
  return { cacheName, pretrainedRunDir };
}

/**
 * Every heavy step of the study in the order they are best started: the pre-trainings, then each
 * run's training followed by its prediction (a training after the pre-training it starts from).
 */
export function studySteps({ spec, layout, split, targetCases }: StudyStepInputs): StudyStep[] {
  const datasetDir = (name: string): string => studyDatasetDir(spec, layout, name);
  const { cacheName, pretrainedRunDir } = studyPaths(spec, layout);
  const targetDir = datasetDir(spec.target.dataset);
  const common = ['--plan', layout.plan, '--device', spec.device, '--precision', spec.precision, '--threads', String(spec.threads), '--resume'];
  const lengthArgs = (l: ExperimentSpec['training']): string[] => ['--epochs', String(l.epochs), '--iters-per-epoch', String(l.iterationsPerEpoch), '--val-iters', String(l.validationIterations)];
  const seedArgs = (seed: number | null): string[] => ['--seed', String(trainingSeed(spec, seed))];
  const pretrain = pretrainJobs(spec);
  const steps: StudyStep[] = [];
  const nothing = (): void => {};

  for (const job of pretrain) {
    const runDir = pretrainedRunDir(job);
    steps.push({
      key: pretrainStepKey(job),
      kind: 'pretrain',
      name: `pretrain_${job.model}${seedPart(job.seed)}`,
      label: `pretrain ${job.model} (${job.mode}: ${job.datasets.join(', ')})${seedText(job.seed)}`,
      args: ['pretrain', '--datasets', job.datasets.map(datasetDir).join(','), '--mode', job.mode, '--out', layout.pretrainRun(job.model, job.seed), '--preprocessed', path.join(layout.root, 'preprocessed'), '--workers', String(spec.workers), ...common, ...seedArgs(job.seed), ...lengthArgs(spec.pretraining)],
      logFile: path.join(layout.logs, `pretrain_${job.model}${seedPart(job.seed)}.log`),
      after: [],
      isDone: () => isFinished(runDir),
      progress: () => epochsRun(runDir),
      prepare: nothing,
      cleanup: nothing,
    });
  }

  for (const job of trainJobs(spec)) {
    const runDir = layout.run(job);
    const name = runName(job);
    const source = pretrain.find((p) => p.model === job.pretrained && p.seed === job.seed);
    const pretrained = source === undefined ? [] : ['--pretrained', finalCheckpoint(pretrainedRunDir(source))];
    const trainKey = armStepKey('train', job);
    steps.push({
      key: trainKey,
      kind: 'train',
      name: `train_${name}`,
      label: armLabelText(job),
      args: ['train', '--dataset', targetDir, '--strategy', job.strategy, ...armTrainArgs(job.options), '--out', runDir, ...pretrained, '--split', layout.split, '--fold', String(job.fold), '--preprocessed', layout.preprocessed(cacheName(spec.target.dataset)), '--workers', String(spec.workers), ...common, ...seedArgs(job.seed), ...lengthArgs(spec.training)],
      logFile: path.join(layout.logs, `train_${name}.log`),
      after: source === undefined ? [] : [pretrainStepKey(source)],
      isDone: () => isFinished(runDir),
      progress: () => epochsRun(runDir),
      prepare: nothing,
      cleanup: nothing,
    });

    // Prediction reads a folder of links to the images of the fold's test cases that have no mask
    // yet (masks are written atomically, so an existing one is complete).
    const cases = split[job.fold]!.test.map((id) => targetCases.get(id)!);
    const todo = (): RawCase[] => cases.filter((c) => !fs.existsSync(layout.prediction(job, c.id)));
    const inputDir = path.join(layout.root, 'tmp', `predict_${name}`);
    steps.push({
      key: armStepKey('predict', job),
      kind: 'predict',
      name: `predict_${name}`,
      label: armLabelText(job),
      args: ['predict', '-m', finalCheckpoint(runDir), '-i', inputDir, '-o', layout.predictions(job), spec.prediction.tta ? '--tta' : '--no-tta', '--device', spec.device, '--precision', spec.precision, '--threads', String(spec.threads)],
      logFile: path.join(layout.logs, `predict_${name}.log`),
      after: [trainKey],
      isDone: () => todo().length === 0,
      progress: () => cases.length - todo().length,
      prepare: () => {
        fs.rmSync(inputDir, { recursive: true, force: true });
        fs.mkdirSync(inputDir, { recursive: true });
        for (const c of todo()) for (const image of c.images) fs.symlinkSync(path.resolve(image), path.join(inputDir, path.basename(image)));
      },
      cleanup: () => fs.rmSync(inputDir, { recursive: true, force: true }),
    });
  }
  return steps;
}
