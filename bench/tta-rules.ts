/**
 * Which windows need their mirrored passes, rule against rule, on a finished study's trained
 * two-class models: every window of every test case runs all 8 mirror passes once (precision auto,
 * as predict's default; each pass flipped back), then, offline on the preprocessed grid, each rule
 * chooses per window which passes it contributes the mean of (the un-mirrored pass, the 4 passes of
 * the identity and the 3 single-axis flips, or all 8), and the blend's mask is compared with full
 * mirroring's (all 8 everywhere): passes against `--no-tta`'s (one per window), equal voxels, DSC.
 * Rules (d = the class-1 logit minus the class-0 logit; the decision is d > 0):
 * - window f t: a window gets its 7 mirrored passes when a voxel of its central region (Gaussian
 *   weight >= f x peak) has |d0| < t (session 8's rule, results/tta/margin-sweep.json).
 * - progressive f t1 t2 k: the windows the window rule (f, t1) names get the 3 single-axis flips;
 *   of those, the ones with a voxel of the region whose 4-pass mean m4 has |m4| < t2 + k x s (s: the
 *   largest |d_p - m4| of the 4 passes there) get the other 4; the rest contribute m4.
 * - blend t s (and blend-progressive t1 t2 s): the un-mirrored blend B0 of the whole case; the
 *   windows whose share of the Gaussian weight (own weight / summed weight) is >= s at a voxel with
 *   |B0| < t get their 7 mirrored passes (progressive: the 3 single-axis flips, then the blend B4
 *   with those names the windows that get the rest at |B4| < t2).
 * Usage: npx tsx bench/tta-rules.ts --study DIR [--arm all | A,B] [--cases 4] [--threads 2] [--out FILE]
 * Prints one JSON object.
 */
import { cpuInfo } from '../src/core/index.js';
import { gaussianImportanceMap, mirrorCombinations, type Triple, type WindowBox } from '../src/infer/index.js';
import { resolvePrecisionFlag } from '../src/cli/precision.js';
import { cast, contiguous, flip, narrow, setNumThreads, stack } from '../src/tensor/index.js';
import { studyArms, studyCases } from './study-windows.js';
import { option, report } from './support.js';

const study = option('study', '');
const armOption = option('arm', 'all');
const arms = studyArms(study, armOption);
const caseLimit = Number(option('cases', '4'));
setNumThreads(Number(option('threads', '2')));
const device = { type: 'cpu' } as const;
const precision = resolvePrecisionFlag('auto', device);

/** Per window, which passes' mean it contributes: 1 (un-mirrored), 4 (with the single-axis flips) or 8. */
type Choice = Uint8Array;
interface Case {
  boxes: WindowBox[];
  shape: Triple;
  patch: Triple;
  gauss: Float32Array;
  /** Per window, the 8 passes' d, flipped back, pass-major: [8][P]. */
  d: Float32Array[];
}
interface RuleTotals { windows: number; passes: number; voxels: number; equal: number; equalPerCase: number[]; dscs: number[] }
const totals = new Map<string, RuleTotals>();

/** The mean of the first `n` passes (combination order) of window w at voxel v. */
function meanOf(c: Case, w: number, n: number, v: number): number {
  const P = c.gauss.length;
  const d = c.d[w]!;
  let s = 0;
  for (let p = 0; p < n; p++) s += d[p * P + v]!;
  return s / n;
}

