/**
 * How often a window's mirrored passes can change the mask, on a finished study's trained models:
 * for every window of every test case, the un-mirrored logits L0 and the 8-way mirrored mean M8
 * (precision auto, as predict's default), then, offline, for each rule (margin threshold t in
 * logits, central region = voxels whose Gaussian weight is >= f of its peak) the blend that runs
 * the 7 mirrored passes only for windows with a voxel of the region whose L0 top-two margin is
 * below t (others contribute L0). Each blend's mask (argmax on the preprocessed grid) is compared
 * with full mirroring's: fraction of windows mirrored, equal voxels, DSC of class >= 1.
 * It also times one window's 8 passes as one forward of batch 8 against 8 forwards of batch 1.
 * Usage: npx tsx bench/tta-margin.ts --study DIR [--arm all | A,B] [--cases 4] [--thresholds 0.5,1,2,4]
 *        [--floors 0,0.05,0.2] [--threads 2] [--out FILE]
 * Prints one JSON object.
 */
import { cpuInfo } from '../src/core/index.js';
import { gaussianImportanceMap, mirrorCombinations } from '../src/infer/index.js';
import { resolvePrecisionFlag } from '../src/cli/precision.js';
import { cast, contiguous, flip, narrow, setNumThreads, stack } from '../src/tensor/index.js';
import { topTwoMargins } from '../src/infer/adaptiveMirroring.js';
import { studyArms, studyCases } from './study-windows.js';
import { option, report } from './support.js';

const study = option('study', '');
const armOption = option('arm', 'all');
const arms = studyArms(study, armOption);
const caseLimit = Number(option('cases', '4'));
const thresholds = option('thresholds', '0.25,0.5,1,1.5,2,3,4').split(',').map(Number);
const floors = option('floors', '0,0.01,0.05,0.2').split(',').map(Number);
setNumThreads(Number(option('threads', '2')));
const device = { type: 'cpu' } as const;
const precision = resolvePrecisionFlag('auto', device);

interface RuleTotals { windows: number; mirrored: number; voxels: number; equal: number; dscs: number[] }
const totals = new Map<string, RuleTotals>();
const key = (t: number, f: number): string => `t=${t} f=${f}`;
let timing: { batch8: number; batch1x8: number; windows: number } | null = null;
const perCase: { arm: string; caseId: string; windows: number; minMarginHistogram: number[] }[] = [];
const HISTOGRAM_EDGES = [0.25, 0.5, 1, 2, 4, 8, 16];

