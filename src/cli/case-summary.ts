/**
 * `predict --summary`, `--view`, `--lungs`, `--lobes`, `--lobes-model`: what is written beside each predicted mask.
 *
 *   <case>.summary.json   infection volume (mL), each lung's volume and percent involved (when the
 *                         model predicts lungs or --lungs is given), each lobe's percent and the CT
 *                         severity score (when --lobes is given); eval/severity.ts computes them
 *   summary.csv           one row per case, in the output folder (a folder of cases)
 *   <case>.html           the viewer page (view-commands.ts)
 *   <case>.sr.dcm         the same numbers as a DICOM SR on the SEG (--output-type dicom-sr; dicom-sr-summary.ts)
 *
 * --lungs is a label map (1 left, 2 right) for a single case, or a folder of <case>.nii.gz; --lobes
 * a folder of TotalSegmentator's five lobe files for a single case, or a folder of <case>/ folders
 * of them. All of them are found and checked against each case's CT (core's one same-grid test:
 * shape, spacing, origin, direction), and every output path is checked, before the model is loaded (STYLE rule 18).
 * --lobes-model instead names a lobe model (an nnU-Net v2 folder or ours whose labels include the
 * five lobe names; lobes-model.ts): it is predicted on each case's CT and its lobes, on the CT's
 * grid, take the place of the files --lobes reads, so both give their numbers through caseSummary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFileSync, checkOutputs, atomicWriteJsonSync, GRID_TOLERANCE_VOXELS, InputError, type Volume } from '../core/index.js';
import { readNifti } from '../io/index.js';
import { labelRoles, LOBE_NAMES, lungLabelsFromPrediction, severitySummary, severitySummaryCsv, voxelVolumeMl, type LobeName, type SeveritySummary, type SeveritySummaryInput } from '../eval/index.js';
import type { PredictedCaseRecord, PredictFilesOptions, PredictionCase } from '../infer/index.js';
import { assertMaskOnGrid, headerOf, summaryFileOf, writeViewerPage, type ViewerMaskInput } from './view-commands.js';
import { checkSrLabels, writeSummarySr } from './dicom-sr-summary.js';
import { checkLobesModelOption, openLobesModel, type LobesModel, type LobesModelOptions } from './lobes-model.js';

export interface CaseOutputOptions {
  summary: boolean;
  view: boolean;
  /** --output-type dicom-sr: the summary as a DICOM SR beside the SEG (dicom-sr-summary.ts). */
  dicomSr?: boolean;
  /** --lungs: a file (one case) or a folder of <case>.nii.gz / <case>.nii. */
  lungs?: string;
  /** --lobes: a folder of lung_*_lobe_*.nii.gz (one case) or of <case>/ folders of them. */
  lobes?: string;
  /** --lobes-model: a lobe model predicted on each case, with the options it predicts under. */
  lobesModel?: LobesModelOptions;
}

export interface CaseExtras {
  lungsFile?: string;
  lobeFiles?: Record<LobeName, string>;
  /** --lobes-model, opened once for every case. */
  lobesModel?: LobesModel;
  /** The lobes --lobes-model predicted for this case (set just before its summary). */
  lobeMasks?: { masks: Record<LobeName, Uint8Array>; source: string };
}

export const SUMMARY_CSV = 'summary.csv';

/** `<mask without .nii(.gz)>.html`. */
export function viewFileOf(maskFile: string): string {
  return `${maskFile.replace(/\.nii(\.gz)?$/i, '')}.html`;
}

function niftiIn(folder: string, stem: string): string | undefined {
  return [`${stem}.nii.gz`, `${stem}.nii`].map((name) => path.join(folder, name)).find((file) => fs.existsSync(file));
}

function isFolder(target: string): boolean {
  return fs.existsSync(target) && fs.statSync(target).isDirectory();
}

function lungsFileFor(option: string, item: PredictionCase, caseCount: number): string {
  if (!fs.existsSync(option)) throw new InputError('--lungs: not found', { file: option, code: 'not-found' });
  if (!isFolder(option)) {
    if (caseCount > 1) throw new InputError(`--lungs names one file but -i holds ${caseCount} cases: give a folder of <case>.nii.gz`, { file: option, code: 'bad-arguments' });
    return option;
  }
  const file = niftiIn(option, item.caseId);
  if (file === undefined) throw new InputError(`--lungs: no lung mask of case '${item.caseId}' (${item.caseId}.nii.gz) in this folder`, { file: option, code: 'not-found' });
  return file;
}

