/**
 * The per-case summary behind `predict --summary`: infection volume, each lung's volume and share
 * involved, each lobe's share involved and the CT severity score, as pure functions on host arrays.
 *
 * Volumes are voxel counts times the voxel volume (mask.ts voxelVolumeMl: the product of the
 * spacing, mm^3, / 1000 for mL). A lung's or lobe's percent involved is 100 * (infection voxels inside it) / (its voxels),
 * NaN (null in JSON) when it is empty.
 *
 * The severity score is the semi-quantitative CT score of Pan et al., "Time course of lung changes
 * at chest CT during recovery from coronavirus disease 2019 (COVID-19)", Radiology 2020;295:715-721
 * (doi:10.1148/radiol.2020200370): each of the five lobes scores 0 (no involvement), 1 (< 5%),
 * 2 (5%-25%), 3 (26%-49%), 4 (50%-75%), 5 (> 75%), and the total is their sum, 0..25. Their bins
 * are read by eye in whole percents; on a computed, continuous percentage the bounds are taken as
 * 0 < p < 5 -> 1, 5 <= p <= 25 -> 2, 25 < p < 50 -> 3, 50 <= p <= 75 -> 4, p > 75 -> 5, and 0 only
 * for a lobe without one infected voxel (see SEVERITY_BINS).
 */
import { csvText, InputError } from '../core/index.js';
import { LUNG_LABELS } from './lungs.js';

/** TotalSegmentator's lobe names (its `total` task), which `--lobes DIR` files are named by. */
export const LOBE_NAMES = ['lung_upper_lobe_left', 'lung_lower_lobe_left', 'lung_upper_lobe_right', 'lung_middle_lobe_right', 'lung_lower_lobe_right'] as const;
export type LobeName = (typeof LOBE_NAMES)[number];

/**
 * Pan et al.'s lobe score by percent involved: the first bin whose upper bound the percentage does
 * not pass (`inclusive`: p <= bound, else p < bound). Score 0 is "no infected voxel", checked first.
 */
export const SEVERITY_BINS: readonly { score: 1 | 2 | 3 | 4 | 5; upperPercent: number; inclusive: boolean }[] = [
  { score: 1, upperPercent: 5, inclusive: false },
  { score: 2, upperPercent: 25, inclusive: true },
  { score: 3, upperPercent: 50, inclusive: false },
  { score: 4, upperPercent: 75, inclusive: true },
  { score: 5, upperPercent: Infinity, inclusive: true },
];

export const SEVERITY_CONVENTION =
  'CT severity score of Pan et al., Radiology 2020;295:715-721 (doi:10.1148/radiol.2020200370): per lobe 0 none, 1 <5%, 2 5-25%, 3 26-49%, 4 50-75%, 5 >75% involved, summed over the five lobes (0-25); computed percentages: 0 < p < 5 -> 1, 5 <= p <= 25 -> 2, 25 < p < 50 -> 3, 50 <= p <= 75 -> 4, p > 75 -> 5';

/** The lobe score (0..5) of a percentage involved (0..100); 0 only when nothing is involved. */
export function lobeSeverityScore(percentInvolved: number): 0 | 1 | 2 | 3 | 4 | 5 {
  if (!(percentInvolved >= 0 && percentInvolved <= 100)) throw new RangeError(`lobeSeverityScore: percent involved must lie in [0, 100], got ${percentInvolved}`);
  if (percentInvolved === 0) return 0;
  for (const bin of SEVERITY_BINS) {
    if (bin.inclusive ? percentInvolved <= bin.upperPercent : percentInvolved < bin.upperPercent) return bin.score;
  }
  return 5;
}

/** A region's (lung or lobe) numbers. */
export interface RegionInvolvement {
  voxels: number;
  volumeMl: number;
  infectionVoxels: number;
  infectionMl: number;
  /** null when the region is empty. */
  percentInvolved: number | null;
}

export interface LobeInvolvement extends RegionInvolvement {
  /** Pan et al.'s lobe score; null when the lobe mask is empty. */
  score: number | null;
}

