/**
 * Adaptive mirroring (issue 24): run a window's 7 mirrored passes only where they can change the
 * mask. Every window runs un-mirrored first, and their Gaussian blend (the `--no-tta` logits) is
 * gathered; a window gets its mirrored passes when, at some voxel where it holds at least `share` of
 * the blend's weight (its Gaussian weight over the summed weights of every window there), the
 * blend's top-two class logits are less than `margin` apart. Any other window keeps its
 * un-mirrored logits; a mirrored one contributes the mean of its 8 passes, computed as full
 * mirroring computes it. A voxel whose blended logits are far from every decision boundary keeps
 * its class unless the mirrored passes of the windows that weigh there disagree by more than that;
 * how often they do on trained models is measured (results/tta), not proved. A window is decided
 * once every window overlapping it has run un-mirrored (MirrorDecisions); the sliding window keeps
 * the un-mirrored logits of the windows not yet decided. Rule `margin: Infinity` mirrors every
 * window (full mirroring), `margin: 0` none (no mirroring).
 */
import type { Triple, WindowBox } from './slidingWindow.js';

export interface MirrorRule {
  /** Windows weighing at a voxel whose un-mirrored blend has a top-two logit gap below this get their mirrored passes (logits). */
  margin: number;
  /** What a window must hold there: its Gaussian weight over the summed weights of the windows covering the voxel, in [0, 1]. */
  share: number;
}

/**
 * The default rule of `predict` (`--tta adaptive`): measured on the demo study's trained
 * models (results/tta/README.md, bench/tta-rules.ts).
 */
export const ADAPTIVE_MIRROR_RULE: Readonly<MirrorRule> = Object.freeze({ margin: 0.5, share: 0.2 });

/** Every window runs its mirrored passes (nnU-Net's behaviour). */
export const FULL_MIRROR_RULE: Readonly<MirrorRule> = Object.freeze({ margin: Infinity, share: 0 });

/** The TTA modes `predict --tta` takes. */
export const TTA_MODES = ['adaptive', 'full'] as const;
export type TtaMode = (typeof TTA_MODES)[number];

export function mirrorRuleOf(mode: TtaMode): Readonly<MirrorRule> {
  return mode === 'full' ? FULL_MIRROR_RULE : ADAPTIVE_MIRROR_RULE;
}

/** The largest class logit minus the second at voxel `v` (class planes `voxels` apart); NaN where a logit is NaN. */
function gapAt(logits: Float32Array, classes: number, voxels: number, v: number): number {
  let first = logits[v]!;
  let second = -Infinity;
  for (let k = 1; k < classes; k++) {
    const value = logits[k * voxels + v]!;
    if (value > first) {
      second = first;
      first = value;
    } else if (value > second) {
      second = value;
    } else if (Number.isNaN(value)) {
      return NaN;
    }
  }
  return Number.isNaN(first) ? NaN : first - second;
}

/**
 * Per voxel, the largest class logit minus the second largest: `logits` holds `classes` planes of
 * `voxels` values each (one window, [K, z, y, x] flattened). One class: Infinity everywhere.
 */
export function topTwoMargins(logits: Float32Array, classes: number, voxels: number, out = new Float32Array(voxels)): Float32Array {
  if (logits.length < classes * voxels) throw new RangeError(`topTwoMargins: ${logits.length} logits for ${classes} x ${voxels}`);
  if (classes < 2) return out.fill(Infinity);
  for (let v = 0; v < voxels; v++) out[v] = gapAt(logits, classes, voxels, v);
  return out;
}

/** Per window, the last window (in `boxes` order) whose box overlaps it (itself at least). */
export function lastOverlapping(boxes: readonly WindowBox[], patch: Triple): Int32Array {
  const last = new Int32Array(boxes.length);
  boxes.forEach((a, i) => {
    let j = boxes.length - 1;
    while (j > i && !boxes[j]!.start.every((s, axis) => Math.abs(s - a.start[axis]!) < patch[axis]!)) j--;
    last[i] = j;
  });
  return last;
}

/**
 * The un-mirrored blend of a sliding window, gathered window by window on the host, and the rule's
 * decision for each window once the blend is complete over its box: `add` each window's
 * un-mirrored logits ([K, z, y, x] flattened; the ensemble's mean) in any order, then
 * `needsMirroring(i)` for a window whose overlapping windows have all been added
 * (`decidable(i, added)` when the windows 0 .. added - 1 have).
 *
 * Memory: the blend and the summed weights are kept only for the z-planes some window not yet
 * decided may still read (a slab from the lowest z-start of the undecided windows to the end of the
 * highest window added, about two patch depths for the sliding window's z-major order), not for the
 * whole volume; planes below it are dropped and reused, planes above it start at 0. Each plane holds
 * what the full map held: the same sums in the same order.
 */
export class MirrorDecisions {
  private readonly plane: number;
  private readonly last: Int32Array;
  /** Per window i, the lowest z-start of windows i, i + 1, ...: the lowest plane an undecided window may read. */
  private readonly lowestStart: Int32Array;
  /** Per window: -1 not decided, else 0 / 1 (needsMirroring's answer, kept). */
  private readonly answer: Int8Array;
  private firstUndecided = 0;
  /** The slab: planes base .. base + depth - 1 of the summed weights and of each class's blend (class-major). */
  private base = 0;
  private depth = 0;
  private capacity = 0;
  private weightSum = new Float32Array(0);
  private blend = new Float32Array(0);

