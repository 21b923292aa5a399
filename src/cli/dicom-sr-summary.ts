/**
 * `predict --output-type ...,dicom-seg,dicom-sr`: the case summary (eval severitySummary, the same
 * object `--summary` writes as <case>.summary.json) as the measurement groups of a DICOM SR on the
 * SEG just written (io dicom-sr.ts), one group per region, each tracked by a fixed identifier:
 *
 *   infection                          Volume (ml); with lungs the Volume outside the lungs (ml);
 *                                      with lobes the CT severity score 0-25 (Pan et al. 2020)
 *   infection in left lung / right lung / both lungs        (with lungs)
 *   infection in left upper lobe, ... (TRACKING_IDS)        (with lobes)
 *       Volume (ml) = infection inside the site, Volume of finding site (ml), Percentage of
 *       finding site volume involved (%) unless the site is empty, and for a lobe its score 0-5
 *
 * The ROI is the union of the SEG segments of the model's infection labels (eval labelRoles: every
 * foreground label that is not a lung), found in the SEG by their names.
 */
import { dicomText, InputError } from '../core/index.js';
import { labelRoles, LOBE_NAMES, type LobeName, type SeveritySummary } from '../eval/index.js';
import { LOBE_SITES, LUNG_SITES, readSegReference, SR_CODES, writeDicomSr, type SrGroup, type SrMeasurement, type SrReport, type SegReference } from '../io/index.js';

/** The Tracking Identifier of each region's measurement group. */
export const TRACKING_IDS = {
  infection: 'infection',
  left: 'infection in left lung',
  right: 'infection in right lung',
  both: 'infection in both lungs',
  lung_upper_lobe_left: 'infection in left upper lobe',
  lung_lower_lobe_left: 'infection in left lower lobe',
  lung_upper_lobe_right: 'infection in right upper lobe',
  lung_middle_lobe_right: 'infection in right middle lobe',
  lung_lower_lobe_right: 'infection in right lower lobe',
} as const satisfies Record<'infection' | 'left' | 'right' | 'both' | LobeName, string>;

const volume = (concept: SrMeasurement['concept'], value: number): SrMeasurement => ({ concept, units: SR_CODES.milliliter, value });

function regionMeasurements(region: { volumeMl: number; infectionMl: number; percentInvolved: number | null }): SrMeasurement[] {
  return [
    volume(SR_CODES.volume, region.infectionMl),
    volume(SR_CODES.siteVolume, region.volumeMl),
    ...(region.percentInvolved !== null ? [{ concept: SR_CODES.percentInvolved, units: SR_CODES.percent, value: region.percentInvolved }] : []),
  ];
}

/** The report of `summary`: `segments` are the SEG segment numbers of the infection labels. */
export function srReportOf(summary: SeveritySummary, segments: readonly number[]): SrReport {
  const overall: SrMeasurement[] = [volume(SR_CODES.volume, summary.infection.volumeMl)];
  if (summary.lungs !== null) overall.push(volume(SR_CODES.volumeOutsideLungs, summary.lungs.infectionOutsideLungsMl));
  if (summary.lobes !== null && summary.lobes.severityScore !== null) {
    overall.push({ concept: SR_CODES.totalSeverityScore, units: SR_CODES.noUnits, value: summary.lobes.severityScore, method: SR_CODES.panMethod });
  }
  const groups: SrGroup[] = [{ trackingIdentifier: TRACKING_IDS.infection, measurements: overall }];
  if (summary.lungs !== null) {
    for (const side of ['left', 'right', 'both'] as const) {
      groups.push({ trackingIdentifier: TRACKING_IDS[side], site: LUNG_SITES[side], measurements: regionMeasurements(summary.lungs[side]) });
    }
  }
  if (summary.lobes !== null) {
    for (const name of LOBE_NAMES) {
      const lobe = summary.lobes.perLobe[name];
      const score: SrMeasurement[] = lobe.score !== null ? [{ concept: SR_CODES.lobeSeverityScore, units: SR_CODES.noUnits, value: lobe.score, method: SR_CODES.panMethod }] : [];
      groups.push({ trackingIdentifier: TRACKING_IDS[name], site: LOBE_SITES[name], measurements: [...regionMeasurements(lobe), ...score] });
    }
  }
  return { segments, groups };
}

/** The model's labels must hold an infection label for the report to measure (run once the model is loaded, before predicting). */
export function checkSrLabels(labels: Readonly<Record<string, number>>): void {
  if (labelRoles(labels).infection.length === 0) {
    throw new InputError(`--output-type dicom-sr: the model's labels (${Object.keys(labels).join(', ')}) hold no infection label (every foreground label is a lung): the report would have no region to measure`, { code: 'bad-arguments' });
  }
}

/** The SEG segment numbers of the infection labels, matched by name (the SEG's Segment Label is the dataset.json name). */
export function infectionSegments(seg: SegReference, labels: Readonly<Record<string, number>>): number[] {
  const infection = new Set(labelRoles(labels).infection);
  const names = Object.entries(labels).filter(([, value]) => infection.has(value)).map(([name]) => dicomText(name, 'LO'));
  const numbers = [...seg.segments].filter(([, segment]) => names.includes(segment.label)).map(([number]) => number);
  if (numbers.length !== names.length) throw new Error(`the SEG's segments (${[...seg.segments.values()].map((s) => s.label).join(', ')}) do not name every infection label (${names.join(', ')})`);
  return numbers;
}

/** Write the SR of `summary` on the SEG `segFile` to `srFile`. */
export async function writeSummarySr(srFile: string, segFile: string, summary: SeveritySummary, labels: Readonly<Record<string, number>>): Promise<void> {
  const seg = readSegReference(segFile);
  await writeDicomSr(srFile, seg, srReportOf(summary, infectionSegments(seg, labels)));
}