/** The blended d of the case (windows contribute the mean their choice names) and the summed weights. */
function blend(c: Case, choice: Choice): { b: Float32Array; weight: Float32Array } {
  const [Z, Y, X] = c.shape;
  const n = Z * Y * X;
  const acc = new Float32Array(n);
  const weight = new Float32Array(n);
  const P = c.gauss.length;
  c.boxes.forEach((box, w) => {
    const k = choice[w]!;
    const d = c.d[w]!;
    let v = 0;
    for (let z = 0; z < c.patch[0]; z++) for (let y = 0; y < c.patch[1]; y++) {
      let o = ((box.start[0]! + z) * Y + box.start[1]! + y) * X + box.start[2]!;
      for (let x = 0; x < c.patch[2]; x++, v++, o++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += d[p * P + v]!;
        weight[o]! += c.gauss[v]!;
        acc[o]! += c.gauss[v]! * (s / k);
      }
    }
  });
  for (let o = 0; o < n; o++) acc[o]! /= weight[o]!;
  return { b: acc, weight };
}

/** Windows with share >= s at some voxel where |b| < t (b, weight from blend). */
function windowsAtBlend(c: Case, b: Float32Array, weight: Float32Array, t: number, s: number): boolean[] {
  const [, Y, X] = c.shape;
  return c.boxes.map((box) => {
    let v = 0;
    for (let z = 0; z < c.patch[0]; z++) for (let y = 0; y < c.patch[1]; y++) {
      let o = ((box.start[0]! + z) * Y + box.start[1]! + y) * X + box.start[2]!;
      for (let x = 0; x < c.patch[2]; x++, v++, o++) if (Math.abs(b[o]!) < t && c.gauss[v]! >= s * weight[o]!) return true;
    }
    return false;
  });
}

function score(c: Case, name: string, choice: Choice, full: Uint8Array): void {
  const { b } = blend(c, choice);
  let equal = 0; let inter = 0; let a = 0; let r = 0;
  for (let o = 0; o < b.length; o++) {
    const p = b[o]! > 0 ? 1 : 0;
    const q = full[o]!;
    if (p === q) equal++;
    inter += p & q; a += p; r += q;
  }
  let passes = 0;
  for (const k of choice) passes += k;
  const e = totals.get(name) ?? { windows: 0, passes: 0, voxels: 0, equal: 0, equalPerCase: [], dscs: [] };
  e.windows += choice.length; e.passes += passes; e.voxels += b.length; e.equal += equal;
  e.equalPerCase.push(equal / b.length);
  e.dscs.push(a + r === 0 ? 1 : (2 * inter) / (a + r));
  totals.set(name, e);
}