  constructor(
    private readonly boxes: readonly WindowBox[],
    private readonly shape: Triple,
    private readonly patch: Triple,
    private readonly gaussian: Float32Array,
    private readonly numClasses: number,
    private readonly rule: Readonly<MirrorRule>,
  ) {
    if (!(rule.share >= 0 && rule.share <= 1)) throw new RangeError(`the mirroring rule's weight share must be in [0, 1], got ${rule.share}`);
    if (!(rule.margin >= 0)) throw new RangeError(`the mirroring rule's margin must be >= 0 logits, got ${rule.margin}`);
    this.plane = shape[1] * shape[2];
    this.last = lastOverlapping(boxes, patch);
    this.lowestStart = new Int32Array(boxes.length + 1).fill(shape[0]);
    for (let i = boxes.length - 1; i >= 0; i--) this.lowestStart[i] = Math.min(this.lowestStart[i + 1]!, boxes[i]!.start[0]!);
    this.answer = new Int8Array(boxes.length).fill(-1);
  }

  /** Planes held now (the slab's depth), for tests and memory accounting. */
  get planesHeld(): number {
    return this.depth;
  }

  /** Makes the slab hold planes lo .. hi - 1 (lo never below the current base), dropping those below lo. */
  private hold(lo: number, hi: number): void {
    if (this.depth > 0 && lo >= this.base && hi <= this.base + this.depth) return;
    const from = this.depth === 0 ? lo : Math.min(lo, this.base + this.depth);
    const depth = Math.max(hi, this.base + this.depth) - from;
    const kept = this.depth === 0 ? 0 : this.base + this.depth - from;
    const P = this.plane;
    const K = this.numClasses;
    if (depth > this.capacity) {
      // Grow (at least one more patch depth, so that growth is rare), copying the planes kept.
      const capacity = Math.max(depth, this.capacity + this.patch[0]);
      const weightSum = new Float32Array(capacity * P);
      const blend = new Float32Array(K * capacity * P);
      if (kept > 0) {
        const skip = (from - this.base) * P;
        weightSum.set(this.weightSum.subarray(skip, skip + kept * P));
        for (let k = 0; k < K; k++) blend.set(this.blend.subarray(k * this.capacity * P + skip, k * this.capacity * P + skip + kept * P), k * capacity * P);
      }
      this.weightSum = weightSum;
      this.blend = blend;
      this.capacity = capacity;
    } else if (kept > 0 && from > this.base) {
      // Shift the planes kept to the front and clear the rest.
      const skip = (from - this.base) * P;
      this.weightSum.copyWithin(0, skip, skip + kept * P);
      this.weightSum.fill(0, kept * P);
      for (let k = 0; k < K; k++) {
        const at = k * this.capacity * P;
        this.blend.copyWithin(at, at + skip, at + skip + kept * P);
        this.blend.fill(0, at + kept * P, at + this.capacity * P);
      }
    } else if (kept === 0) {
      this.weightSum.fill(0);
      this.blend.fill(0);
    }
    this.base = from;
    this.depth = depth;
  }

  /** Calls `f(patch voxel, slab voxel)` for every voxel of `box` (its planes held). */
  private visit(box: WindowBox, f: (v: number, o: number) => boolean | void): boolean {
    const X = this.shape[2];
    let v = 0;
    for (let z = 0; z < this.patch[0]; z++) for (let y = 0; y < this.patch[1]; y++) {
      let o = ((box.start[0]! - this.base + z) * this.shape[1] + box.start[1]! + y) * X + box.start[2]!;
      for (let x = 0; x < this.patch[2]; x++, v++, o++) if (f(v, o) === true) return true;
    }
    return false;
  }

  /** Window `i`'s un-mirrored logits, [K, z, y, x] of the patch flattened. */
  add(i: number, logits: Float32Array): void {
    const P = this.gaussian.length;
    if (logits.length !== this.numClasses * P) throw new RangeError(`window ${i}: ${logits.length} logits for ${this.numClasses} x ${P}`);
    if (this.answer[i] !== -1) throw new RangeError(`window ${i} was decided before it was added`);
    const box = this.boxes[i]!;
    this.hold(this.lowestStart[this.firstUndecided]!, box.start[0]! + this.patch[0]);
    const stride = this.capacity * this.plane;
    this.visit(box, (v, o) => {
      const weight = this.gaussian[v]!;
      this.weightSum[o]! += weight;
      for (let k = 0; k < this.numClasses; k++) this.blend[k * stride + o]! += weight * logits[k * P + v]!;
    });
  }

  /** Whether window `i` can be decided once windows 0 .. added - 1 have been added. */
  decidable(i: number, added: number): boolean {
    return this.last[i]! < added;
  }

  /** Whether window `i` gets its mirrored passes (every window overlapping it added; asked again, the same answer). */
  needsMirroring(i: number): boolean {
    if (this.answer[i] === -1) {
      this.answer[i] = this.decide(i) ? 1 : 0;
      while (this.firstUndecided < this.boxes.length && this.answer[this.firstUndecided] !== -1) this.firstUndecided++;
    }
    return this.answer[i] === 1;
  }

  private decide(i: number): boolean {
    const { margin, share } = this.rule;
    if (margin === Infinity) return true;
    if (this.numClasses < 2 || margin === 0) return false;
    const box = this.boxes[i]!;
    if (box.start[0]! < this.base || box.start[0]! + this.patch[0] > this.base + this.depth) {
      throw new RangeError(`window ${i} is decided before every window overlapping it was added`);
    }
    const K = this.numClasses;
    const stride = this.capacity * this.plane;
    return this.visit(box, (v, o) => {
      const total = this.weightSum[o]!;
      if (!(this.gaussian[v]! >= share * total)) return false;
      // The blend is not divided by the summed weight: its gap is compared with margin x that weight.
      return !(gapAt(this.blend, K, stride, o) >= margin * total);
    });
  }
}
