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
 */
export class MirrorDecisions {
  private readonly weightSum: Float32Array;
  private readonly blend: Float32Array;
  private readonly voxels: number;
  private readonly last: Int32Array;

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
    this.voxels = shape[0] * shape[1] * shape[2];
    this.weightSum = new Float32Array(this.voxels);
    this.blend = new Float32Array(numClasses * this.voxels);
    this.last = lastOverlapping(boxes, patch);
    for (const box of boxes) this.visit(box, (v, o) => { this.weightSum[o]! += gaussian[v]!; });
  }

  /** Calls `f(patch voxel, volume voxel)` for every voxel of `box`. */
  private visit(box: WindowBox, f: (v: number, o: number) => boolean | void): boolean {
    const [, Y, X] = this.shape;
    let v = 0;
    for (let z = 0; z < this.patch[0]; z++) for (let y = 0; y < this.patch[1]; y++) {
      let o = ((box.start[0]! + z) * Y + box.start[1]! + y) * X + box.start[2]!;
      for (let x = 0; x < this.patch[2]; x++, v++, o++) if (f(v, o) === true) return true;
    }
    return false;
  }

  /** Window `i`'s un-mirrored logits, [K, z, y, x] of the patch flattened. */
  add(i: number, logits: Float32Array): void {
    const P = this.gaussian.length;
    if (logits.length !== this.numClasses * P) throw new RangeError(`window ${i}: ${logits.length} logits for ${this.numClasses} x ${P}`);
    this.visit(this.boxes[i]!, (v, o) => {
      for (let k = 0; k < this.numClasses; k++) this.blend[k * this.voxels + o]! += this.gaussian[v]! * logits[k * P + v]!;
    });
  }

  /** Whether window `i` can be decided once windows 0 .. added - 1 have been added. */
  decidable(i: number, added: number): boolean {
    return this.last[i]! < added;
  }

  /** Whether window `i` gets its mirrored passes (every window overlapping it added). */
  needsMirroring(i: number): boolean {
    const { margin, share } = this.rule;
    if (margin === Infinity) return true;
    if (this.numClasses < 2 || margin === 0) return false;
    const K = this.numClasses;
    const n = this.voxels;
    return this.visit(this.boxes[i]!, (v, o) => {
      const total = this.weightSum[o]!;
      if (!(this.gaussian[v]! >= share * total)) return false;
      // The blend is not divided by the summed weight: its gap is compared with margin x that weight.
      return !(gapAt(this.blend, K, n, o) >= margin * total);
    });
  }
}
