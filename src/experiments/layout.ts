/**
 * Where a study keeps everything (one folder, DIR) and the pure expansion of a spec into jobs:
 *   DIR/spec.json                                   the spec as run
 *   DIR/datasets/<name>/                            synthetic datasets (folders named in the spec stay where they are)
 *   DIR/plan.json                                   one plan pooled over every dataset (so transfer topologies match)
 *   DIR/split.json                                  the target's split
 *   DIR/preprocessed/<dataset.json name>/           preprocessed caches, shared by all runs (pretrain's layout)
 *   DIR/pretrain/<model>/                           pre-training runs: multi/ is the multi-lesion run;
 *                                                   <source>/<dataset.json name>/ a single-lesion run
 *   DIR/runs/<pretrained>/<arm>/fold_K/             target training runs (<arm>: the arm's name, which
 *                                                   is the strategy's unless a variant is named)
 *   DIR/predictions/<pretrained>/<arm>/fold_K/      predicted masks of the fold's test cases
 *   DIR/evaluations/<pretrained>/<arm>/fold_K.json
 *   DIR/overlays/<case>.json                        axial slices for the overlay figures
 *   DIR/logs/*.log                                  output of every spawned step (or Slurm job)
 *   DIR/slurm/<step>.sbatch, DIR/slurm/jobs.json    Slurm executor: each step's job script; the job ids
 *   DIR/tmp/predict_<arm>/                          links to the images a prediction step reads (removed after it)
 *   DIR/timings.json                                seconds of every pre-training, training and prediction step run
 *   DIR/results.json, DIR/tables/, DIR/report/
 * With `seeds` in the spec, every pre-training, run, prediction and evaluation folder gains a seed
 * level before the fold: pretrain/<model>/seed_<s>/, runs/<pretrained>/<arm>/seed_<s>/fold_K/, ...
 * Without it the layout is exactly the one above (a study folder from before seeds is reused).
 */
import * as path from 'node:path';
import { Rng } from '../core/index.js';
import type { SplitFold } from '../train/index.js';
import { MULTI_LESION, NO_PRETRAINING, type ExperimentSpec } from './spec.js';
import type { TransferStrategy, TransferStrategyOptions } from '../transfer/index.js';

/** One trained target run: an arm with a model, a fold and a seed (null: the one-seed layout). */
export interface RunKey {
  pretrained: string;
  arm: string;
  fold: number;
  seed: number | null;
}

export interface StudyLayout {
  root: string;
  spec: string;
  plan: string;
  split: string;
  results: string;
  /** Seconds of every step run so far, by step key (`pretrain/<model>`, `train/<arm>/<fold>`, `predict/<arm>/<fold>`). */
  timings: string;
  tables: string;
  report: string;
  overlays: string;
  logs: string;
  dataset(name: string): string;
  preprocessed(name: string): string;
  pretrainRun(model: string, seed: number | null): string;
  run(key: RunKey): string;
  predictions(key: RunKey): string;
  /** The predicted mask of one case (what `lesionseg predict` writes into that folder). */
  prediction(key: RunKey, caseId: string): string;
  evaluation(key: RunKey): string;
}

/** The folder parts of a run below runs/ (predictions/, evaluations/): <pretrained>/<arm>/[seed_<s>/]fold_K. */
export function runParts(key: RunKey): string[] {
  return [key.pretrained, key.arm, ...(key.seed === null ? [] : [`seed_${key.seed}`]), `fold_${key.fold}`];
}

export function studyLayout(root: string): StudyLayout {
  const at = (...parts: string[]): string => path.join(root, ...parts);
  return {
    root,
    spec: at('spec.json'),
    plan: at('plan.json'),
    split: at('split.json'),
    results: at('results.json'),
    timings: at('timings.json'),
    tables: at('tables'),
    report: at('report'),
    overlays: at('overlays'),
    logs: at('logs'),
    dataset: (name) => at('datasets', name),
    preprocessed: (name) => at('preprocessed', name),
    pretrainRun: (model, seed) => (seed === null ? at('pretrain', model) : at('pretrain', model, `seed_${seed}`)),
    run: (key) => at('runs', ...runParts(key)),
    predictions: (key) => at('predictions', ...runParts(key)),
    prediction: (key, caseId) => at('predictions', ...runParts(key), `${caseId}.nii.gz`),
    evaluation: (key) => {
      const parts = runParts(key);
      return at('evaluations', ...parts.slice(0, -1), `${parts.at(-1)!}.json`);
    },
  };
}

