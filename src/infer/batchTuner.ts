/**
 * Windows per forward batch chosen by measured throughput (`predict --batch auto`). The sliding
 * window's first batches try each candidate size twice (the first forward at a new batch shape
 * pays for oneDNN's primitive creation, so only the second one is timed); then every later batch
 * uses the size with the lowest seconds per window. A larger batch is taken only when it is
 * faster by more than `margin`, because it costs memory (one more window of activations each).
 * Every trial batch is a real batch of the case: nothing is computed twice.
 *
 * The timing may choose the speed, never the logits: a window's logits must not depend on the
 * batch it ran in. libtorch 1.13 runs a fp32 convolution of a single window with small maps
 * through its own kernels instead of oneDNN's (ATen's use_mkldnn rule: batch > 1, or
 * N*C*D*H > 20480), which sum in another order (measured: up to 1.3e-5 apart in a U-Net's
 * logits), while batches of 2, 3, 4 and 5 windows give the same bits (bf16: every size does).
 * So the candidates start at 2 and no batch of one window is run unless the case has only one
 * (batchTuner.test.ts asserts both, with the logits, on a U-Net with every kind of layer).
 */

export interface BatchTunerOptions {
  /** Sizes to try, ascending (default 2, 4). */
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

export const BATCH_TUNER_DEFAULTS = { candidates: [2, 4] as readonly number[], margin: 0.05, trials: 2 } as const;

/**
 * Windows in the next batch of a sliding window that runs `size` at a time with `remaining` left:
 * `size`, or what is left, except that a lone last window joins this batch (size + 1), so that a
 * batched run never computes a window at batch 1 (see the file comment). `size` 1 stays 1.
 */
export function windowsInBatch(size: number, remaining: number): number {
  const take = Math.min(size, remaining);
  return take >= 2 && remaining - take === 1 ? take + 1 : take;
}

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
    if (this.chosenSize !== null) return windowsInBatch(this.chosenSize, remaining);
    return windowsInBatch(this.candidates[Math.floor(this.trial / this.trials)]!, remaining);
  }

  /** Record that a batch of `size` windows took `seconds` (only full trial batches count). */
  record(size: number, seconds: number): void {
    if (this.chosenSize !== null) return;
    const candidate = this.candidates[Math.floor(this.trial / this.trials)]!;
    if (size !== candidate) {
      // The volume ran out of windows before the trials ended: keep the size timed best so far, else the one run.
      this.chosenSize = this.best() ?? size;
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
