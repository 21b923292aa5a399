/**
 * The paper's four findings (PAPER.md) as verdicts on a study's comparisons (results.json
 * `findings`), by one stated rule at alpha 0.05, on the case-level comparisons (Holm-adjusted):
 * a deciding comparison counts 'for' the finding when its mean difference is in the paper's
 * direction (a - b > 0) with adjusted p < 0.05, 'against' when it is significant the other way.
 * - quantifier 'all': supported when every deciding comparison is 'for'; not supported when any
 *   is 'against'; inconclusive otherwise;
 * - quantifier 'any': supported when at least one is 'for' and none 'against'; not supported when
 *   at least one is 'against' and none 'for'; inconclusive otherwise (none, or both);
 * - not tested: the study lacks the arms a finding needs.
 * The findings use the paper's arms (default arms, named by their strategy); the multi-lesion
 * model decides 1, 3 and 4 (every pre-trained model when the study has no multi-lesion model, for
 * 1). Finding 3 also needs the frozen encoder's seconds per epoch below scratch's (the ratio is
 * reported beside the paper's 148 / 206 = 0.72).
 */
import { ALPHA, significance, type ComparedMetric, type ComparisonResult, type StudyComparisons } from './comparisons.js';
import { armName, type ArmResult } from './results.js';

export type Verdict = 'supported' | 'not supported' | 'inconclusive' | 'not tested';
export type Quantifier = 'all' | 'any';

export interface FindingResult {
  id: 1 | 2 | 3 | 4;
  claim: string;
  /** Which comparisons decide, and how (the quantifier in words). */
  rule: string;
  quantifier: Quantifier;
  /** Ids of the deciding comparisons (case level). */
  decidedBy: string[];
  /** How many of them are 'for' and 'against'. */
  counts: { for: number; against: number; neither: number };
  verdict: Verdict;
  reason: string;
  /** Finding 3: mean seconds per epoch of the frozen encoder (multi-lesion) and of scratch, and their ratio. */
  secondsPerEpoch?: { frozenEncoder: number | null; scratch: number | null; ratio: number | null; paperRatio: number };
}

export interface StudyFindings {
  alpha: number;
  level: 'cases';
  /** The verdict rule in words (the file comment's). */
  rule: string;
  findings: FindingResult[];
}

export const PAPER_SECONDS_PER_EPOCH = { frozenEncoder: 148, scratch: 206 } as const;

export const VERDICT_RULE =
  "Deciding comparisons are case-level paired comparisons (a - b, a the arm the paper expects to be better) with Holm-adjusted Wilcoxon p-values. A comparison counts 'for' the finding when the mean difference is > 0 with adjusted p < 0.05, 'against' when it is < 0 with adjusted p < 0.05. Quantifier 'all': supported when every deciding comparison is 'for', not supported when any is 'against', else inconclusive. Quantifier 'any': supported when at least one is 'for' and none is 'against', not supported when at least one is 'against' and none is 'for', else inconclusive. Not tested: the study lacks the arms.";

export const FINDING_CLAIMS = {
  1: 'Pre-training on non-COVID lung lesions helps COVID-19 infection segmentation with 4 training scans.',
  2: 'The multi-lesion model transfers more stably than any single-lesion one.',
  3: 'A frozen pre-trained encoder with a trained decoder is competitive and about 30% cheaper per epoch.',
  4: 'The Hybrid-encoder with Selective Fusion is best on DSC, NSD and Sensitivity.',
} as const;

function decide(comparisons: readonly ComparisonResult[], quantifier: Quantifier, alpha: number): { verdict: Verdict; counts: FindingResult['counts'] } {
  const counts = { for: 0, against: 0, neither: 0 };
  for (const c of comparisons) counts[significance(c, alpha)]++;
  if (comparisons.length === 0) return { verdict: 'not tested', counts };
  if (quantifier === 'all') {
    if (counts.against > 0) return { verdict: 'not supported', counts };
    return { verdict: counts.for === comparisons.length ? 'supported' : 'inconclusive', counts };
  }
  if (counts.for > 0 && counts.against === 0) return { verdict: 'supported', counts };
  if (counts.against > 0 && counts.for === 0) return { verdict: 'not supported', counts };
  return { verdict: 'inconclusive', counts };
}

function reasonText(verdict: Verdict, counts: FindingResult['counts'], total: number, missing: string): string {
  if (verdict === 'not tested') return `not tested: ${missing}`;
  return `${counts.for} of ${total} deciding comparison(s) significant in the paper's direction, ${counts.against} significant against it, ${counts.neither} not significant`;
}

