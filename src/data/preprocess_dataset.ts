/**
 * Preprocess a whole raw dataset into the cache (`lesionseg preprocess DATASET --plan PLAN.json`):
 * cases in parallel on worker_threads (or in this thread with workers: 0), resumable (a case whose
 * three files are complete for this plan is skipped), every file written atomically.
 *
 * Everything is checked before the first write (checkPreprocessing): the cache folder can be
 * created, the dataset passes the dataset check `lesionseg check` runs (unless the caller hands a
 * CheckedDataset), the plan covers the dataset by name and has its channel count, and a cache made
 * with another plan or for another dataset is refused rather than rewritten.
 *
 * Cache layout in `outDir`: `plan.json` (the plan used), `dataset.json` (copy of the raw one), and
 * per case `<id>.npy` float32 [C, z, y, x], `<id>_seg.npy` int8 [1, z, y, x] (-1 = outside the
 * nonzero region) and `<id>.json` (CachedCaseProperties), all readable by numpy.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { assertWritableOutput, atomicWriteJsonSync, InputError, SILENT_PROGRESS, type ProgressReporter } from '../core/index.js';
import { ignoreLabelOf, listRawCases, readDatasetJson, type RawCase } from '../io/index.js';
import { assertCacheFits, assertPlanCovers, DEFAULT_CACHE_OPTIONS, ensureChecked, type CacheOptions, type CheckedDataset, type DatasetInput } from './validate_datasets.js';
import {
  errorFromData,
  isCaseComplete,
  planDigest,
  processCaseTask,
  type CaseTask,
  type WorkerReply,
} from './preprocess_case_io.js';
import { savePlan, type Plan } from './planning_schema.js';

export interface PreprocessDatasetOptions {
  /** Worker threads (default 2); 0 runs the cases in this thread. */
  workers?: number;
  progress?: ProgressReporter;
  /** How the command names the cache folder and whether it may replace one made with another plan (default: '--out', no). */
  cache?: CacheOptions;
}

export interface PreprocessDatasetResult {
  outDir: string;
  processed: string[];
  skipped: string[];
}

/**
 * Start one preprocessing worker. Built code runs preprocess_worker.js directly. Run from the
 * TypeScript sources (tsx), Node 20 does not pass tsx's loader to worker threads, so a small
 * bootstrap registers tsx in the worker before importing preprocess_worker.ts.
 */
function startWorker(plan: Plan): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./preprocess_worker.js', import.meta.url), { workerData: { plan } });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./preprocess_worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: { plan } });
}

async function runInWorkers(tasks: CaseTask[], plan: Plan, workerCount: number, onDone: (id: string) => void): Promise<void> {
  const workers = Array.from({ length: Math.min(workerCount, tasks.length) }, () => startWorker(plan));
  let next = 0;
  let failure: Error | null = null;
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const feed = (): void => {
              if (failure !== null || next >= tasks.length) {
                resolve();
                return;
              }
              worker.postMessage(tasks[next++]);
            };
            worker.on('message', (reply: WorkerReply) => {
              if (reply.ok) {
                onDone(reply.id);
                feed();
              } else {
                failure ??= errorFromData(reply.error);
                reject(failure);
              }
            });
            worker.on('error', (error) => {
              failure ??= error;
              reject(error);
            });
            worker.on('exit', (code) => {
              if (code !== 0) reject(failure ?? new Error(`preprocessing worker exited with code ${code}`));
            });
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/**
 * Every check preprocessDataset makes, before anything is written: train and pretrain run it in
 * their validation phase, so that a bad cache is refused before the run folder changes.
 */
export async function checkPreprocessing(dataset: DatasetInput, plan: Plan, outDir: string, cache: CacheOptions = DEFAULT_CACHE_OPTIONS): Promise<{ checked: CheckedDataset; cases: RawCase[] }> {
  assertWritableOutput(outDir, { option: cache.option, kind: 'folder' });
  const [checked] = await ensureChecked([dataset]);
  const { info, dir } = checked!;
  assertPlanCovers(plan, info.name);
  const channels = Object.keys(info.channelNames).length;
  const planned = plan.configuration.normalization.length;
  if (channels !== planned) {
    throw new InputError(`the dataset has ${channels} channel(s), the plan was made for ${planned}`, {
      file: path.join(dir, 'dataset.json'),
      code: 'channel-mismatch',
    });
  }
  const cases = listRawCases(dir, 'Tr');
  if (cases.length === 0) throw new InputError('no training cases found (imagesTr is empty)', { file: dir, code: 'no-cases' });
  for (const raw of cases) {
    if (raw.label === null) {
      throw new InputError(`case '${raw.id}' has no label file in labelsTr`, { file: raw.images[0], code: 'missing-label' });
    }
  }
  assertCacheFits(outDir, plan, info.name, cache);
  return { checked: checked!, cases };
}

/** Preprocess every training case of `dataset` (a folder, or one checked already) with `plan` into `outDir`. */
export async function preprocessDataset(
  dataset: DatasetInput,
  plan: Plan,
  outDir: string,
  options: PreprocessDatasetOptions = {},
): Promise<PreprocessDatasetResult> {
  const { checked, cases } = await checkPreprocessing(dataset, plan, outDir, options.cache);
  const { info, dir } = checked;
  fs.mkdirSync(outDir, { recursive: true });
  savePlan(path.join(outDir, 'plan.json'), plan);
  atomicWriteJsonSync(path.join(outDir, 'dataset.json'), readDatasetJson(dir));

  const digest = planDigest(plan);
  // nnU-Net's foreground labels: not background, not the ignore label (no oversampling from it).
  const ignoreLabel = ignoreLabelOf(info.labels);
  const foregroundLabels = Object.values(info.labels).filter((v) => v > 0 && v !== ignoreLabel).sort((a, b) => a - b);
  const skipped: string[] = [];
  const tasks: CaseTask[] = [];
  for (const raw of cases) {
    if (isCaseComplete(outDir, raw.id, digest)) skipped.push(raw.id);
    else {
      tasks.push({ id: raw.id, images: raw.images, label: raw.label!, dataset: info.name, foregroundLabels, outDir, planDigest: digest });
    }
  }
  const progress = options.progress ?? SILENT_PROGRESS;
  const processed: string[] = [];
  progress.start('preprocess', cases.length);
  if (skipped.length > 0) progress.tick(skipped.length, `${skipped.length} already done`);
  const onDone = (id: string): void => {
    processed.push(id);
    progress.tick(1, id);
  };
  try {
    const workerCount = options.workers ?? 2;
    if (workerCount <= 0 || tasks.length === 0) {
      for (const task of tasks) {
        await processCaseTask(task, plan);
        onDone(task.id);
      }
    } else {
      await runInWorkers(tasks, plan, workerCount, onDone);
    }
  } finally {
    progress.stop();
  }
  return { outDir, processed: processed.sort(), skipped };
}
