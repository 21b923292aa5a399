/**
 * The network a training-step benchmark trains (bench/train-step-compare.ts, bench/train-step-profile.ts):
 * `cpu`, `bench train-step`'s network (src/train/benchmark.ts's defaults: features 16..256, patch
 * 32x96x96, batch 2), or FILE, the `plan` of a bench/paper-scale.ts JSON (patch, batch, features,
 * kernels, strides), e.g. results/paper-scale/paper-scale.json for the `paper` preset's network.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { TRAIN_STEP_BENCH_DEFAULTS } from '../src/train/index.js';

/** The network, patch and batch a benchmark trains; `source` is `cpu` or the plan file relative to `root`. */
export interface Network {
  source: string;
  features: number[];
  kernels: number[][];
  strides: number[][];
  patch: number[];
  batch: number;
}

export function networkOf(name: string, root: string): Network {
  if (name === 'cpu') {
    const d = TRAIN_STEP_BENCH_DEFAULTS;
    return { source: 'cpu', features: d.featuresPerStage, kernels: d.featuresPerStage.map(() => [3, 3, 3]), strides: d.strides, patch: d.patchSize, batch: d.batchSize };
  }
  const plan = (JSON.parse(readFileSync(name, 'utf8')) as { plan?: { patch: number[]; batch: number; features: number[]; kernels: number[][]; strides: number[][] } }).plan;
  if (plan === undefined) throw new Error(`--network ${name}: no "plan" (a bench/paper-scale.ts JSON has one)`);
  return { source: path.relative(root, path.resolve(name)), features: plan.features, kernels: plan.kernels, strides: plan.strides, patch: plan.patch, batch: plan.batch };
}
