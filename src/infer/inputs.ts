/**
 * What `predict -i` names: one image file, or a folder of cases in nnU-Net's raw naming
 * (`<case>_0000.nii.gz`, `<case>_0001.nii.gz`, ... one file per channel). Cases are grouped by
 * name, their channels checked to run 0..C-1 without gaps, and the output file of each case
 * decided (`-o` a .nii/.nii.gz file for a single case, else a folder of `<case>.nii.gz`).
 * checkPredictionOutputs then refuses, before anything is computed, outputs that would overwrite an
 * input, land in the input folder, repeat, or cannot be written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertWritableOutput, checkOutputs, InputError, realPathOf } from '../core/index.js';

export interface PredictionCase {
  caseId: string;
  /** One file per channel, channel 0 first. */
  channelFiles: string[];
  /** Where the mask goes. */
  outputFile: string;
}

const NIFTI = /\.nii(\.gz)?$/i;
const CHANNEL_FILE = /^(.+)_(\d{4})\.nii(\.gz)?$/i;

function stripNifti(name: string): string {
  return name.replace(NIFTI, '');
}

/** Group `<case>_XXXX.nii[.gz]` names in `folder` by case; each case's channels must be 0..C-1. */
function groupChannelFiles(folder: string, names: readonly string[]): Map<string, string[]> {
  const byCase = new Map<string, Map<number, string>>();
  for (const name of names) {
    const match = CHANNEL_FILE.exec(name);
    if (match === null) continue;
    const channels = byCase.get(match[1]!) ?? new Map<number, string>();
    const channel = Number(match[2]);
    if (channels.has(channel)) throw new InputError(`case '${match[1]}' has channel ${match[2]} twice (${channels.get(channel)} and ${name})`, { file: folder, code: 'duplicate-channel' });
    channels.set(channel, name);
    byCase.set(match[1]!, channels);
  }
  const result = new Map<string, string[]>();
  for (const [caseId, channels] of [...byCase].sort(([a], [b]) => a.localeCompare(b))) {
    const count = channels.size;
    const missing = Array.from({ length: count }, (_, c) => c).filter((c) => !channels.has(c));
    if (missing.length > 0) {
      throw new InputError(`case '${caseId}' lacks channel file(s) ${missing.map((c) => `${caseId}_${String(c).padStart(4, '0')}`).join(', ')} (has ${[...channels.values()].join(', ')})`, { file: folder, code: 'missing-channel' });
    }
    result.set(caseId, Array.from({ length: count }, (_, c) => path.join(folder, channels.get(c)!)));
  }
  return result;
}

/** The cases `input` names and their output files under `output`. */
export function collectPredictionCases(input: string, output: string): PredictionCase[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(input);
  } catch {
    throw new InputError('input not found', { file: input, code: 'not-found' });
  }
  const outputIsFile = NIFTI.test(output);
  if (stat.isFile()) {
    if (!NIFTI.test(input)) throw new InputError('an input image must be a .nii or .nii.gz file', { file: input, code: 'bad-file-name' });
    const folder = path.dirname(input);
    const name = path.basename(input);
    const match = CHANNEL_FILE.exec(name);
    let caseId = stripNifti(name);
    let channelFiles = [input];
    if (match !== null) {
      // case_0000.nii.gz: the case's other channels sit beside it.
      caseId = match[1]!;
      const group = groupChannelFiles(folder, fs.readdirSync(folder).filter((n) => CHANNEL_FILE.exec(n)?.[1] === caseId));
      channelFiles = group.get(caseId)!;
    }
    return [{ caseId, channelFiles, outputFile: outputIsFile ? output : path.join(output, `${caseId}.nii.gz`) }];
  }
  const groups = groupChannelFiles(input, fs.readdirSync(input).sort());
  if (groups.size === 0) throw new InputError('no images named <case>_0000.nii.gz (nnU-Net raw naming) in this folder', { file: input, code: 'no-cases' });
  if (outputIsFile && groups.size > 1) throw new InputError(`the input folder holds ${groups.size} cases: -o must be a folder, not a .nii.gz file`, { file: output, code: 'bad-output' });
  return [...groups].map(([caseId, channelFiles]) => ({ caseId, channelFiles, outputFile: outputIsFile ? output : path.join(output, `${caseId}.nii.gz`) }));
}

/** `<mask without .nii.gz>_probabilities_<k>.nii.gz`: one float32 NIfTI per class beside the mask. */
export function probabilityFile(outputFile: string, classIndex: number): string {
  const ending = /\.nii\.gz$/i.test(outputFile) ? '.nii.gz' : '.nii';
  return `${stripNifti(outputFile)}_probabilities_${classIndex}${ending}`;
}

/**
 * Refuse (InputError naming the file and `-o`) before any work: `-o` the input folder itself (the
 * masks would mix with the images, and a mask named like a channel file, `<case>_0001.nii.gz`,
 * would be read as one next time), then by core's one rule (checkOutputs) any output that is an
 * input file (also through a link) or lies inside the input folder, two outputs with one path, and
 * outputs that cannot be created or written (an ancestor that is a file, a folder without write
 * permission). `probabilityClasses` adds the probability files.
 */
export function checkPredictionOutputs(cases: readonly PredictionCase[], input: string, output: string, probabilityClasses = 0): void {
  const option = '-o';
  if (fs.existsSync(input) && fs.statSync(input).isDirectory() && realPathOf(output) === realPathOf(input)) {
    throw new InputError(`${option} is the input folder: write the masks to another folder`, { file: output, code: 'output-is-input' });
  }
  const outputs = cases.flatMap((item) => [item.outputFile, ...Array.from({ length: probabilityClasses }, (_, k) => probabilityFile(item.outputFile, k))]);
  if (!NIFTI.test(output)) assertWritableOutput(output, { option, kind: 'folder' });
  checkOutputs(outputs.map((file) => ({ path: file, option, kind: 'file' })), [input, ...cases.flatMap((item) => item.channelFiles)]);
}