function lobeFilesFor(option: string, item: PredictionCase, caseCount: number): Record<LobeName, string> {
  if (!isFolder(option)) throw new InputError('--lobes must be a folder (TotalSegmentator\'s output: lung_upper_lobe_left.nii.gz, ...)', { file: option, code: 'bad-arguments' });
  const perCase = path.join(option, item.caseId);
  const folder = isFolder(perCase) ? perCase : caseCount === 1 ? option : perCase;
  const files = {} as Record<LobeName, string>;
  const missing: string[] = [];
  for (const name of LOBE_NAMES) {
    const file = niftiIn(folder, name);
    if (file === undefined) missing.push(`${name}.nii.gz`);
    else files[name] = file;
  }
  if (missing.length > 0) throw new InputError(`--lobes: case '${item.caseId}' lacks ${missing.join(', ')} (TotalSegmentator's lobe names)`, { file: folder, code: 'not-found' });
  return files;
}

/** Whether a case's summary is computed: for --summary, --view or the DICOM SR. */
export function summarized(options: CaseOutputOptions): boolean {
  return options.summary || options.view || options.dicomSr === true;
}

/** The checks that need no file read: run first, before the model loads. */
export function checkCaseOutputOptions(options: CaseOutputOptions, outputTypes: readonly string[]): void {
  if ((options.lungs !== undefined || options.lobes !== undefined || options.lobesModel !== undefined) && !summarized(options)) {
    throw new InputError(`${options.lobesModel !== undefined ? '--lobes-model' : '--lungs and --lobes'} feed${options.lobesModel !== undefined ? 's' : ''} --summary, --view and --output-type dicom-sr: add one of them`, { code: 'bad-arguments' });
  }
  if (options.lobes !== undefined && options.lobesModel !== undefined) {
    throw new InputError('--lobes and --lobes-model exclude each other: give the lobe masks or the model that predicts them', { code: 'bad-arguments' });
  }
  if ((options.summary || options.view) && !outputTypes.includes('nifti')) {
    throw new InputError('--summary and --view read the NIfTI mask: keep nifti in --output-type', { code: 'bad-arguments' });
  }
  if (options.lungs !== undefined && !fs.existsSync(options.lungs)) throw new InputError('--lungs: not found', { file: options.lungs, code: 'not-found' });
  if (options.lobes !== undefined && !isFolder(options.lobes)) throw new InputError('--lobes must be a folder (TotalSegmentator\'s output: lung_upper_lobe_left.nii.gz, ...)', { file: options.lobes, code: fs.existsSync(options.lobes) ? 'bad-arguments' : 'not-found' });
  if (options.lobesModel !== undefined) checkLobesModelOption(options.lobesModel.model);
}

/**
 * Find and check every lung and lobe mask against its case's CT, and every output path; returns
 * the masks of each case. Throws InputError naming the file (exit 2) before anything is computed.
 */
export async function checkCaseOutputs(cases: readonly PredictionCase[], options: CaseOutputOptions, output: string): Promise<Map<string, CaseExtras>> {
  checkCaseOutputOptions(options, ['nifti']);
  const extras = new Map<string, CaseExtras>();
  for (const item of cases) {
    const reference = await headerOf(item.channelFiles[0]!, 'image');
    const found: CaseExtras = {};
    if (options.lungs !== undefined) {
      found.lungsFile = lungsFileFor(options.lungs, item, cases.length);
      assertMaskOnGrid(found.lungsFile, await headerOf(found.lungsFile, 'lung mask'), reference, item.channelFiles[0]!, 'the lung mask');
    }
    if (options.lobes !== undefined) {
      found.lobeFiles = lobeFilesFor(options.lobes, item, cases.length);
      for (const name of LOBE_NAMES) assertMaskOnGrid(found.lobeFiles[name], await headerOf(found.lobeFiles[name], 'lobe mask'), reference, item.channelFiles[0]!, `lobe mask ${name}`);
    }
    extras.set(item.caseId, found);
  }
  const outputs = cases.flatMap((item) => [...(options.summary ? [summaryFileOf(item.outputFile)] : []), ...(options.view ? [viewFileOf(item.outputFile)] : [])]);
  if (options.summary && cases.length > 1) outputs.push(path.join(output, SUMMARY_CSV));
  const inputs = [...cases.flatMap((item) => item.channelFiles), ...(options.lungs !== undefined ? [options.lungs] : []), ...(options.lobes !== undefined ? [options.lobes] : []), ...(options.lobesModel !== undefined ? [options.lobesModel.model] : []), ...[...extras.values()].flatMap((e) => [...(e.lungsFile ? [e.lungsFile] : []), ...Object.values(e.lobeFiles ?? {})])];
  // The masks too: `-o lungs.nii.gz --lungs lungs.nii.gz` would replace the lung mask before it is read.
  checkOutputs([...cases.map((item) => item.outputFile), ...outputs].map((file) => ({ path: file, option: '-o', kind: 'file' as const })), inputs);
  // Last, as it loads weights: the lobe model, and each case's channels, windows and memory under its plan.
  if (options.lobesModel !== undefined) {
    const lobesModel = await openLobesModel(options.lobesModel, cases);
    for (const found of extras.values()) found.lobesModel = lobesModel;
  }
  return extras;
}

function binary(volume: Volume): Uint8Array {
  return Uint8Array.from(volume.data as ArrayLike<number>, (v) => (Number(v) !== 0 ? 1 : 0));
}