/** The four findings from a study's arms and comparisons. */
export function studyFindings(arms: readonly ArmResult[], comparisons: StudyComparisons): StudyFindings {
  const alpha = comparisons.alpha ?? ALPHA;
  const cases = comparisons.results.filter((c) => c.level === 'cases');
  const isDefault = (ref: { strategy: string; name: string }): boolean => ref.name === ref.strategy;
  const pick = (family: ComparisonResult['family'], metrics: readonly ComparedMetric[], keep: (c: ComparisonResult) => boolean): ComparisonResult[] =>
    cases.filter((c) => c.family === family && metrics.includes(c.metric) && isDefault(c.a) && isDefault(c.b) && keep(c));
  const hasMulti = arms.some((arm) => arm.pretrained === 'multi');
  const finding = (id: FindingResult['id'], rule: string, quantifier: Quantifier, deciding: ComparisonResult[], missing: string): FindingResult => {
    const { verdict, counts } = decide(deciding, quantifier, alpha);
    return { id, claim: FINDING_CLAIMS[id], rule, quantifier, decidedBy: deciding.map((c) => c.id), counts, verdict, reason: reasonText(verdict, counts, deciding.length, missing) };
  };

  const one = finding(
    1,
    `DSC of every strategy with ${hasMulti ? 'the multi-lesion model' : 'each pre-trained model'} against from scratch; quantifier 'any' (some way of using the pre-trained model helps, none hurts)`,
    'any',
    pick('vs-scratch', ['dsc'], (c) => !hasMulti || c.a.pretrained === 'multi'),
    'no from-scratch arm or no pre-trained arm',
  );
  const two = finding(2, "DSC of the multi-lesion model against each single-lesion model with the same strategy; quantifier 'any' (better somewhere, worse nowhere)", 'any', pick('multi-vs-single', ['dsc'], () => true), 'no multi-lesion and single-lesion arms with the same strategy');

  const three = finding(
    3,
    "DSC of the frozen encoder (Pre-trained Lesion Representations) with the multi-lesion model against from scratch; quantifier 'all'; and its mean seconds per epoch below scratch's",
    'all',
    pick('vs-scratch', ['dsc'], (c) => c.a.strategy === 'frozen-encoder' && c.a.pretrained === 'multi'),
    'no frozen-encoder arm with the multi-lesion model, or no from-scratch arm',
  );
  const frozen = arms.find((arm) => arm.pretrained === 'multi' && arm.strategy === 'frozen-encoder' && armName(arm) === arm.strategy);
  const scratch = arms.find((arm) => arm.strategy === 'scratch');
  const frozenSeconds = frozen?.summary.secondsPerEpoch.mean ?? null;
  const scratchSeconds = scratch?.summary.secondsPerEpoch.mean ?? null;
  const ratio = frozenSeconds !== null && scratchSeconds !== null && scratchSeconds > 0 ? frozenSeconds / scratchSeconds : null;
  three.secondsPerEpoch = { frozenEncoder: frozenSeconds, scratch: scratchSeconds, ratio, paperRatio: PAPER_SECONDS_PER_EPOCH.frozenEncoder / PAPER_SECONDS_PER_EPOCH.scratch };
  if (three.verdict !== 'not tested') {
    const ratioText = ratio === null ? 'no seconds per epoch recorded' : `s/epoch ratio frozen / scratch ${ratio.toFixed(3)} (paper ${three.secondsPerEpoch.paperRatio.toFixed(3)})`;
    if (ratio === null) three.verdict = three.verdict === 'supported' ? 'inconclusive' : three.verdict;
    else if (ratio >= 1) three.verdict = 'not supported';
    three.reason = `${three.reason}; ${ratioText}${ratio !== null && ratio >= 1 ? ', not cheaper' : ''}`;
  }

  const four = finding(
    4,
    "DSC, NSD and Sensitivity of the Hybrid-encoder with the multi-lesion model against every other strategy with that model and against from scratch; quantifier 'all'",
    'all',
    [
      ...pick('hybrid-vs-other', ['dsc', 'nsd', 'sensitivity'], (c) => c.a.pretrained === 'multi'),
      ...pick('vs-scratch', ['dsc', 'nsd', 'sensitivity'], (c) => c.a.strategy === 'hybrid' && c.a.pretrained === 'multi'),
    ],
    'no hybrid arm with the multi-lesion model',
  );
  return { alpha, level: 'cases', rule: VERDICT_RULE, findings: [one, two, three, four] };
}
