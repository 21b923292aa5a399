/**
 * Adaptive mirroring (issue 24): run a window's 7 mirrored passes only where they can change the
 * mask. The un-mirrored pass runs first; a window whose logits have, everywhere in its central
 * region (the voxels where its Gaussian weight is at least a fraction of the peak, i.e. where it
 * dominates the blend), a gap of at least `margin` between the two largest class logits keeps its
 * un-mirrored logits; any other window gets the full mean of its 8 passes, computed as full
 * mirroring computes it. The mean of the 8 passes differs from the un-mirrored pass by the
 * mirrored passes' disagreement, so a voxel far from every decision boundary keeps its class
 * unless that disagreement exceeds its margin; how often it does on trained models is measured
 * (results/tta), not proved. Rule `margin: Infinity` mirrors every window: full mirroring.
 */

export interface MirrorRule {
  /** Windows whose central region has a top-two logit gap below this get their mirrored passes (logits). */
  margin: number;
  /** The central region: voxels whose Gaussian weight is at least this fraction of the peak, in [0, 1]. */
  centralWeight: number;
}

/**
 * The default rule of `predict` (`--tta adaptive`): measured on the demo study's trained
 * models (results/tta/README.md).
 */
export const ADAPTIVE_MIRROR_RULE: Readonly<MirrorRule> = Object.freeze({ margin: 1, centralWeight: 0.05 });

/** Every window runs its mirrored passes (nnU-Net's behaviour). */
export const FULL_MIRROR_RULE: Readonly<MirrorRule> = Object.freeze({ margin: Infinity, centralWeight: 0 });

/** The TTA modes `predict --tta` takes. */
export const TTA_MODES = ['adaptive', 'full'] as const;
export type TtaMode = (typeof TTA_MODES)[number];

export function mirrorRuleOf(mode: TtaMode): Readonly<MirrorRule> {
  return mode === 'full' ? FULL_MIRROR_RULE : ADAPTIVE_MIRROR_RULE;
}

/** The largest class logit minus the second at voxel `v`; NaN where a logit is NaN. */
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

/** The voxel indices of the central region of a window with Gaussian weights `weights`. */
export function centralRegion(weights: Float32Array, fraction: number): Uint32Array {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`the central region's weight fraction must be in [0, 1], got ${fraction}`);
  let peak = 0;
  for (const w of weights) if (w > peak) peak = w;
  const indices: number[] = [];
  weights.forEach((w, i) => {
    if (w >= fraction * peak) indices.push(i);
  });
  return Uint32Array.from(indices);
}

/**
 * Whether a window needs its mirrored passes under `margin`: some voxel of `region` has a top-two
 * gap (of the window's un-mirrored `logits`, [K, z, y, x] flattened) below `margin`, or NaN logits.
 */
export function needsMirroring(logits: Float32Array, classes: number, voxels: number, region: Uint32Array, margin: number): boolean {
  if (margin === Infinity) return true;
  if (classes < 2) return false;
  for (const v of region) if (!(gapAt(logits, classes, voxels, v) >= margin)) return true;
  return false;
}
