/**
 * Where a study keeps everything (one folder, DIR) and the pure expansion of a spec into jobs:
 *   DIR/spec.json                                   the spec as run
 *   DIR/datasets/<name>/                            synthetic datasets (folders named in the spec stay where they are)
 *   DIR/plan.json                                   one plan pooled over every dataset (so transfer topologies match)
 *   DIR/split.json                                  the target's split
 *   DIR/preprocessed/<dataset.json name>/           preprocessed caches, shared by all runs (pretrain's layout)
 *   DIR/pretrain/<model>/                           pre-training runs: multi/ is the multi-lesion run;
 *                                                   <source>/<dataset.json name>/ a single-lesion run
 *   DIR/runs/<pretrained>/<strategy>/fold_K/        target training runs
 *   DIR/predictions/<pretrained>/<strategy>/fold_K/ predicted masks of the fold's test cases
 *   DIR/evaluations/<pretrained>/<strategy>/fold_K.json
 *   DIR/overlays/<case>.json                        axial slices for the overlay figures
 *   DIR/logs/*.log                                  output of every spawned step
 *   DIR/tmp/predict_<arm>/                          links to the images a prediction step reads (removed after it)
 *   DIR/timings.json                                seconds of every pre-training, training and prediction step run
 *   DIR/results.json, DIR/tables/, DIR/report/
 */
import * as path from 'node:path';
import { Rng } from '../core/index.js';
import type { SplitFold } from '../train/index.js';
import { MULTI_LESION, NO_PRETRAINING, type ExperimentSpec } from './spec.js';
import type { TransferStrategy } from '../transfer/index.js';

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
  pretrainRun(model: string): string;
  run(pretrained: string, strategy: string, fold: number): string;
  predictions(pretrained: string, strategy: string, fold: number): string;
  /** The predicted mask of one case (what `lesionseg predict` writes into that folder). */
  prediction(pretrained: string, strategy: string, fold: number, caseId: string): string;
  evaluation(pretrained: string, strategy: string, fold: number): string;
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
    pretrainRun: (model) => at('pretrain', model),
    run: (pretrained, strategy, fold) => at('runs', pretrained, strategy, `fold_${fold}`),
    predictions: (pretrained, strategy, fold) => at('predictions', pretrained, strategy, `fold_${fold}`),
    prediction: (pretrained, strategy, fold, caseId) => at('predictions', pretrained, strategy, `fold_${fold}`, `${caseId}.nii.gz`),
    evaluation: (pretrained, strategy, fold) => at('evaluations', pretrained, strategy, `fold_${fold}.json`),
  };
}

export interface PretrainJob {
  /** 'multi' or a source dataset name. */
  model: string;
  mode: 'single' | 'multi';
  datasets: string[];
}

export interface TrainJob {
  pretrained: string;
  strategy: TransferStrategy;
  fold: number;
}

/** The (pre-trained model, strategy) pairs of a spec: 'none' goes with scratch only, every model with every other strategy. */
export function studyPairs(spec: Pick<ExperimentSpec, 'pretrained' | 'strategies'>): { pretrained: string; strategy: TransferStrategy }[] {
  const pairs: { pretrained: string; strategy: TransferStrategy }[] = [];
  for (const pretrained of spec.pretrained) {
    for (const strategy of spec.strategies) {
      if ((pretrained === NO_PRETRAINING) === (strategy === 'scratch')) pairs.push({ pretrained, strategy });
    }
  }
  return pairs;
}

/** The pre-training runs a spec needs (only models some strategy uses). */
export function pretrainJobs(spec: Pick<ExperimentSpec, 'pretrained' | 'strategies' | 'sources'>): PretrainJob[] {
  const used = new Set(studyPairs(spec).map((p) => p.pretrained));
  const jobs: PretrainJob[] = [];
  for (const model of spec.pretrained) {
    if (model === NO_PRETRAINING || !used.has(model)) continue;
    jobs.push(model === MULTI_LESION ? { model, mode: 'multi', datasets: [...spec.sources] } : { model, mode: 'single', datasets: [model] });
  }
  return jobs;
}

/** Target training runs, fold by fold (so a partial study has complete folds first). */
export function trainJobs(spec: Pick<ExperimentSpec, 'pretrained' | 'strategies' | 'target'>): TrainJob[] {
  const pairs = studyPairs(spec);
  return spec.target.folds.flatMap((fold) => pairs.map((pair) => ({ ...pair, fold })));
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
