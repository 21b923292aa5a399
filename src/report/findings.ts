/**
 * tables/findings.md from a study's results.json: each of the paper's four findings with its
 * verdict, the rule that gave it, and the numbers of the comparisons that decide it (difference,
 * 95 % bootstrap CI, Wilcoxon p, Holm-adjusted p, case level, with the fold level beside it); the
 * frozen encoder's seconds per epoch against scratch's; then every comparison family as a table.
 * Rendering only (STYLE: a number in prose comes from a file): `findingsMarkdown(results)` is a
 * pure function of results.json, so a committed findings.md can be checked against it.
 */
import type { ComparisonResult, FindingResult, StudyResults } from '../experiments/index.js';
import { armLabel, HIGHER_MARK, LOWER_MARK } from './tables.js';

const METRIC_NAMES: Readonly<Record<string, string>> = { dsc: 'DSC', nsd: 'NSD', sensitivity: 'Sensitivity' };
const FAMILY_TITLES: Readonly<Record<string, string>> = {
  'vs-scratch': 'Every arm against from scratch',
  'multi-vs-single': 'The multi-lesion model against each single-lesion model (same arm)',
  'hybrid-vs-other': 'Hybrid-encoder Learning against every other arm of the same model',
};

export function signed(value: number | null, digits = 4): string {
  if (value === null) return 'n/a';
  return `${value > 0 ? '+' : value < 0 ? '-' : ''}${Math.abs(value).toFixed(digits)}`;
}

export function pText(p: number | null): string {
  if (p === null) return 'n/a';
  return p >= 0.001 ? p.toFixed(4) : p.toExponential(2);
}

export function ciText(c: Pick<ComparisonResult, 'ci'>): string {
  return c.ci === null ? 'n/a' : `[${signed(c.ci.low)}, ${signed(c.ci.high)}]`;
}

export function comparisonLabel(c: Pick<ComparisonResult, 'a' | 'b'>): string {
  return `${armLabel(c.a)} vs ${armLabel(c.b)}`;
}

const SIGNIFICANCE_TEXT = { for: 'for', against: 'against', neither: '-' } as const;

/** The same comparison at the fold level (its id with 'cases' replaced). */
function atFolds(results: StudyResults, c: ComparisonResult): ComparisonResult | undefined {
  const id = c.id.replace(`/${c.level}/`, '/folds/');
  return results.comparisons?.results.find((r) => r.id === id);
}

function comparisonTable(results: StudyResults, rows: readonly ComparisonResult[], withMetric: boolean): string[] {
  const header = ['Comparison (a vs b)', ...(withMetric ? ['Metric'] : []), 'n (skipped)', 'a - b', '95% CI', 'p', 'Holm p', 'Significant', 'Folds: a - b', 'Folds: Holm p'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 || (withMetric && i === 1) ? '---' : '---:')).join('|')}|`];
  for (const c of rows) {
    const folds = atFolds(results, c);
    lines.push(
      `| ${[
        comparisonLabel(c),
        ...(withMetric ? [METRIC_NAMES[c.metric] ?? c.metric] : []),
        `${c.n} (${c.nSkipped})`,
        signed(c.difference),
        ciText(c),
        pText(c.pValue),
        pText(c.adjustedP),
        SIGNIFICANCE_TEXT[c.significance],
        folds === undefined ? 'n/a' : signed(folds.difference),
        folds === undefined ? 'n/a' : pText(folds.adjustedP),
      ].join(' | ')} |`,
    );
  }
  return lines;
}

function secondsText(f: FindingResult): string[] {
  const s = f.secondsPerEpoch;
  if (s === undefined) return [];
  const value = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(2));
  return [`Seconds per epoch: frozen encoder (multi-lesion) ${value(s.frozenEncoder)}, from scratch ${value(s.scratch)}, ratio ${s.ratio === null ? 'n/a' : s.ratio.toFixed(3)} (the paper: 148 / 206 = ${s.paperRatio.toFixed(3)}).`, ''];
}

/** A finding's verdict as one sentence (findings.md and the HTML report). */
export function verdictSentence(f: FindingResult): string {
  return `Finding ${f.id} (${f.claim}) is ${f.verdict === 'not tested' ? 'not tested by this study' : f.verdict.toUpperCase()}: ${f.reason}.`;
}

export function findingsMarkdown(results: StudyResults): string {
  const lines = [`# Findings of the study '${results.name}'`, ''];
  const findings = results.findings;
  const comparisons = results.comparisons;
  if (findings === undefined || comparisons === undefined) {
    lines.push('This results.json has no comparisons or findings (it was written before results version 2): run `lesionseg experiment` on the study folder again to compute them from its finished runs.', '');
    return lines.join('\n');
  }
  const seeds = results.arms[0]?.seeds;
  lines.push(
    `Target ${results.target.dataset}, label ${results.target.label}, fold(s) ${results.target.folds.join(', ')}${seeds !== undefined ? `, seeds ${seeds.join(', ')}` : ', one seed'}; ${results.arms.length} arm(s); results.json of ${results.createdAt}.`,
    '',
    `**Rule** (alpha ${findings.alpha}, ${findings.level} level): ${findings.rule}`,
    '',
  );
  const byId = new Map(comparisons.results.map((c) => [c.id, c] as const));
  for (const f of findings.findings) {
    lines.push(`## Finding ${f.id}: ${f.claim}`, '', `**Verdict: ${f.verdict}.** ${f.reason}.`, '', `Decided by: ${f.rule}.`, '');
    lines.push(...secondsText(f));
    const deciding = f.decidedBy.map((id) => byId.get(id)).filter((c): c is ComparisonResult => c !== undefined);
    if (deciding.length > 0) lines.push(...comparisonTable(results, deciding, true), '');
  }
  lines.push('## Method', '', comparisons.method, '', `Significant: 'for' = a - b > 0 with Holm p < ${comparisons.alpha} (${HIGHER_MARK} in Tables 1-3 against scratch), 'against' = a - b < 0 with Holm p < ${comparisons.alpha} (${LOWER_MARK}), '-' = neither. Holm families of the tables below: one per table.`, '');
  lines.push('## All comparisons', '');
  for (const family of ['vs-scratch', 'multi-vs-single', 'hybrid-vs-other'] as const) {
    for (const metric of ['dsc', 'nsd', 'sensitivity'] as const) {
      const rows = comparisons.results.filter((c) => c.family === family && c.metric === metric && c.level === 'cases');
      if (rows.length === 0) continue;
      lines.push(`### ${FAMILY_TITLES[family]}: ${METRIC_NAMES[metric]} (paired test cases; Holm over ${rows[0]!.holmFamilySize})`, '', ...comparisonTable(results, rows, false), '');
    }
  }
  return lines.join('\n');
}