for await (const c of studyCases(study, arms, caseLimit, precision)) {
  const { arm, caseId, boxes, patch, shape, forward } = c;
  const K = c.numClasses;
  const P = patch[0] * patch[1] * patch[2];
  const gauss = gaussianImportanceMap(patch);
  const peak = Math.max(...gauss);
  const combos = mirrorCombinations([0, 1, 2]);
  {
    // (A block as the case loop had, so the code below keeps its indentation.)
    const l0: Float32Array[] = [];
    const m8: Float32Array[] = [];
    c.forEachWindow((window, w) => {
      const inputs = combos.map((c) => (c.length > 0 ? flip(window, c.map((a) => a + 1)) : window));
      const t0 = performance.now();
      const out = cast(forward(stack(inputs, 0)), 'float32');
      const t1 = performance.now();
      if (timing === null || timing.windows < 16) {
        for (const input of inputs) forward(stack([input], 0)).dispose();
        const t2 = performance.now();
        timing ??= { batch8: 0, batch1x8: 0, windows: 0 };
        if (w > 0) { timing.batch8 += (t1 - t0) / 1000; timing.batch1x8 += (t2 - t1) / 1000; timing.windows++; }
      }
      const backs = combos.map((c, i) => {
        const o = narrow(out, 0, i, 1);
        return c.length > 0 ? flip(o, c.map((a) => a + 2)) : o;
      });
      l0.push(contiguous(backs[0]!).toFloat32Array());
      const mean = new Float32Array(K * P);
      for (const b of backs) { const v = contiguous(b).toFloat32Array(); for (let i = 0; i < mean.length; i++) mean[i]! += v[i]!; }
      for (let i = 0; i < mean.length; i++) mean[i]! /= 8;
      m8.push(mean);
    });
    // The central region's smallest L0 margin of each window.
    const minMargin = (floor: number) => l0.map((logits) => {
      const margins = topTwoMargins(logits, K, P);
      let min = Infinity;
      for (let v = 0; v < P; v++) if (gauss[v]! >= floor * peak && margins[v]! < min) min = margins[v]!;
      return min;
    });
    const blend = (useMirror: boolean[]): Uint8Array => {
      const n = shape[0] * shape[1] * shape[2];
      const acc = new Float32Array(K * n);
      const weight = new Float32Array(n);
      boxes.forEach((box, w) => {
        const src = useMirror[w] ? m8[w]! : l0[w]!;
        for (let z = 0; z < patch[0]; z++) for (let y = 0; y < patch[1]; y++) for (let x = 0; x < patch[2]; x++) {
          const v = (z * patch[1] + y) * patch[2] + x;
          const o = ((box.start[0]! + z) * shape[1] + box.start[1]! + y) * shape[2] + box.start[2]! + x;
          weight[o]! += gauss[v]!;
          for (let k = 0; k < K; k++) acc[k * n + o]! += gauss[v]! * src[k * P + v]!;
        }
      });
      const mask = new Uint8Array(n);
      for (let o = 0; o < n; o++) {
        let best = 0;
        for (let k = 1; k < K; k++) if (acc[k * n + o]! > acc[best * n + o]!) best = k;
        mask[o] = best;
      }
      return mask;
    };
    const full = blend(boxes.map(() => true));
    const hist = new Array<number>(HISTOGRAM_EDGES.length + 1).fill(0);
    for (const m of minMargin(0.05)) hist[HISTOGRAM_EDGES.findIndex((e) => m < e) < 0 ? HISTOGRAM_EDGES.length : HISTOGRAM_EDGES.findIndex((e) => m < e)]!++;
    perCase.push({ arm, caseId, windows: boxes.length, minMarginHistogram: hist });
    for (const f of floors) {
      const mins = minMargin(f);
      for (const t of thresholds) {
        const use = mins.map((m) => m < t);
        const mask = blend(use);
        let equal = 0; let inter = 0; let a = 0; let b = 0;
        for (let o = 0; o < mask.length; o++) {
          if (mask[o] === full[o]) equal++;
          const p = mask[o]! > 0 ? 1 : 0; const q = full[o]! > 0 ? 1 : 0;
          inter += p & q; a += p; b += q;
        }
        const entry = totals.get(key(t, f)) ?? { windows: 0, mirrored: 0, voxels: 0, equal: 0, dscs: [] };
        entry.windows += boxes.length; entry.mirrored += use.filter(Boolean).length; entry.voxels += mask.length; entry.equal += equal;
        entry.dscs.push(a + b === 0 ? 1 : (2 * inter) / (a + b));
        totals.set(key(t, f), entry);
      }
    }
    process.stderr.write(`tta-margin: ${arm} ${caseId} (${boxes.length} windows) done\n`);
  }
}

report({
  benchmark: 'tta-margin', cpu: cpuInfo(), precision, arms, histogramEdges: HISTOGRAM_EDGES,
  batching: timing,
  rules: [...totals.entries()].map(([rule, e]) => ({
    rule, mirroredFraction: e.mirrored / e.windows, equalVoxels: e.equal / e.voxels, worstCaseDscToFull: Math.min(...e.dscs), meanDscToFull: e.dscs.reduce((s, v) => s + v, 0) / e.dscs.length,
  })),
  perCase,
});