function evaluate(c: Case): void {
  const W = c.boxes.length;
  const P = c.gauss.length;
  const peak = Math.max(...c.gauss);
  const all8 = new Uint8Array(W).fill(8);
  const fullB = blend(c, all8).b;
  const full = Uint8Array.from(fullB, (v) => (v > 0 ? 1 : 0));
  const region = (f: number): number[] => [...c.gauss.keys()].filter((v) => c.gauss[v]! >= f * peak);
  // Per window and region, the smallest |d0| and, for the progressive rule, the 4-pass statistics.
  for (const f of [0.05, 0.2]) {
    const r = region(f);
    const min0 = c.d.map((d) => { let m = Infinity; for (const v of r) m = Math.min(m, Math.abs(d[v]!)); return m; });
    for (const t of [0.25, 0.5, 1, 2]) score(c, `window f=${f} t=${t}`, Uint8Array.from(min0, (m) => (m < t ? 8 : 1)), full);
    for (const t1 of [0.5, 1, 2]) for (const t2 of [0, 0.25, 0.5]) for (const k of [0.5, 1, 2]) {
      const choice = Uint8Array.from(min0, (m, w) => {
        if (!(m < t1)) return 1;
        for (const v of r) {
          const m4 = meanOf(c, w, 4, v);
          let spread = 0;
          for (let p = 0; p < 4; p++) spread = Math.max(spread, Math.abs(c.d[w]![p * P + v]! - m4));
          if (Math.abs(m4) < t2 + k * spread) return 8;
        }
        return 4;
      });
      score(c, `progressive f=${f} t1=${t1} t2=${t2} k=${k}`, choice, full);
    }
  }
  // The windows whose mirroring alone matters: replacing its 8-pass mean by its un-mirrored pass
  // (every other window keeping its 8) changes a voxel of full mirroring's mask. Mirroring exactly
  // those is no rule (it needs the 8 passes to know), but how many they are bounds what any
  // window rule can save.
  const fullBlend = blend(c, all8);
  const [, Y, X] = c.shape;
  const needed = c.boxes.map((box, w) => {
    let v = 0;
    for (let z = 0; z < c.patch[0]; z++) for (let y = 0; y < c.patch[1]; y++) {
      let o = ((box.start[0]! + z) * Y + box.start[1]! + y) * X + box.start[2]!;
      for (let x = 0; x < c.patch[2]; x++, v++, o++) {
        const changed = fullBlend.b[o]! - (c.gauss[v]! / fullBlend.weight[o]!) * (meanOf(c, w, 8, v) - c.d[w]![v]!);
        if ((changed > 0) !== (fullBlend.b[o]! > 0)) return true;
      }
    }
    return false;
  });
  score(c, 'oracle (windows whose mirroring alone changes the mask)', Uint8Array.from(needed, (u) => (u ? 8 : 1)), full);
  const b0 = blend(c, new Uint8Array(W).fill(1));
  for (const t of [0.25, 0.5, 1, 2]) for (const s of [0.1, 0.2, 0.3, 0.5]) {
    score(c, `blend t=${t} s=${s}`, Uint8Array.from(windowsAtBlend(c, b0.b, b0.weight, t, s), (u) => (u ? 8 : 1)), full);
  }
  for (const t1 of [0.5, 1, 2]) for (const t2 of [0.1, 0.25, 0.5]) for (const s of [0.1, 0.2]) {
    const first = Uint8Array.from(windowsAtBlend(c, b0.b, b0.weight, t1, s), (u) => (u ? 4 : 1));
    const b4 = blend(c, first);
    const second = windowsAtBlend(c, b4.b, b4.weight, t2, s);
    score(c, `blend-progressive t1=${t1} t2=${t2} s=${s}`, Uint8Array.from(first, (k, w) => (second[w] ? 8 : k)), full);
  }
}

for await (const c of studyCases(study, arms, caseLimit, precision)) {
  if (c.numClasses !== 2) throw new Error(`bench/tta-rules: two classes only, ${c.arm} has ${c.numClasses}`);
  const P = c.patch[0] * c.patch[1] * c.patch[2];
  const combos = mirrorCombinations([0, 1, 2]);
  const d: Float32Array[] = [];
  c.forEachWindow((window) => {
    const out = cast(c.forward(stack(combos.map((m) => (m.length > 0 ? flip(window, m.map((a) => a + 1)) : window)), 0)), 'float32');
    const passes = new Float32Array(8 * P);
    combos.forEach((m, i) => {
      const o = narrow(out, 0, i, 1);
      const logits = contiguous(m.length > 0 ? flip(o, m.map((a) => a + 2)) : o).toFloat32Array();
      for (let v = 0; v < P; v++) passes[i * P + v] = logits[P + v]! - logits[v]!;
    });
    d.push(passes);
  });
  evaluate({ boxes: c.boxes, shape: c.shape, patch: c.patch, gauss: gaussianImportanceMap(c.patch), d });
  process.stderr.write(`tta-rules: ${c.arm} ${c.caseId} (${c.boxes.length} windows) done\n`);
}

report({
  benchmark: 'tta-rules', cpu: cpuInfo(), precision, arms, cases: caseLimit,
  rules: [...totals.entries()].map(([rule, e]) => ({
    rule, passesPerNoTta: e.passes / e.windows, equalVoxels: e.equal / e.voxels, worstCaseEqual: Math.min(...e.equalPerCase),
    meanDscToFull: e.dscs.reduce((s, v) => s + v, 0) / e.dscs.length, worstCaseDscToFull: Math.min(...e.dscs),
  })),
});
