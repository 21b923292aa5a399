/**
 * writeSynthDataset: N phantom cases of one lesion kind as an nnU-Net v2 raw dataset:
 *   DIR/imagesTr/<kind>_<NNN>_0000.nii.gz   int16 CT
 *   DIR/labelsTr/<kind>_<NNN>.nii.gz        uint8, 1 = lesion
 *   DIR/lungsTr/<kind>_<NNN>.nii.gz         uint8, 1 = left lung, 2 = right lung (covid only)
 *   DIR/lobesTr/<kind>_<NNN>.nii.gz         uint8, the five lobes (covid only; lobes.ts LOBE_LABEL,
 *                                           TotalSegmentator's names in DIR/lobes.json)
 *   DIR/dataset.json                        channel_names {"0": "CT"}, labels, numTraining, file_ending
 *   DIR/synth_meta.json                     the spec and, per case, its seed, intensity convention,
 *                                           lesions and volumes in mL
 * Case i is generated from new Rng(seed).fork(i), so it does not depend on the number of cases.
 * covid cases with an odd index use the Radiopaedia convention (0..255), as half of
 * COVID-19-CT-Seg does; the convention is recorded per case in synth_meta.json.
 *
 * Overwrite policy: an empty or missing DIR is filled; a DIR that already holds a synth dataset
 * of the same kind, size, seed and generator version is completed (cases whose files and meta
 * entry exist are kept, as they would be regenerated identically); anything else non-empty is
 * refused, as is a same-spec dataset holding more cases than asked for.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteJsonSync, InputError, SILENT_PROGRESS, type ProgressReporter } from '../core/index.js';
import { writeDatasetJson, writeNifti, type DatasetJson } from '../io/index.js';
import { GENERATOR_VERSION, generatePhantom } from './phantom.js';
import { LOBE_LABEL } from './lobes.js';
import {
  LESION_KINDS,
  LESION_LABEL_NAME,
  SYNTH_SIZES,
  type IntensityConvention,
  type LesionKind,
  type PhantomMeta,
  type SynthSize,
} from './types.js';

export interface WriteSynthDatasetOptions {
  kind: LesionKind;
  cases: number;
  out: string;
  seed: number;
  size: SynthSize;
  /**
   * covid only: write every other case (odd indices) in the Radiopaedia convention (windowed to
   * [-1250, 250] HU and rescaled to 0-255), as half of COVID-19-CT-Seg comes. Off by default: a raw
   * training dataset must be in one unit (HU); use it to exercise detection and `import`.
   */
  radiopaediaConvention?: boolean;
  progress?: ProgressReporter;
}

export interface SynthDatasetSpec {
  generator: 'lesionseg-synth';
  generatorVersion: number;
  kind: LesionKind;
  size: SynthSize;
  seed: number;
  /** Present (true) only when odd covid cases are in the Radiopaedia 0-255 convention. */
  radiopaediaConvention?: true;
}

export type SynthCaseMeta = Omit<PhantomMeta, 'generator' | 'generatorVersion' | 'kind' | 'size'> & { caseId: string };

export interface SynthDatasetMeta {
  spec: SynthDatasetSpec;
  numCases: number;
  cases: Record<string, SynthCaseMeta>;
}

export const SYNTH_META_FILE = 'synth_meta.json';
/** The label names of lobesTr/ (covid datasets). */
export const LOBES_LABELS_FILE = 'lobes.json';

const DATASET_NAMES: Readonly<Record<LesionKind, string>> = {
  covid: 'SynthCOVID19',
  tumor: 'SynthLungTumor',
  gtv: 'SynthLungGTV',
  effusion: 'SynthPleuralEffusion',
};

const DESCRIPTIONS: Readonly<Record<LesionKind, string>> = {
  covid: 'Synthetic chest CT with COVID-19-like ground-glass opacities and consolidation (COVID-19-CT-Seg-like)',
  tumor: 'Synthetic chest CT with one solid lung nodule or mass (MSD Task06_Lung-like)',
  gtv: 'Synthetic chest CT with a central hilar mass touching the mediastinum (StructSeg 2019 lung GTV-like)',
  effusion: 'Synthetic chest CT with dependent pleural effusions (NSCLC-Radiomics PleThora-like)',
};

/** `<kind>_<NNN>`, e.g. covid_000. */
export function synthCaseId(kind: LesionKind, index: number): string {
  return `${kind}_${String(index).padStart(3, '0')}`;
}

/** The intensity convention of case `index` of a `kind` dataset (Radiopaedia only when asked). */
export function caseIntensity(kind: LesionKind, index: number, radiopaediaConvention = false): IntensityConvention {
  return radiopaediaConvention && kind === 'covid' && index % 2 === 1 ? 'radiopaedia' : 'hu';
}