export interface SeveritySummaryInput {
  /** Non-zero = infection, one value per voxel. */
  infection: ArrayLike<number>;
  /** Voxel volume in mL (voxelVolumeMl of the output geometry). */
  voxelMl: number;
  /** A lung label map, 1 left lung and 2 right lung (COVID-19-CT-Seg), with the source named. */
  lungs?: { labels: ArrayLike<number>; source: string };
  /** One binary mask per lobe (non-zero = inside), all five, with the source named. */
  lobes?: { masks: Readonly<Record<LobeName, ArrayLike<number>>>; source: string };
}

export interface SeveritySummary {
  voxelVolumeMl: number;
  infection: { voxels: number; volumeMl: number };
  lungs: {
    source: string;
    left: RegionInvolvement;
    right: RegionInvolvement;
    both: RegionInvolvement;
    infectionOutsideLungsMl: number;
  } | null;
  lobes: {
    source: string;
    convention: string;
    perLobe: Record<LobeName, LobeInvolvement>;
    /** Sum of the lobe scores (0..25); null when a lobe mask is empty. */
    severityScore: number | null;
  } | null;
}

function region(voxels: number, infectionVoxels: number, voxelMl: number): RegionInvolvement {
  return { voxels, volumeMl: voxels * voxelMl, infectionVoxels, infectionMl: infectionVoxels * voxelMl, percentInvolved: voxels === 0 ? null : (100 * infectionVoxels) / voxels };
}

function checkLength(what: string, array: ArrayLike<number>, expected: number): void {
  if (array.length !== expected) throw new InputError(`${what} has ${array.length} voxels, the infection mask ${expected}: they must share one grid`, { code: 'shape-mismatch' });
}

/** The case summary; every mask must have the infection mask's voxel count (one grid). */
export function severitySummary(input: SeveritySummaryInput): SeveritySummary {
  const { infection, voxelMl } = input;
  const n = infection.length;
  let infected = 0;
  for (let i = 0; i < n; i++) if (infection[i] !== 0) infected++;
  let lungs: SeveritySummary['lungs'] = null;
  if (input.lungs !== undefined) {
    const labels = input.lungs.labels;
    checkLength(`the lung mask (${input.lungs.source})`, labels, n);
    let left = 0;
    let right = 0;
    let infectedLeft = 0;
    let infectedRight = 0;
    for (let i = 0; i < n; i++) {
      const label = labels[i];
      if (label === LUNG_LABELS.left) {
        left++;
        if (infection[i] !== 0) infectedLeft++;
      } else if (label === LUNG_LABELS.right) {
        right++;
        if (infection[i] !== 0) infectedRight++;
      }
    }
    lungs = {
      source: input.lungs.source,
      left: region(left, infectedLeft, voxelMl),
      right: region(right, infectedRight, voxelMl),
      both: region(left + right, infectedLeft + infectedRight, voxelMl),
      infectionOutsideLungsMl: (infected - infectedLeft - infectedRight) * voxelMl,
    };
  }
  let lobes: SeveritySummary['lobes'] = null;
  if (input.lobes !== undefined) {
    const perLobe = {} as Record<LobeName, LobeInvolvement>;
    let total: number | null = 0;
    for (const name of LOBE_NAMES) {
      const mask = input.lobes.masks[name];
      checkLength(`lobe mask ${name} (${input.lobes.source})`, mask, n);
      let voxels = 0;
      let inside = 0;
      for (let i = 0; i < n; i++) {
        if (mask[i] === 0) continue;
        voxels++;
        if (infection[i] !== 0) inside++;
      }
      const numbers = region(voxels, inside, voxelMl);
      const score = numbers.percentInvolved === null ? null : lobeSeverityScore(numbers.percentInvolved);
      perLobe[name] = { ...numbers, score };
      total = total === null || score === null ? null : total + score;
    }
    lobes = { source: input.lobes.source, convention: SEVERITY_CONVENTION, perLobe, severityScore: total };
  }
  return { voxelVolumeMl: voxelMl, infection: { voxels: infected, volumeMl: infected * voxelMl }, lungs, lobes };
}

