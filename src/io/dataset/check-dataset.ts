/**
 * `lesionseg check`: every problem of an nnU-Net v2 raw dataset at once, as Issues: dataset.json
 * fields, case pairing and channels, numTraining, NIfTI files with header problems (each under its
 * own code), unreadable or 4D NIfTI files, image/label geometry (core's one same-grid test: shape,
 * spacing, origin, direction), undeclared label values, non-finite voxels, and paths that
 * leave the dataset folder (symlinks, '..').
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compareGrids, GRID_MISMATCH, InputError, type InputErrorCode, type Issue } from '../../core/index.js';
import { validateDatasetJson, SUPPORTED_FILE_ENDINGS, type DatasetJson } from './dataset-json.js';
import { escapeRegExp } from './raw-dataset.js';
import { readNifti } from '../nifti/read.js';
import { NiftiHeaderError, type NiftiImage } from '../nifti/types.js';
import { nonFiniteCount, nonFiniteMessage } from '../validate-voxels.js';

export interface CheckDatasetResult {
  issues: Issue[];
  /** Number of training cases found (image files grouped by case id). */
  cases: number;
}

type Split = 'Tr' | 'Ts';

/** Reader error codes that `check` reports as they are; other read errors are 'unreadable'. */
const OWN_CODES = new Set(['not-3d', 'not-nifti', 'unsupported-datatype', 'too-large']);

class Checker {
  readonly issues: Issue[] = [];
  private readonly realRoot: string;

  constructor(readonly datasetDir: string) {
    this.realRoot = fs.realpathSync(datasetDir);
  }

  add(file: string, code: InputErrorCode, message: string, jsonPath = ''): void {
    this.issues.push({ file, path: jsonPath, code, message });
  }

  /** False (and an issue) when `file` resolves outside the dataset folder, e.g. through a symlink. */
  insideDataset(file: string): boolean {
    let real: string;
    try {
      real = fs.realpathSync(file);
    } catch {
      return true; // missing files are reported elsewhere; a dangling link has nothing to leave to
    }
    const relative = path.relative(this.realRoot, real);
    if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) return true;
    this.add(file, 'outside-dataset', `resolves to ${real}, outside the dataset folder`);
    return false;
  }

  /**
   * Read a NIfTI file, turning read errors into issues (undefined then): each header problem under
   * its own code (bad-pixdim, singular-sform, ...: HeaderProblemCode), a file that is no NIfTI, of
   * an unsupported datatype, too large or 4D under theirs, and data that cannot be read (truncated,
   * corrupt gzip, I/O) as 'unreadable'.
   */
  async read(file: string): Promise<NiftiImage | undefined> {
    if (!this.insideDataset(file)) return undefined;
    try {
      return await readNifti(file);
    } catch (error) {
      if (error instanceof NiftiHeaderError) {
        for (const problem of error.problems) this.add(file, problem.code, problem.message);
        return undefined;
      }
      if (!(error instanceof InputError)) throw error;
      const message = error.message.startsWith(`${file}: `) ? error.message.slice(file.length + 2) : error.message;
      this.add(file, OWN_CODES.has(error.code) ? error.code : 'unreadable', message);
      return undefined;
    }
  }

  /** `other` against `reference` by core's one same-grid test; a mismatch is one issue on `file`. */
  compareGeometry(file: string, other: NiftiImage, reference: NiftiImage, what: string): void {
    const comparison = compareGrids(other, reference, what);
    if (!comparison.same) this.add(file, GRID_MISMATCH, comparison.difference!);
  }

  checkFinite(file: string, image: NiftiImage): void {
    const count = nonFiniteCount(image.data);
    if (count.nan + count.infinite > 0) this.add(file, 'non-finite', nonFiniteMessage(count));
  }

  checkLabelValues(file: string, label: NiftiImage, declared: ReadonlySet<number> | undefined): void {
    const found = uniqueValues(label);
    const fractional = [...found].filter((value) => !Number.isInteger(value));
    if (fractional.length > 0) {
      this.add(file, 'bad-label', `label map holds non-integer values (${fractional.slice(0, 5).join(', ')}${fractional.length > 5 ? ', ...' : ''})`);
    }
    if (!declared) return;
    const undeclared = [...found].filter((value) => Number.isInteger(value) && !declared.has(value)).sort((a, b) => a - b);
    if (undeclared.length > 0) {
      this.add(file, 'unexpected-label', `label values ${undeclared.join(', ')} are not declared in dataset.json labels (declared: ${[...declared].sort((a, b) => a - b).join(', ')})`);
    }
  }
}

/** The distinct values of a label map (a 256-entry histogram for byte types, a set otherwise). */
function uniqueValues(image: NiftiImage): Set<number> {
  const data = image.data;
  const values = new Set<number>();
  if (data instanceof Uint8Array || data instanceof Int8Array) {
    const seen = new Uint8Array(256);
    for (let i = 0; i < data.length; i++) seen[data[i]! & 255] = 1;
    seen.forEach((flag, index) => {
      if (flag) values.add(data instanceof Int8Array && index > 127 ? index - 256 : index);
    });
    return values;
  }
  let last = NaN;
  for (let i = 0; i < data.length; i++) {
    const value = Number(data[i]!);
    if (value === last) continue;
    values.add(value);
    last = value;
  }
  return values;
}

function declaredLabels(json: Partial<DatasetJson>): Set<number> | undefined {
  if (typeof json.labels !== 'object' || json.labels === null) return undefined;
  const values = new Set<number>();
  for (const value of Object.values(json.labels)) {
    for (const item of Array.isArray(value) ? value : [value]) if (Number.isInteger(item)) values.add(item);
  }
  return values;
}

