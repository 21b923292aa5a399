/**
 * The paired comparisons of a study (results.json `comparisons`), from its arms' per-case results:
 * - families: every arm against scratch ('vs-scratch', which holds frozen encoder vs scratch);
 *   the multi-lesion model against each single-lesion model with the same arm
 *   ('multi-vs-single'); Hybrid-encoder Learning against every other arm of the same model
 *   ('hybrid-vs-other': the default hybrid arm, or every hybrid arm of a model without one);
 * - for DSC, NSD and Sensitivity, each at two levels: 'cases', the paired test cases of all folds
 *   (with seeds: (case, seed) pairs), resampled by the bootstrap within their run (seed, fold);
 *   and 'folds', the paired fold means (with seeds: (seed, fold) pairs), resampled freely;
 * - each comparison: the mean difference a - b, its 95 % percentile bootstrap interval (10,000
 *   resamples, seeded by the spec's seed and the comparison's id), the two-sided Wilcoxon
 *   signed-rank p-value (SciPy 1.10's rules), and Holm's adjustment over the comparisons of one
 *   table: one family, one level, one metric.
 * Undefined values (null: e.g. DSC of a case with empty reference and prediction) are dropped
 * pairwise and counted (nSkipped). Pure: results in, comparisons out.
 */
import { Rng } from '../core/index.js';
import { BOOTSTRAP_DEFAULTS, comparePaired, holmAdjust, type PairedComparison, type PairedUnit } from '../eval/index.js';
import { armName, type ArmResult } from './results.js';

export const COMPARED_METRICS = ['dsc', 'nsd', 'sensitivity'] as const;
export type ComparedMetric = (typeof COMPARED_METRICS)[number];
export const COMPARISON_FAMILIES = ['vs-scratch', 'multi-vs-single', 'hybrid-vs-other'] as const;
export type ComparisonFamily = (typeof COMPARISON_FAMILIES)[number];
export const COMPARISON_LEVELS = ['cases', 'folds'] as const;
export type ComparisonLevel = (typeof COMPARISON_LEVELS)[number];
export const ALPHA = 0.05;

export interface ArmRef {
  pretrained: string;
  strategy: string;
  name: string;
}

export interface ComparisonResult extends PairedComparison {
  /** `<family>/<level>/<metric>/<a model>/<a arm>-vs-<b model>/<b arm>`. */
  id: string;
  family: ComparisonFamily;
  level: ComparisonLevel;
  metric: ComparedMetric;
  /** The difference is a - b; a is the arm the paper expects to be better. */
  a: ArmRef;
  b: ArmRef;
  /** The Wilcoxon p-value, and Holm's adjustment of it within (family, level, metric). */
  pValue: number | null;
  adjustedP: number | null;
  holmFamilySize: number;
  /** 'for': a - b > 0 with adjusted p < alpha; 'against': < 0 with adjusted p < alpha; else 'neither'. */
  significance: 'for' | 'against' | 'neither';
}

export interface StudyComparisons {
  /** How the numbers were computed, in words (copied into findings.md). */
  method: string;
  alpha: number;
  bootstrapSeed: number;
  resamples: number;
  results: ComparisonResult[];
}

export interface ComparisonOptions {
  /** Seeds the bootstrap (the spec's `seed`). */
  seed: number;
  resamples?: number;
}

const refOf = (arm: ArmResult): ArmRef => ({ pretrained: arm.pretrained, strategy: arm.strategy, name: armName(arm) });
const isDefault = (arm: ArmResult): boolean => armName(arm) === arm.strategy;
const isSingle = (arm: ArmResult): boolean => arm.pretrained !== 'none' && arm.pretrained !== 'multi';

/** The (a, b) pairs of each family (a expected better). */
export function comparisonPairs(arms: readonly ArmResult[]): { family: ComparisonFamily; a: ArmResult; b: ArmResult }[] {
  const pairs: { family: ComparisonFamily; a: ArmResult; b: ArmResult }[] = [];
  const scratch = arms.find((arm) => arm.strategy === 'scratch');
  if (scratch !== undefined) for (const arm of arms) if (arm !== scratch) pairs.push({ family: 'vs-scratch', a: arm, b: scratch });
  for (const multi of arms.filter((arm) => arm.pretrained === 'multi')) {
    for (const single of arms.filter((arm) => isSingle(arm) && armName(arm) === armName(multi))) pairs.push({ family: 'multi-vs-single', a: multi, b: single });
  }
  for (const model of [...new Set(arms.map((arm) => arm.pretrained))]) {
    const own = arms.filter((arm) => arm.pretrained === model);
    const hybrids = own.filter((arm) => arm.strategy === 'hybrid');
    const main = hybrids.some(isDefault) ? hybrids.filter(isDefault) : hybrids;
    for (const hybrid of main) for (const other of own) if (other !== hybrid) pairs.push({ family: 'hybrid-vs-other', a: hybrid, b: other });
  }
  return pairs;
}

