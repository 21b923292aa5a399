/**
 * MetricAccumulator: the thin stateful shell over the pure metric functions (as MONAI's
 * DiceMetric over compute_dice). It only stores named per-case results, grouped by fold, and
 * hands them to summary.ts; it computes no metric itself.
 */
import { InputError } from '../core/index.js';
import type { CaseMetrics } from './caseMetrics.js';
import { summariseCases, summariseFolds, type FoldSummary, type Summary } from './summary.js';

export interface CaseRecord {
  caseName: string;
  /** Fold index (0-based), or undefined outside cross-validation. */
  fold: number | undefined;
  metrics: CaseMetrics;
}

export class MetricAccumulator {
  private readonly records: CaseRecord[] = [];

  /** Adds one case; a case name may appear once per fold. */
  add(caseName: string, metrics: CaseMetrics, fold?: number): void {
    if (fold !== undefined && !(Number.isInteger(fold) && fold >= 0)) {
      throw new InputError(`MetricAccumulator: fold must be a non-negative integer, got ${fold}`);
    }
    if (this.records.some((r) => r.caseName === caseName && r.fold === fold)) {
      throw new InputError(`MetricAccumulator: case '${caseName}' was already added${fold === undefined ? '' : ` to fold ${fold}`}`);
    }
    this.records.push({ caseName, fold, metrics });
  }

  get size(): number {
    return this.records.length;
  }

  /** The stored records, in insertion order. */
  cases(): readonly CaseRecord[] {
    return this.records;
  }

  /** Summary over every case added. */
  summary(): Summary {
    return summariseCases(this.records.map((r) => r.metrics));
  }

  /** Per-fold summaries (folds 0..max, an absent fold gives an empty summary) and overall. */
  foldSummary(): FoldSummary {
    const maxFold = Math.max(-1, ...this.records.map((r) => r.fold ?? -1));
    const folds: CaseMetrics[][] = Array.from({ length: maxFold + 1 }, () => []);
    for (const r of this.records) {
      if (r.fold === undefined) throw new InputError(`MetricAccumulator: case '${r.caseName}' has no fold`);
      folds[r.fold]!.push(r.metrics);
    }
    return summariseFolds(folds);
  }

  reset(): void {
    this.records.length = 0;
  }
}
