/**
 * findings.md is a pure rendering of results.json: the committed results/synthetic/findings.md must
 * be exactly what findingsMarkdown writes from the committed results/synthetic/results.json (when
 * both are committed); and on a small hand-made study (test/fixtures/report's three arms plus
 * hand-written comparisons and findings) writeTables writes that same text, Tables 1-3 carry the
 * significance marks, and the HTML page says the verdicts and draws the forest plots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ComparisonResult, StudyResults } from '../experiments/index.js';
import { findingsMarkdown } from './findings.js';
import { reportHtml, studyCharts } from './html.js';
import { HIGHER_MARK, studyTables, tableCsv, tableMarkdown } from './tables.js';
import { readStudyResults, writeTables } from './writeReport.js';

const committed = fileURLToPath(new URL('../../results/synthetic/', import.meta.url));
const fixture = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/report/study/results.json', import.meta.url), 'utf8')) as StudyResults;

function comparison(a: StudyResults['arms'][number], metric: 'dsc' | 'nsd' | 'sensitivity', level: 'cases' | 'folds', difference: number, adjustedP: number): ComparisonResult {
  const ref = (x: StudyResults['arms'][number]) => ({ pretrained: x.pretrained, strategy: x.strategy, name: x.strategy });
  return {
    id: `vs-scratch/${level}/${metric}/${a.pretrained}/${a.strategy}-vs-none/scratch`,
    family: 'vs-scratch',
    level,
    metric,
    a: ref(a),
    b: ref(fixture.arms[0]!),
    n: level === 'cases' ? 6 : 2,
    nSkipped: 0,
    meanA: 0.5 + difference,
    meanB: 0.5,
    difference,
    ci: { low: difference - 0.01, high: difference + 0.01, level: 0.95, resamples: 10000 },
    wilcoxon: { statistic: 0, pValue: adjustedP / 2, method: 'exact', n: 6, nZero: 0, ties: false },
    pValue: adjustedP / 2,
    adjustedP,
    holmFamilySize: 2,
    significance: adjustedP < 0.05 ? (difference > 0 ? 'for' : 'against') : 'neither',
  };
}

/** The fixture study with comparisons against scratch (hybrid significantly better) and findings. */
function smallStudy(): StudyResults {
  const [, continual, hybrid] = fixture.arms as [StudyResults['arms'][number], StudyResults['arms'][number], StudyResults['arms'][number]];
  const results: ComparisonResult[] = [];
  for (const level of ['cases', 'folds'] as const) {
    for (const metric of ['dsc', 'nsd', 'sensitivity'] as const) results.push(comparison(continual, metric, level, 0.004, 0.4), comparison(hybrid, metric, level, 0.03, level === 'cases' ? 0.0002 : 0.5));
  }
  const f = (id: 1 | 2 | 3 | 4, verdict: 'supported' | 'inconclusive' | 'not tested', decidedBy: string[]) => ({
    id,
    claim: `claim ${id}`,
    rule: `rule ${id}`,
    quantifier: 'any' as const,
    decidedBy,
    counts: { for: verdict === 'supported' ? 1 : 0, against: 0, neither: decidedBy.length - (verdict === 'supported' ? 1 : 0) },
    verdict,
    reason: verdict === 'not tested' ? 'not tested: no arms' : `${verdict === 'supported' ? 1 : 0} of ${decidedBy.length} for`,
  });
  const dsc = results.filter((c) => c.level === 'cases' && c.metric === 'dsc').map((c) => c.id);
  return {
    ...fixture,
    version: 2,
    comparisons: { method: 'method text', alpha: 0.05, bootstrapSeed: 0, resamples: 10000, results },
    findings: {
      alpha: 0.05,
      level: 'cases',
      rule: 'the rule',
      findings: [f(1, 'supported', dsc), f(2, 'not tested', []), { ...f(3, 'inconclusive', []), secondsPerEpoch: { frozenEncoder: null, scratch: 5, ratio: null, paperRatio: 148 / 206 } }, f(4, 'supported', [dsc[1]!])],
    },
  };
}

test('findings.md is exactly what the code writes from results.json (results/synthetic when both are committed, else a small synthetic study)', () => {
  const results = path.join(committed, 'results.json');
  const findings = path.join(committed, 'findings.md');
  if (fs.existsSync(results) && fs.existsSync(findings)) {
    assert.equal(fs.readFileSync(findings, 'utf8'), findingsMarkdown(readStudyResults(committed)), 'results/synthetic/findings.md is stale: rewrite it with `lesionseg report` (writeTables) from results.json');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-findings-'));
  try {
    const study = smallStudy();
    writeTables(study, dir);
    const text = fs.readFileSync(path.join(dir, 'findings.md'), 'utf8');
    assert.equal(text, findingsMarkdown(study));
    assert.ok(text.startsWith(`# Findings of the study '${study.name}'\n`));
    assert.match(text, /## Finding 1: claim 1\n\n\*\*Verdict: supported\.\*\* 1 of 2 for\./);
    assert.match(text, /\| Hybrid-encoder Learning \(multi-lesion\) vs From scratch \| DSC \| 6 \(0\) \| \+0\.0300 \| \[\+0\.0200, \+0\.0400\] \| 1\.00e-4 \| 2\.00e-4 \| for \| \+0\.0300 \| 0\.5000 \|/);
    assert.match(text, /Seconds per epoch: frozen encoder \(multi-lesion\) n\/a, from scratch 5\.00, ratio n\/a \(the paper: 148 \/ 206 = 0\.718\)\./);
    assert.match(text, /### Every arm against from scratch: NSD \(paired test cases; Holm over 2\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a results.json without comparisons writes a findings.md that says so, and tables without marks', () => {
  assert.match(findingsMarkdown(fixture), /has no comparisons or findings/);
  const [t1] = studyTables(fixture);
  assert.ok(!tableMarkdown(t1!).includes(HIGHER_MARK));
  assert.ok(!tableCsv(t1!).includes('vs_scratch'));
});

test('Tables 1-3 mark the means significantly above scratch; the page says the verdicts and draws three forest plots', () => {
  const study = smallStudy();
  const [t1, t2, t3] = studyTables(study);
  const hybrid = study.arms[2]!;
  assert.ok(tableMarkdown(t1!).includes(`| ${hybrid.summary.dsc.mean!.toFixed(4)} +/- ${hybrid.summary.dsc.std!.toFixed(4)}${HIGHER_MARK} |`), tableMarkdown(t1!));
  assert.match(tableMarkdown(t2!), /significantly higher \/ lower than from scratch/);
  const csv = tableCsv(t3!).trim().split('\n');
  assert.equal(csv[0]!.split(',').at(-1), 'vs_scratch');
  assert.equal(csv[3]!.split(',').at(-1), 'dsc:higher;nsd:higher;sensitivity:higher');
  assert.equal(csv[2]!.split(',').at(-1), '');
  const charts = studyCharts(study);
  const html = reportHtml({ results: study, tables: studyTables(study), charts, overlays: [] });
  assert.match(html, /Finding 1 \(claim 1\) is SUPPORTED: 1 of 2 for\./);
  assert.match(html, /Finding 2 \(claim 2\) is not tested by this study/);
  assert.equal((html.match(/aria-label="[^"]*difference against from scratch/g) ?? []).length, 3);
  assert.ok(charts.forestDsc!.includes('Hybrid/multi') && charts.forestDsc!.includes('<circle'));
});