async function checkSplit(checker: Checker, split: Split, ending: string, channelCount: number | undefined, declared: Set<number> | undefined): Promise<number> {
  const { datasetDir } = checker;
  const imageFolder = path.join(datasetDir, `images${split}`);
  const labelFolder = path.join(datasetDir, `labels${split}`);
  const hasImages = fs.existsSync(imageFolder);
  const hasLabels = fs.existsSync(labelFolder);
  if (!hasImages) {
    if (split === 'Tr') checker.add(imageFolder, 'not-found', 'imagesTr folder not found');
    return 0;
  }
  if (split === 'Tr' && !hasLabels) checker.add(labelFolder, 'not-found', 'labelsTr folder not found');
  for (const folder of [imageFolder, labelFolder]) if (fs.existsSync(folder)) checker.insideDataset(folder);

  const imagePattern = new RegExp(`^(.+)_(\\d{4})${escapeRegExp(ending)}$`);
  const cases = new Map<string, Map<number, string>>();
  for (const name of fs.readdirSync(imageFolder).sort()) {
    if (!name.endsWith(ending)) continue;
    const match = imagePattern.exec(name);
    const file = path.join(imageFolder, name);
    if (!match) {
      checker.add(file, 'bad-file-name', `image file names must be <case>_<XXXX>${ending} (4-digit channel index)`);
      continue;
    }
    const channels = cases.get(match[1]!) ?? new Map<number, string>();
    channels.set(Number(match[2]), file);
    cases.set(match[1]!, channels);
  }
  const labels = new Map<string, string>();
  if (hasLabels) {
    for (const name of fs.readdirSync(labelFolder).sort()) {
      if (!name.endsWith(ending)) continue;
      labels.set(name.slice(0, -ending.length), path.join(labelFolder, name));
    }
    for (const [id, file] of labels) if (!cases.has(id)) checker.add(file, 'missing-image', `label of case '${id}' has no image in images${split}`);
  }
  const expectedChannels = channelCount ?? Math.max(0, ...[...cases.values()].flatMap((c) => [...c.keys()].map((k) => k + 1)));
  for (const id of [...cases.keys()].sort()) {
    const channels = cases.get(id)!;
    const firstPath = path.join(imageFolder, `${id}_0000${ending}`);
    for (let channel = 0; channel < expectedChannels; channel++) {
      if (!channels.has(channel)) {
        checker.add(path.join(imageFolder, `${id}_${String(channel).padStart(4, '0')}${ending}`), 'missing-channel', `case '${id}' lacks channel ${channel}`);
      }
    }
    for (const channel of channels.keys()) {
      if (channel >= expectedChannels) checker.add(channels.get(channel)!, 'unexpected-channel', `channel ${channel} is not in channel_names (${expectedChannels} channels)`);
    }
    let reference: NiftiImage | undefined;
    let referencePath = firstPath;
    for (const channel of [...channels.keys()].sort((a, b) => a - b)) {
      const file = channels.get(channel)!;
      const image = await checker.read(file);
      if (!image) continue;
      checker.checkFinite(file, image);
      if (reference) checker.compareGeometry(file, image, reference, `channel image ${path.basename(referencePath)}'s`);
      else {
        reference = image;
        referencePath = file;
      }
    }
    const labelFile = labels.get(id);
    if (labelFile === undefined) {
      if (split === 'Tr') checker.add(path.join(labelFolder, `${id}${ending}`), 'missing-label', `case '${id}' has no label in labelsTr`);
      continue;
    }
    const label = await checker.read(labelFile);
    if (!label) continue;
    if (reference) checker.compareGeometry(labelFile, label, reference, `image ${path.basename(referencePath)}'s`);
    checker.checkLabelValues(labelFile, label, declared);
  }
  return cases.size;
}

/** Check a raw dataset folder and list every problem found; never throws for problems in the data. */
export async function checkDataset(datasetDir: string): Promise<CheckDatasetResult> {
  if (!fs.existsSync(datasetDir) || !fs.statSync(datasetDir).isDirectory()) {
    return { issues: [{ file: datasetDir, path: '', code: 'not-found', message: 'dataset folder not found' }], cases: 0 };
  }
  const checker = new Checker(datasetDir);
  const jsonFile = path.join(datasetDir, 'dataset.json');
  let json: Partial<DatasetJson> = {};
  if (!fs.existsSync(jsonFile)) checker.add(jsonFile, 'not-found', 'dataset.json not found');
  else if (checker.insideDataset(jsonFile)) {
    try {
      json = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as Partial<DatasetJson>;
      checker.issues.push(...validateDatasetJson(json, jsonFile));
    } catch (error) {
      checker.add(jsonFile, 'bad-json', `not valid JSON: ${(error as Error).message}`);
    }
  }
  const ending = typeof json.file_ending === 'string' && (SUPPORTED_FILE_ENDINGS as readonly string[]).includes(json.file_ending)
    ? json.file_ending
    : undefined;
  if (ending === undefined) return { issues: checker.issues, cases: 0 };
  const channelNames = json.channel_names;
  const channelCount = typeof channelNames === 'object' && channelNames !== null && Object.keys(channelNames).length > 0
    ? Object.keys(channelNames).length
    : undefined;
  const declared = declaredLabels(json);
  const cases = await checkSplit(checker, 'Tr', ending, channelCount, declared);
  const hasImages = fs.existsSync(path.join(datasetDir, 'imagesTr'));
  if (hasImages && Number.isInteger(json.numTraining) && json.numTraining !== cases) {
    checker.add(jsonFile, 'num-training-mismatch', `numTraining is ${json.numTraining} but imagesTr holds ${cases} cases`, 'numTraining');
  }
  await checkSplit(checker, 'Ts', ending, channelCount, declared);
  return { issues: checker.issues, cases };
}
