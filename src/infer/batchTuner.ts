/**
 * Windows per forward batch chosen by measured throughput (`predict --batch auto`). The sliding
 * window's first batches try each candidate size twice (the first forward at a new batch shape
 * pays for oneDNN's primitive creation, so only the second one is timed); then every later batch
 * uses the size with the lowest seconds per window. A larger batch is taken only when it is
 * faster by more than `margin`, because it costs memory (one more window of activations each).
 * Every trial batch is a real batch of the case: nothing is computed twice.
 */

export interface BatchTunerOptions {
  /** Sizes to try, ascending (default 1, 2, 4). */
  candidates?: readonly number[];
  /** A larger size must be faster per window by more than this fraction (default 0.05). */
  margin?: number;
  /** Trials per candidate; the last one is timed (default 2). */
  trials?: number;
}

export interface BatchTunerReport {
  /** The size every batch after the trials uses (null while still trying). */
  chosen: number | null;
  /** Seconds per window of each candidate's timed trial. */
  secondsPerWindow: Record<string, number>;
}

export const BATCH_TUNER_DEFAULTS = { candidates: [1, 2, 4] as readonly number[], margin: 0.05, trials: 2 } as const;

export class BatchTuner {
  private readonly candidates: readonly number[];
  private readonly margin: number;
  private readonly trials: number;
  private readonly timed = new Map<number, number>();
  private trial = 0;
  private chosenSize: number | null = null;

  constructor(options: BatchTunerOptions = {}) {
    this.candidates = options.candidates ?? BATCH_TUNER_DEFAULTS.candidates;
    this.margin = options.margin ?? BATCH_TUNER_DEFAULTS.margin;
    this.trials = options.trials ?? BATCH_TUNER_DEFAULTS.trials;
    if (this.candidates.length === 0 || this.candidates.some((c, i) => !Number.isInteger(c) || c < 1 || (i > 0 && c <= this.candidates[i - 1]!))) {
      throw new RangeError(`batch candidates must be ascending positive integers, got [${this.candidates.join(', ')}]`);
    }
    if (!Number.isInteger(this.trials) || this.trials < 1) throw new RangeError(`trials must be a positive integer, got ${this.trials}`);
  }

  /** The size of the next batch, given how many windows are left. */
  next(remaining: number): number {
    if (this.chosenSize !== null) return Math.min(this.chosenSize, remaining);
    return Math.min(this.candidates[Math.floor(this.trial / this.trials)]!, remaining);
  }

  /** Record that a batch of `size` windows took `seconds` (only full trial batches count). */
  record(size: number, seconds: number): void {
    if (this.chosenSize !== null) return;
    const candidate = this.candidates[Math.floor(this.trial / this.trials)]!;
    if (size !== candidate) {
      // The volume ran out of windows before the trials ended: keep the largest size timed so far, else this one.
      this.chosenSize = this.best() ?? candidate;
      return;
    }
    if (this.trial % this.trials === this.trials - 1) this.timed.set(candidate, seconds / size);
    this.trial += 1;
    if (this.trial === this.candidates.length * this.trials) this.chosenSize = this.best();
  }

  /** The smallest timed size within `margin` of the fastest; null before any timing. */
  private best(): number | null {
    if (this.timed.size === 0) return null;
    let chosen: number | null = null;
    let chosenRate = Infinity;
    for (const size of [...this.timed.keys()].sort((a, b) => a - b)) {
      const rate = this.timed.get(size)!;
      if (chosen === null || rate < chosenRate * (1 - this.margin)) {
        chosen = size;
        chosenRate = rate;
      }
    }
    return chosen;
  }

  get report(): BatchTunerReport {
    return { chosen: this.chosenSize, secondsPerWindow: Object.fromEntries([...this.timed].map(([size, rate]) => [String(size), rate])) };
  }
}
