/**
 * The study's comparisons and findings on hand-made arms: which pairs each family holds, the paired
 * units (keyed by seed, fold and case; undefined cases dropped and counted), Holm over one
 * (family, level, metric), determinism of the seeded bootstrap, and the verdict rule on arms whose
 * differences are large (supported), reversed (not supported) or absent (inconclusive).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holmAdjust } from '../eval/index.js';
import { comparisonPairs, pairedUnits, studyComparisons } from './comparisons.js';
import { studyFindings } from './findings.js';
import { armSummary, type ArmResult, type CaseResult, type FoldResult } from './results.js';

/** An arm whose case c of fold f has DSC/NSD/Sensitivity base + shift + a small case-specific wobble. */
function arm(pretrained: string, strategy: string, shift: number, options: { name?: string; seeds?: number[]; secondsPerEpoch?: number; nullCase?: boolean } = {}): ArmResult {
  const folds: FoldResult[] = [];
  for (const seed of options.seeds ?? [null]) {
    for (let fold = 0; fold < 5; fold++) {
      const cases: CaseResult[] = Array.from({ length: 16 }, (_, c) => {
        const value = 0.5 + shift + 0.01 * Math.sin(3.7 * c + fold) + (seed ?? 0) * 0.001;
        const dsc = options.nullCase === true && fold === 0 && c === 0 ? null : value;
        return { caseId: `case_${String((c + 4 * fold) % 20).padStart(2, '0')}`, dsc, nsd: value, sensitivity: value, precision: value, specificity: 0.99, accuracy: 0.99, hd95: 5 };
      });
      const mean = (k: 'dsc' | 'nsd' | 'sensitivity'): number => {
        const v = cases.map((c) => c[k]).filter((x): x is number => x !== null);
        return v.reduce((a, b) => a + b, 0) / v.length;
      };
      folds.push({ fold, ...(seed !== null ? { seed } : {}), runDir: '', predictionDir: '', cases, epochs: [], metrics: { dsc: mean('dsc'), nsd: mean('nsd'), sensitivity: mean('sensitivity'), precision: 0.5, f1: 0.5, accuracy: 0.99, hd95: 5, secondsPerEpoch: options.secondsPerEpoch ?? 10 } });
    }
  }
  return { pretrained, strategy, name: options.name ?? strategy, ...(options.seeds ? { seeds: options.seeds } : {}), folds, summary: armSummary(folds) };
}

test('the families: every arm vs scratch, multi vs single with the same arm, hybrid vs the other arms of its model', () => {
  const arms = [arm('none', 'scratch', 0), arm('tumor', 'hybrid', 0), arm('multi', 'frozen-encoder', 0), arm('multi', 'hybrid', 0), arm('multi', 'hybrid', 0, { name: 'hybrid-random-decoder' })];
  const pairs = comparisonPairs(arms).map((p) => `${p.family}: ${p.a.pretrained}/${p.a.name} - ${p.b.pretrained}/${p.b.name}`);
  assert.deepEqual(pairs, [
    'vs-scratch: tumor/hybrid - none/scratch',
    'vs-scratch: multi/frozen-encoder - none/scratch',
    'vs-scratch: multi/hybrid - none/scratch',
    'vs-scratch: multi/hybrid-random-decoder - none/scratch',
    'multi-vs-single: multi/hybrid - tumor/hybrid',
    'hybrid-vs-other: multi/hybrid - multi/frozen-encoder',
    'hybrid-vs-other: multi/hybrid - multi/hybrid-random-decoder',
  ]);
});

