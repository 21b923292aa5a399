/**
 * The one dataset validation of every command that computes on a raw dataset (STYLE rule 16):
 * `plan`, `preprocess`, `train` and `pretrain` all run `checkDataset` (the same issues `lesionseg
 * check` lists: symlinks leaving the dataset, non-integer or undeclared labels, non-finite voxels,
 * geometry) through `checkDatasets`, and refuse with every issue listed. A CheckedDataset is the
 * proof that this ran, so a command that checked first (train) hands it on to planning and
 * preprocessing instead of reading every image again; it can only be made here.
 *
 * Also here, because preprocessing and training both need them before any work: a plan must cover
 * the dataset it preprocesses (by name), and a preprocessed cache made with another plan, or for
 * another dataset, is not silently rewritten.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, ValidationError, type Issue } from '../core/index.js';
import { checkDataset } from '../io/index.js';
import { datasetInfo, type DatasetInfo } from './fingerprint.js';
import { planDigest } from './preprocess_case_io.js';
import { loadPlan, type Plan } from './planning_schema.js';

/** A raw dataset that passed checkDataset in this process. */
export interface CheckedDataset {
  readonly dir: string;
  readonly info: DatasetInfo;
}

const CHECKED = new WeakSet<CheckedDataset>();

/** Check every dataset (all issues of all of them at once); ValidationError when there is any. */
export async function checkDatasets(dirs: readonly string[]): Promise<CheckedDataset[]> {
  const issues: Issue[] = [];
  for (const dir of dirs) issues.push(...(await checkDataset(dir)).issues);
  if (issues.length > 0) throw new ValidationError(issues, { file: dirs.join(', ') });
  return dirs.map((dir) => {
    const checked: CheckedDataset = Object.freeze({ dir, info: datasetInfo(dir) });
    CHECKED.add(checked);
    return checked;
  });
}

/** Dataset folders or datasets already checked: the folders are checked now, the others passed on. */
export type DatasetInput = string | CheckedDataset;

function isChecked(dataset: DatasetInput): dataset is CheckedDataset {
  return typeof dataset !== 'string' && CHECKED.has(dataset);
}

/** The datasets, each checked: folders (and look-alike objects not made here) are checked now, all problems at once. */
export async function ensureChecked(datasets: readonly DatasetInput[]): Promise<CheckedDataset[]> {
  const toCheck = datasets.filter((d) => !isChecked(d)).map((d) => (typeof d === 'string' ? d : d.dir));
  const checked = await checkDatasets(toCheck);
  let next = 0;
  return datasets.map((d) => (isChecked(d) ? d : checked[next++]!));
}

/** Throws InputError (code 'plan-mismatch') naming both unless the plan lists the dataset `name`. */
export function assertPlanCovers(plan: Plan, name: string, planLabel = 'the plan'): void {
  if (plan.datasets.some((d) => d.name === name)) return;
  throw new InputError(`${planLabel} covers ${plan.datasets.map((d) => `'${d.name}'`).join(', ')}, not the dataset '${name}': plan it with \`lesionseg plan\` (or together with the others)`, { code: 'plan-mismatch' });
}

/** How a command names its cache folder, and whether (and by which flag) it may replace one. */
export interface CacheOptions {
  /** The option naming the cache folder: '--out' (preprocess), '--preprocessed' (train, pretrain). */
  option: string;
  /** The flag that replaces a cache made with another plan ('--force'), when the command has one. */
  forceFlag?: string;
  /** The flag was given: replace instead of refusing. */
  force?: boolean;
}

export const DEFAULT_CACHE_OPTIONS: CacheOptions = { option: '--out' };

/** What an existing cache folder holds: the digest of its plan.json and the datasets of its cases. */
function cacheContents(outDir: string): { digest: string | null; datasets: Set<string> } {
  const planFile = path.join(outDir, 'plan.json');
  let digest: string | null = null;
  if (fs.existsSync(planFile)) {
    try {
      digest = planDigest(loadPlan(planFile));
    } catch {
      digest = 'unreadable';
    }
  }
  const datasets = new Set<string>();
  for (const name of fs.readdirSync(outDir)) {
    if (!name.endsWith('.json') || name === 'plan.json' || name === 'dataset.json') continue;
    try {
      const properties = JSON.parse(fs.readFileSync(path.join(outDir, name), 'utf8')) as { dataset?: unknown };
      if (typeof properties.dataset === 'string') datasets.add(properties.dataset);
    } catch {
      // an unreadable case file is redone by preprocessing, as a missing one is
    }
  }
  return { digest, datasets };
}

/**
 * Throws InputError (code 'cache-mismatch', naming the cache folder) when `outDir` is a
 * preprocessed cache made with a plan whose preprocessing differs from `plan`'s (planDigest: target
 * spacing, transpose, normalisation, resampling), or holding another dataset's cases, unless
 * `force`. A missing or empty folder, or one made with an equivalent plan, passes.
 */
export function assertCacheFits(outDir: string, plan: Plan, datasetName: string, options: CacheOptions = DEFAULT_CACHE_OPTIONS): void {
  if (options.force === true || !fs.existsSync(outDir) || !fs.statSync(outDir).isDirectory()) return;
  const { digest, datasets } = cacheContents(outDir);
  const advice = `use another ${options.option} folder, or ${options.forceFlag !== undefined ? `${options.forceFlag} to replace it` : 'remove this one'}`;
  if (digest !== null && digest !== planDigest(plan)) {
    throw new InputError(`the preprocessed cache was made with another plan (different spacing, normalisation or resampling): ${advice}`, { file: outDir, code: 'cache-mismatch' });
  }
  const others = [...datasets].filter((name) => name !== datasetName);
  if (others.length > 0) {
    throw new InputError(`the preprocessed cache holds cases of ${others.map((n) => `'${n}'`).join(', ')}, not only of '${datasetName}': ${advice}`, { file: outDir, code: 'cache-mismatch' });
  }
}