/** The paired units of two arms at a level: values keyed by (seed, fold[, case]). */
export function pairedUnits(a: ArmResult, b: ArmResult, level: ComparisonLevel, metric: ComparedMetric): PairedUnit[] {
  const collect = (arm: ArmResult): Map<string, { stratum: string; value: number | null }> => {
    const out = new Map<string, { stratum: string; value: number | null }>();
    for (const fold of arm.folds) {
      const run = `${fold.seed ?? '-'}/${fold.fold}`;
      if (level === 'folds') out.set(run, { stratum: 'all', value: fold.metrics[metric] });
      else for (const c of fold.cases) out.set(`${run}/${c.caseId}`, { stratum: run, value: c[metric] });
    }
    return out;
  };
  const left = collect(a);
  const right = collect(b);
  const keys = [...new Set([...left.keys(), ...right.keys()])].sort();
  return keys.map((key) => ({ stratum: (left.get(key) ?? right.get(key))!.stratum, a: left.get(key)?.value ?? null, b: right.get(key)?.value ?? null }));
}

export function methodText(resamples: number, seed: number): string {
  return [
    'Paired differences a - b (a: the arm the paper expects to be better).',
    "Level 'cases': every paired test case of every fold (with seeds, every (case, seed) pair); the bootstrap resamples cases within their run (seed, fold).",
    "Level 'folds': the paired fold means (with seeds, (seed, fold) pairs), resampled freely.",
    `95% CI: percentile bootstrap of the mean difference, ${resamples} resamples, seeded with ${seed} and the comparison's id.`,
    "p: two-sided Wilcoxon signed-rank test as scipy.stats.wilcoxon of SciPy 1.10 (zero differences dropped; exact for n <= 50 without zeros, else the normal approximation with tie correction, no continuity correction).",
    'Holm: step-down adjustment over the comparisons of one table (one family, one level, one metric).',
    'Cases with an undefined metric on either side (e.g. DSC with empty reference and prediction) are dropped pairwise and counted.',
    'In the limited-annotation scheme each case is tested in several folds (by different models), so case-level units are not independent; the fold level is the conservative view (with 5 folds and one seed the exact Wilcoxon p is at least 0.0625).',
  ].join(' ');
}

/** Every comparison of the study, with Holm-adjusted p-values. */
export function studyComparisons(arms: readonly ArmResult[], options: ComparisonOptions): StudyComparisons {
  const resamples = options.resamples ?? BOOTSTRAP_DEFAULTS.resamples;
  const results: ComparisonResult[] = [];
  for (const { family, a, b } of comparisonPairs(arms)) {
    for (const level of COMPARISON_LEVELS) {
      for (const metric of COMPARED_METRICS) {
        const id = `${family}/${level}/${metric}/${a.pretrained}/${armName(a)}-vs-${b.pretrained}/${armName(b)}`;
        const paired = comparePaired(pairedUnits(a, b, level, metric), { rng: new Rng(options.seed).fork(`bootstrap:${id}`), resamples });
        results.push({ id, family, level, metric, a: refOf(a), b: refOf(b), ...paired, pValue: paired.wilcoxon?.pValue ?? null, adjustedP: null, holmFamilySize: 0, significance: 'neither' });
      }
    }
  }
  const tables = new Map<string, ComparisonResult[]>();
  for (const r of results) {
    const key = `${r.family}/${r.level}/${r.metric}`;
    const list = tables.get(key);
    if (list === undefined) tables.set(key, [r]);
    else list.push(r);
  }
  for (const list of tables.values()) {
    const adjusted = holmAdjust(list.map((r) => r.pValue));
    const size = list.filter((r) => r.pValue !== null).length;
    list.forEach((r, i) => {
      r.adjustedP = adjusted[i]!;
      r.holmFamilySize = size;
      r.significance = significance(r);
    });
  }
  return { method: methodText(resamples, options.seed), alpha: ALPHA, bootstrapSeed: options.seed, resamples, results };
}

/** 'for': significant in a's favour; 'against': significant in b's; 'neither'. */
export function significance(r: Pick<ComparisonResult, 'adjustedP' | 'difference'>, alpha: number = ALPHA): 'for' | 'against' | 'neither' {
  if (r.adjustedP === null || r.difference === null || !(r.adjustedP < alpha) || r.difference === 0) return 'neither';
  return r.difference > 0 ? 'for' : 'against';
}