export interface PretrainJob {
  /** 'multi' or a source dataset name. */
  model: string;
  mode: 'single' | 'multi';
  datasets: string[];
  /** The training seed's folder level (null: the one-seed layout). */
  seed: number | null;
}

/** An arm with one pre-trained model. */
export interface StudyPair {
  pretrained: string;
  strategy: TransferStrategy;
  /** The arm's name (its folders' name). */
  arm: string;
  options: TransferStrategyOptions;
}

export type TrainJob = StudyPair & { fold: number; seed: number | null };

/** The seeds' folder levels of a spec: its `seeds`, or [null] for a one-seed study. */
export function studySeeds(spec: Pick<ExperimentSpec, 'seeds'>): (number | null)[] {
  return spec.seeds ?? [null];
}

/** The seed a job trains with: its own, or the spec's `seed` in a one-seed study. */
export function trainingSeed(spec: Pick<ExperimentSpec, 'seed'>, seed: number | null): number {
  return seed ?? spec.seed;
}

/** The (pre-trained model, arm) pairs of a spec: 'none' goes with scratch only, every model with every other arm (or the arm's own models). */
export function studyPairs(spec: Pick<ExperimentSpec, 'pretrained' | 'strategies'>): StudyPair[] {
  const pairs: StudyPair[] = [];
  for (const pretrained of spec.pretrained) {
    for (const arm of spec.strategies) {
      if ((pretrained === NO_PRETRAINING) !== (arm.strategy === 'scratch')) continue;
      if (arm.pretrained !== null && !arm.pretrained.includes(pretrained)) continue;
      pairs.push({ pretrained, strategy: arm.strategy, arm: arm.name, options: arm.options });
    }
  }
  return pairs;
}

/** The pre-training runs a spec needs (only models some arm uses), once per seed. */
export function pretrainJobs(spec: Pick<ExperimentSpec, 'pretrained' | 'strategies' | 'sources' | 'seeds'>): PretrainJob[] {
  const used = new Set(studyPairs(spec).map((p) => p.pretrained));
  const jobs: PretrainJob[] = [];
  for (const seed of studySeeds(spec)) {
    for (const model of spec.pretrained) {
      if (model === NO_PRETRAINING || !used.has(model)) continue;
      jobs.push(model === MULTI_LESION ? { model, mode: 'multi', datasets: [...spec.sources], seed } : { model, mode: 'single', datasets: [model], seed });
    }
  }
  return jobs;
}

/** Target training runs, seed by seed and fold by fold (so a partial study has complete seeds and folds first). */
export function trainJobs(spec: Pick<ExperimentSpec, 'pretrained' | 'strategies' | 'target' | 'seeds'>): TrainJob[] {
  const pairs = studyPairs(spec);
  return studySeeds(spec).flatMap((seed) => spec.target.folds.flatMap((fold) => pairs.map((pair) => ({ ...pair, fold, seed }))));
}

/**
 * The limited-annotation split of COVID-19-CT-Seg's Task 1, for any case list: the sorted ids are
 * shuffled with the seed and dealt into `folds` groups; fold k trains on group k and tests on
 * every other case (20 cases, 5 folds: 4 train / 16 test, as the benchmark).
 */
export function limitedSplit(caseIds: readonly string[], folds: number, seed: number): SplitFold[] {
  if (caseIds.length < folds) throw new RangeError(`a ${folds}-fold split needs at least ${folds} cases, got ${caseIds.length}`);
  const ids = [...caseIds].sort();
  const rng = new Rng(seed).fork('limited-split');
  for (let i = ids.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const groups: string[][] = Array.from({ length: folds }, () => []);
  ids.forEach((id, i) => groups[i % folds]!.push(id));
  return groups.map((group) => {
    const train = [...group].sort();
    return { train, test: ids.filter((id) => !group.includes(id)).sort() };
  });
}
