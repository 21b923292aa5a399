/**
 * What an importer is: a scan of a public release's folder into source cases (every problem found
 * reported as an Issue, before anything is written), and the rules for turning each case's files
 * into the nnU-Net v2 raw layout (see run-import.ts for the writing).
 */
import type { Issue, ProgressReporter } from '../../../core/index.js';
import type { DatasetJson } from '../dataset-json.js';

export const IMPORT_KINDS = ['covid19-ctseg', 'msd-lung', 'structseg-gtv', 'nsclc-effusion'] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];

/** Version of the importers' output; a resumed import must have been started by the same version. */
export const IMPORTER_VERSION = 1;

/** How a source mask becomes label values. */
export type MaskRule =
  /** Integer values, each in `allowed`; anything else is a problem. */
  | { kind: 'values'; allowed: readonly number[]; map?: Readonly<Record<number, number>> }
  /** Any values; `value > threshold` becomes 1 (PleThora's masks are not all binary). */
  | { kind: 'threshold'; threshold: number };

/** How a source mask is put onto the image grid. */
export type Alignment =
  /** Voxel arrays pair as they are (same shape required); a differing affine is only noted. */
  | 'same-grid'
  /** Axes permuted/flipped from both affines (PleThora); geometry that cannot be matched is refused. */
  | 'reorient';

export interface SourceMask {
  /** The source mask file. */
  file: string;
  rule: MaskRule;
}

export interface SourceCase {
  /** The case id in the raw layout (imagesTr/<id>_0000.nii.gz). */
  id: string;
  /** The source CT. */
  image: string;
  /** The lesion mask, written to labelsTr; null for a test case (imagesTs, no label). */
  label: SourceMask | null;
  /** Extra masks written to <folder>/<id>.nii.gz, e.g. lungsTr. */
  extras: { folder: string; mask: SourceMask }[];
  /** Per-case facts for import_meta.json (same patient, original file names, ...). */
  facts: Record<string, unknown>;
}

export interface ScanResult {
  cases: SourceCase[];
  issues: Issue[];
  /** Dataset-wide notes for import_meta.json. */
  notes: Record<string, unknown>;
  /** dataset.json fields that depend on the options (e.g. covid19-ctseg --labels), over the importer's own. */
  datasetJson?: Partial<Importer['datasetJson']>;
}

/** covid19-ctseg: the infection alone (1), or the release's Lung_and_Infection_Mask (1 left lung, 2 right lung, 3 infection). */
export const COVID_LABEL_SETS = ['infection', 'lungs+infection'] as const;
export type CovidLabelSet = (typeof COVID_LABEL_SETS)[number];

export interface ImportOptions {
  progress?: ProgressReporter;
  /** nsclc-effusion: folder of the converted CT (LUNG1-xxx.nii.gz); default: looked for in SRC. */
  imagesDir?: string;
  /** covid19-ctseg: which labels labelsTr holds (default infection). */
  labels?: CovidLabelSet;
}

export interface Importer {
  kind: ImportKind;
  /** Find the source cases in `source` (already resolved); never throws for problems in the data. */
  scan(source: string, options: ImportOptions): ScanResult;
  /** The dataset.json (without numTraining, which the runner counts). */
  datasetJson: Pick<DatasetJson, 'channel_names' | 'labels' | 'file_ending'> & { name: string; description: string; [key: string]: unknown };
  alignment: Alignment;
  /** Detect the Radiopaedia 0..255 window in CT images and map it back to HU (COVID-19-CT-Seg). */
  detectRadiopaediaWindow: boolean;
}

export interface ImportResult {
  out: string;
  kind: ImportKind;
  /** Case ids written in this run. */
  written: string[];
  /** Case ids already complete from an earlier, interrupted run of the same import. */
  kept: string[];
}