test('paired units: (seed, fold, case) keys stratified by run; fold means at the fold level; undefined cases dropped and counted', () => {
  const a = arm('multi', 'hybrid', 0.05, { nullCase: true });
  const b = arm('none', 'scratch', 0);
  const units = pairedUnits(a, b, 'cases', 'dsc');
  assert.equal(units.length, 80);
  assert.equal(new Set(units.map((u) => u.stratum)).size, 5);
  assert.equal(units.filter((u) => u.a === null).length, 1);
  assert.equal(pairedUnits(a, b, 'folds', 'dsc').length, 5);
  const seeded = pairedUnits(arm('multi', 'hybrid', 0, { seeds: [0, 1, 2] }), arm('none', 'scratch', 0, { seeds: [0, 1, 2] }), 'cases', 'nsd');
  assert.equal(seeded.length, 240, 'pairs of (case, seed)');
  assert.equal(new Set(seeded.map((u) => u.stratum)).size, 15, 'one stratum per run (seed, fold)');
  const comparisons = studyComparisons([b, a], { seed: 0, resamples: 500 });
  const dsc = comparisons.results.find((c) => c.level === 'cases' && c.metric === 'dsc')!;
  assert.deepEqual([dsc.n, dsc.nSkipped], [79, 1]);
});

test('Holm runs over one (family, level, metric); the bootstrap is seeded and replays', () => {
  const arms = [arm('none', 'scratch', 0), arm('multi', 'continual', 0.002), arm('multi', 'finetune', 0.004), arm('multi', 'hybrid', 0.05)];
  const first = studyComparisons(arms, { seed: 1, resamples: 300 });
  assert.deepEqual(studyComparisons(arms, { seed: 1, resamples: 300 }), first);
  assert.notDeepEqual(studyComparisons(arms, { seed: 2, resamples: 300 }).results.map((c) => c.ci), first.results.map((c) => c.ci));
  const table = first.results.filter((c) => c.family === 'vs-scratch' && c.level === 'cases' && c.metric === 'dsc');
  assert.equal(table.length, 3);
  assert.deepEqual(table.map((c) => c.adjustedP), holmAdjust(table.map((c) => c.pValue)));
  assert.ok(table.every((c) => c.holmFamilySize === 3));
  const hybrid = table.find((c) => c.a.strategy === 'hybrid')!;
  assert.ok(hybrid.difference! > 0.049 && hybrid.ci!.low > 0 && hybrid.significance === 'for');
});

test('verdicts: large gains are supported, reversed ones not supported, none inconclusive; finding 3 needs a cheaper epoch', () => {
  const better = [arm('none', 'scratch', 0, { secondsPerEpoch: 20 }), arm('tumor', 'frozen-encoder', -0.03), arm('multi', 'continual', 0.03), arm('multi', 'frozen-encoder', 0.03, { secondsPerEpoch: 14 }), arm('multi', 'hybrid', 0.06)];
  const findings = studyFindings(better, studyComparisons(better, { seed: 0, resamples: 300 })).findings;
  assert.deepEqual(findings.map((f) => f.verdict), ['supported', 'supported', 'supported', 'supported']);
  assert.equal(findings[2]!.secondsPerEpoch!.ratio, 0.7);
  assert.equal(findings[3]!.decidedBy.length, 9, 'hybrid vs continual, vs frozen encoder and vs scratch, on 3 metrics');

  const worse = [arm('none', 'scratch', 0.06), arm('tumor', 'hybrid', 0.03), arm('multi', 'frozen-encoder', 0.0, { secondsPerEpoch: 30 }), arm('multi', 'hybrid', 0.0)];
  const against = studyFindings(worse, studyComparisons(worse, { seed: 0, resamples: 300 })).findings;
  assert.deepEqual(against.map((f) => f.verdict), ['not supported', 'not supported', 'not supported', 'not supported']);

  const same = [arm('none', 'scratch', 0), arm('multi', 'frozen-encoder', 0, { secondsPerEpoch: 7 }), arm('multi', 'hybrid', 0)];
  const none = studyFindings(same, studyComparisons(same, { seed: 0, resamples: 300 })).findings;
  assert.deepEqual(none.map((f) => f.verdict), ['inconclusive', 'not tested', 'inconclusive', 'inconclusive']);
  assert.match(none[1]!.reason, /^not tested: /);
});