export async function writeSynthDataset(options: WriteSynthDatasetOptions): Promise<{ caseIds: string[] }> {
  const { kind, cases, out, seed, size } = options;
  const progress = options.progress ?? SILENT_PROGRESS;
  if (!LESION_KINDS.includes(kind)) throw new InputError(`unknown lesion kind '${String(kind)}': use one of ${LESION_KINDS.join(', ')}`, { code: 'bad-kind' });
  if (!SYNTH_SIZES.includes(size)) throw new InputError(`unknown size '${String(size)}': use one of ${SYNTH_SIZES.join(', ')}`, { code: 'bad-arguments' });
  if (!Number.isSafeInteger(cases) || cases < 1) throw new InputError(`--cases must be a positive integer, got ${cases}`, { code: 'bad-arguments' });
  if (!Number.isSafeInteger(seed)) throw new InputError(`--seed must be an integer, got ${seed}`, { code: 'bad-arguments' });

  const radiopaedia = options.radiopaediaConvention === true;
  if (radiopaedia && kind !== 'covid') throw new InputError(`the Radiopaedia convention applies to covid phantoms only, not '${kind}'`, { code: 'bad-arguments' });
  const spec: SynthDatasetSpec = { generator: 'lesionseg-synth', generatorVersion: GENERATOR_VERSION, kind, size, seed, ...(radiopaedia ? { radiopaediaConvention: true as const } : {}) };
  const existing = existingCases(out, spec, cases);
  const meta: SynthDatasetMeta = { spec, numCases: cases, cases: {} };
  const metaFile = path.join(out, SYNTH_META_FILE);
  fs.mkdirSync(out, { recursive: true });
  const caseIds: string[] = [];
  progress.start(`synth ${kind} (${size})`, cases);
  try {
    for (let index = 0; index < cases; index++) {
      const caseId = synthCaseId(kind, index);
      caseIds.push(caseId);
      const kept = existing[caseId];
      if (kept !== undefined && caseFiles(out, kind, caseId).every((file) => fs.existsSync(file))) {
        meta.cases[caseId] = kept;
        progress.tick(1, `${caseId} kept`);
        continue;
      }
      const phantom = generatePhantom(kind, { seed, size, caseIndex: index, intensity: caseIntensity(kind, index, radiopaedia) });
      const [imageFile, labelFile, lungsFile, lobesFile] = caseFiles(out, kind, caseId);
      await writeNifti(imageFile!, phantom.image, { datatype: 'int16' });
      await writeNifti(labelFile!, phantom.label, { datatype: 'uint8' });
      if (lungsFile !== undefined) await writeNifti(lungsFile, phantom.lungs, { datatype: 'uint8' });
      if (lobesFile !== undefined) await writeNifti(lobesFile, phantom.lobes, { datatype: 'uint8' });
      const { generator: _generator, generatorVersion: _version, kind: _kind, size: _size, ...caseMeta } = phantom.meta;
      meta.cases[caseId] = { caseId, ...caseMeta };
      // Record progress after every case, so an interrupted run resumes where it stopped.
      atomicWriteJsonSync(metaFile, meta);
      progress.tick(1, caseId);
    }
  } finally {
    progress.stop();
  }
  atomicWriteJsonSync(metaFile, meta);
  const datasetJson: DatasetJson = {
    channel_names: { '0': 'CT' },
    labels: { background: 0, [LESION_LABEL_NAME[kind]]: 1 },
    numTraining: cases,
    file_ending: '.nii.gz',
    name: DATASET_NAMES[kind],
    description: `${DESCRIPTIONS[kind]}; lesionseg synth v${GENERATOR_VERSION}, size ${size}, seed ${seed}`,
    lesionseg_synth: spec,
  };
  writeDatasetJson(out, datasetJson);
  // The lobe maps' labels, as a dataset.json would name them for a lobe model trained on lobesTr.
  if (kind === 'covid') atomicWriteJsonSync(path.join(out, LOBES_LABELS_FILE), { labels: { background: 0, ...LOBE_LABEL } });
  return { caseIds };
}

/** [image, label, lungs and lobes (covid only)] paths of one case. */
function caseFiles(out: string, kind: LesionKind, caseId: string): string[] {
  const files = [path.join(out, 'imagesTr', `${caseId}_0000.nii.gz`), path.join(out, 'labelsTr', `${caseId}.nii.gz`)];
  if (kind === 'covid') files.push(path.join(out, 'lungsTr', `${caseId}.nii.gz`), path.join(out, 'lobesTr', `${caseId}.nii.gz`));
  return files;
}

/** Cases of a same-spec synth dataset already in `out` (empty when `out` is missing or empty); throws otherwise. */
function existingCases(out: string, spec: SynthDatasetSpec, cases: number): Record<string, SynthCaseMeta> {
  let entries: string[];
  try {
    const stat = fs.statSync(out);
    if (!stat.isDirectory()) throw new InputError('exists and is not a folder', { file: out, code: 'not-folder' });
    entries = fs.readdirSync(out);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  if (entries.length === 0) return {};
  const metaFile = path.join(out, SYNTH_META_FILE);
  let meta: SynthDatasetMeta;
  try {
    meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as SynthDatasetMeta;
  } catch {
    throw new InputError(`is not empty and holds no readable ${SYNTH_META_FILE}: refusing to write a synthetic dataset over it (choose an empty or new folder)`, {
      file: out,
      code: 'out-not-empty',
    });
  }
  const found = meta.spec ?? ({} as Partial<SynthDatasetSpec>);
  const differences = (['generator', 'generatorVersion', 'kind', 'size', 'seed', 'radiopaediaConvention'] as const)
    .filter((key) => found[key] !== spec[key])
    .map((key) => `${key} ${JSON.stringify(found[key])} (asked ${JSON.stringify(spec[key])})`);
  if (differences.length > 0) {
    throw new InputError(`holds a different synthetic dataset: ${differences.join(', ')}; refusing to overwrite it (choose an empty or new folder)`, {
      file: out,
      code: 'out-not-empty',
    });
  }
  if (typeof meta.numCases === 'number' && meta.numCases > cases) {
    throw new InputError(`holds ${meta.numCases} cases of this synthetic dataset, more than the ${cases} asked for; refusing to shrink it (choose an empty or new folder)`, {
      file: out,
      code: 'out-not-empty',
    });
  }
  return meta.cases ?? {};
}