/** The CSV columns of a folder's summary, one row per case. */
export const SUMMARY_CSV_COLUMNS = [
  'case',
  'infection_ml',
  'left_lung_ml',
  'right_lung_ml',
  'left_percent_involved',
  'right_percent_involved',
  'lungs_percent_involved',
  ...LOBE_NAMES.flatMap((name) => [`${name}_percent_involved`, `${name}_score`]),
  'severity_score',
] as const;

function cell(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || Number.isNaN(value) ? '' : value.toFixed(digits);
}

/** One CSV (header + a row per case; empty cells where a case has no lungs or lobes). */
export function severitySummaryCsv(rows: readonly { caseId: string; summary: SeveritySummary }[]): string {
  const lines = [SUMMARY_CSV_COLUMNS.join(',')];
  for (const { caseId, summary } of rows) {
    const { lungs, lobes } = summary;
    lines.push(
      [
        csvText(caseId),
        cell(summary.infection.volumeMl, 3),
        cell(lungs?.left.volumeMl, 3),
        cell(lungs?.right.volumeMl, 3),
        cell(lungs?.left.percentInvolved, 3),
        cell(lungs?.right.percentInvolved, 3),
        cell(lungs?.both.percentInvolved, 3),
        ...LOBE_NAMES.flatMap((name) => [cell(lobes?.perLobe[name].percentInvolved, 3), cell(lobes?.perLobe[name].score, 0)]),
        cell(lobes?.severityScore, 0),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Which label values of a model's labels are the left lung, the right lung and the infection. */
export interface LabelRoles {
  left: number | null;
  right: number | null;
  /** Every other foreground label (not background, not `ignore`, not a lung). */
  infection: number[];
}

/**
 * Roles by name, as dataset.json names them: a label whose name holds "lung" and "left" (or
 * "right") is that lung (`left lung`, `lung_left`, `Left-Lung`); every other foreground label counts
 * as infection, so a model of one lesion label needs no naming at all.
 */
export function labelRoles(labels: Readonly<Record<string, number>>): LabelRoles {
  let left: number | null = null;
  let right: number | null = null;
  const infection: number[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (value === 0 || name === 'ignore') continue;
    if (/lung/i.test(name) && /left/i.test(name)) left = value;
    else if (/lung/i.test(name) && /right/i.test(name)) right = value;
    else infection.push(value);
  }
  return { left, right, infection: infection.sort((a, b) => a - b) };
}

/**
 * The lung label map (1 left, 2 right) of a prediction that labels both lungs and the infection, as
 * COVID-19-CT-Seg's Lung_and_Infection_Mask does: there an infected voxel carries the infection
 * label instead of its lung's, so each infected voxel is given the lung of the nearest lung voxel
 * along its image row (x), the direction that crosses from one lung to the other; an infected voxel
 * with no lung voxel in its row stays outside the lungs. Shape [z, y, x] in array order.
 */
export function lungLabelsFromPrediction(segmentation: ArrayLike<number>, shape: readonly [number, number, number], roles: LabelRoles): Uint8Array {
  if (roles.left === null || roles.right === null) throw new RangeError('lungLabelsFromPrediction: the labels name no left and right lung');
  const [nz, ny, nx] = shape;
  if (segmentation.length !== nz * ny * nx) throw new RangeError(`lungLabelsFromPrediction: ${segmentation.length} voxels for shape [${shape.join(', ')}]`);
  const infection = new Set(roles.infection);
  const out = new Uint8Array(segmentation.length);
  const lungOf = (value: number): number => (value === roles.left ? LUNG_LABELS.left : value === roles.right ? LUNG_LABELS.right : 0);
  for (let row = 0; row < nz * ny; row++) {
    const offset = row * nx;
    for (let x = 0; x < nx; x++) out[offset + x] = lungOf(segmentation[offset + x]!);
    for (let x = 0; x < nx; x++) {
      if (!infection.has(segmentation[offset + x]!)) continue;
      for (let d = 1; d < nx; d++) {
        const before = x - d >= 0 ? lungOf(segmentation[offset + x - d]!) : 0;
        const after = x + d < nx ? lungOf(segmentation[offset + x + d]!) : 0;
        if (before !== 0 || after !== 0) {
          out[offset + x] = before !== 0 ? before : after;
          break;
        }
        if (x - d < 0 && x + d >= nx) break;
      }
    }
  }
  return out;
}