/** The summary of one predicted case. */
export async function caseSummary(segmentation: Volume, labels: Readonly<Record<string, number>>, extras: CaseExtras): Promise<SeveritySummary> {
  const roles = labelRoles(labels);
  const infectionValues = new Set(roles.infection);
  const values = segmentation.data as ArrayLike<number>;
  const infection = Uint8Array.from(values, (v) => (infectionValues.has(Number(v)) ? 1 : 0));
  const input: SeveritySummaryInput = { infection, voxelMl: voxelVolumeMl(segmentation.spacing) };
  if (extras.lungsFile !== undefined) {
    const lungs = await readNifti(extras.lungsFile);
    input.lungs = { labels: Uint8Array.from(lungs.data as ArrayLike<number>, (v) => Number(v)), source: `--lungs ${extras.lungsFile}` };
  } else if (roles.left !== null && roles.right !== null) {
    input.lungs = { labels: lungLabelsFromPrediction(Array.from(values, Number), segmentation.shape, roles), source: 'the model (labels named left lung / right lung)' };
  }
  if (extras.lobeFiles !== undefined) {
    const masks = {} as Record<LobeName, Uint8Array>;
    for (const name of LOBE_NAMES) masks[name] = binary(await readNifti(extras.lobeFiles[name]));
    input.lobes = { masks, source: `--lobes ${path.dirname(extras.lobeFiles.lung_upper_lobe_left)}` };
  } else if (extras.lobeMasks !== undefined) {
    input.lobes = extras.lobeMasks;
  }
  return severitySummary(input);
}

/** What `predict` calls after each case (writes its summary JSON and page), and the CSV at the end. */
export function caseOutputWriter(options: CaseOutputOptions, extras: ReadonlyMap<string, CaseExtras>, output: string, caseCount: number) {
  const rows: { caseId: string; summary: SeveritySummary }[] = [];
  return {
    async afterCase(item: PredictionCase, record: PredictedCaseRecord, segmentation: Volume, labels: Readonly<Record<string, number>>): Promise<void> {
      let found = extras.get(record.caseId) ?? {};
      if (found.lobesModel !== undefined && summarized(options)) found = { ...found, lobeMasks: await found.lobesModel.predict(item) };
      const image = item.channelFiles[0]!;
      const summary = summarized(options) ? await caseSummary(segmentation, labels, found) : null;
      if (options.summary && summary !== null) {
        atomicWriteJsonSync(summaryFileOf(item.outputFile), { format: 'lesionseg-case-summary', version: 1, caseId: record.caseId, image: record.inputs[0], mask: record.output, labels, gridToleranceVoxels: GRID_TOLERANCE_VOXELS, summary });
        rows.push({ caseId: record.caseId, summary });
      }
      if (options.view) {
        const masks: ViewerMaskInput[] = [{ file: item.outputFile, labels: Object.entries(labels).filter(([name, v]) => v !== 0 && name !== 'ignore').map(([name, value]) => ({ value, name })), opacity: 0.6 }];
        if (found.lungsFile !== undefined) masks.push({ file: found.lungsFile, labels: [{ value: 1, name: 'left lung' }, { value: 2, name: 'right lung' }], opacity: 0.2 });
        await writeViewerPage({ title: `${record.caseId}: prediction`, image, masks, summary }, viewFileOf(item.outputFile));
      }
      if (options.dicomSr === true && summary !== null && record.dicomSr !== undefined && record.dicomSeg !== undefined) await writeSummarySr(record.dicomSr, record.dicomSeg, summary, labels);
    },
    finish(): string | null {
      // The lobe model is shared by every case's extras: release it once.
      extras.values().next().value?.lobesModel?.dispose();
      if (!options.summary || caseCount <= 1) return null;
      const file = path.join(output, SUMMARY_CSV);
      atomicWriteFileSync(file, severitySummaryCsv(rows));
      return file;
    },
  };
}

/**
 * predict's hooks for --summary, --view and dicom-sr (beforePredict: the SR's labels, the masks and
 * outputs checked in the output folder predict has, a temporary one with --pacs and no -o;
 * afterCase: the writer above), and the CSV at the end. Shared by `predict` and `pacs watch`.
 */
export function caseOutputHooks(options: CaseOutputOptions): { hooks: Pick<PredictFilesOptions, 'beforePredict' | 'afterCase'>; finish(): string | null } {
  if (!summarized(options)) return { hooks: {}, finish: () => null };
  let writer: ReturnType<typeof caseOutputWriter> | null = null;
  return {
    hooks: {
      beforePredict: async (cases, labels, output) => {
        if (options.dicomSr === true) checkSrLabels(labels);
        writer = caseOutputWriter(options, await checkCaseOutputs(cases, options, output), output, cases.length);
      },
      afterCase: (...args) => writer!.afterCase(...args),
    },
    finish: () => writer?.finish() ?? null,
  };
}
