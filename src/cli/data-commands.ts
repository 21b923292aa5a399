/**
 * Data commands: `info`, `synth`, `import`, `check`, `plan`, `preprocess` (DESIGN.md "The command
 * line"). Each maps to one entry function of io, synth or data; user errors are InputErrors, which
 * main.ts prints without a stack trace (exit 2). `check` exits 1 when it finds problems.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Command, Option } from '@commander-js/extra-typings';
import { checkOutputs, InputError, type Issue, type ProgressReporter, type TypedArray } from '../core/index.js';
import { checkDataset, COVID_LABEL_SETS, IMPORT_KINDS, importDataset, readNifti, type NiftiImage } from '../io/index.js';
import { LESION_KINDS, SYNTH_SIZES, writeSynthDataset, type LesionKind, type SynthSize } from '../synth/index.js';
import { CONFIGURATION_NAMES, getPreset, loadPlan, planConfigurationNames, planDatasets, preprocessDataset, PRESET_NAMES, savePlan, selectConfiguration, type PresetName } from '../data/index.js';
import { terminalProgress } from './progress.js';
import { integer } from './parse.js';

export interface VolumeStatistics {
  min: number;
  max: number;
  mean: number;
  /** NaN and infinite voxels (left out of min, max and mean). */
  nonFinite: number;
}

/** min, max and mean of the finite voxels (float64 accumulation). */
export function volumeStatistics(data: TypedArray): VolumeStatistics {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let count = 0;
  let nonFinite = 0;
  for (let i = 0; i < data.length; i++) {
    const value = Number(data[i]!);
    if (!Number.isFinite(value)) {
      nonFinite++;
      continue;
    }
    if (value < min) min = value;
    if (value > max) max = value;
    sum += value;
    count++;
  }
  return count === 0 ? { min: NaN, max: NaN, mean: NaN, nonFinite } : { min, max, mean: sum / count, nonFinite };
}

function formatIssue(issue: Issue): string {
  return `${issue.file}${issue.path ? ` [${issue.path}]` : ''}: ${issue.message} (${issue.code})`;
}

function requireFolder(folder: string, what: string): void {
  if (!fs.existsSync(folder)) throw new InputError(`${what} not found`, { file: folder, code: 'not-found' });
  if (!fs.statSync(folder).isDirectory()) throw new InputError(`is a file, not ${what}`, { file: folder, code: 'not-folder' });
}

/** What `info` reports, in NIfTI's axis order (nibabel's img.shape, header.get_zooms(), img.affine). */
export interface NiftiInfo {
  file: string;
  axes: typeof INFO_AXES;
  /**
   * Voxels along each axis, dim[1..dim[0]] as nibabel's shape gives them ([31, 19] for a 2D image,
   * which every command reads as one slice); the volume's internal shape is [z, y, x].
   */
  shape: number[];
  /**
   * Voxel size in mm along the spatial axes of `shape` (i, j, k; two for a 2D image): pixdim, as
   * nibabel's get_zooms(), unless `geometryNote` says the affine's voxel sizes disagree with it.
   */
  spacingMm: number[];
  /** Voxel (i, j, k) -> world RAS+ mm, row-major 4x4: nibabel's img.affine. */
  affine: NiftiImage['affine'];
  /** The header fields the affine came from (sform, qform, or pixdim alone), as nibabel chooses. */
  geometrySource: NiftiImage['geometrySource'];
  /** Which field was chosen where the header's fields disagree. */
  geometryNote?: string;
  datatype: NiftiImage['datatype'];
  niftiVersion: 1 | 2;
  min: number;
  max: number;
  mean: number;
  nonFinite: number;
}

export const INFO_AXES = "ijk (NIfTI order, as nibabel's shape and get_zooms())";

/** `info`'s report of an image: the internal [z, y, x] order turned into NIfTI's (i, j, k). */
export function niftiInfo(file: string, image: NiftiImage): NiftiInfo {
  const [sz, sy, sx] = image.spacing;
  const dims = image.header.dims;
  return {
    file,
    axes: INFO_AXES,
    shape: [...dims],
    spacingMm: [sx, sy, sz].slice(0, Math.min(3, dims.length)),
    affine: image.affine,
    geometrySource: image.geometrySource,
    ...(image.geometryNote !== undefined ? { geometryNote: image.geometryNote } : {}),
    datatype: image.datatype,
    niftiVersion: image.header.version,
    ...volumeStatistics(image.data),
  };
}

const GEOMETRY_SOURCES: Readonly<Record<NiftiInfo['geometrySource'], string>> = {
  sform: 'the sform (sform_code > 0)',
  qform: 'the qform (qform_code > 0, sform_code 0)',
  pixdim: "pixdim alone (qform_code and sform_code 0: nibabel's centred affine)",
};

/** A number with at most `digits` significant digits and no trailing zeros (100000 stays 100000). */
function short(value: number, digits = 6): string {
  return String(Number(value.toPrecision(digits)));
}

/** NIfTI's axis letters, dim[1] to dim[7]. */
const AXIS_LETTERS = ['i', 'j', 'k', 't', 'u', 'v', 'w'];

/** `info`'s text report, one string per line. */
export function formatNiftiInfo(info: NiftiInfo): string[] {
  const rows = info.affine.slice(0, 3).map((row) => `[${row.map((value) => short(value)).join(', ')}]`);
  const lines = [
    info.file,
    `  shape      ${info.shape.join(' x ')} voxels (${AXIS_LETTERS.slice(0, info.shape.length).join(', ')}: NIfTI order, as nibabel)` +
      (info.shape.length < 3 ? `; read as one slice of ${[...info.shape, 1, 1].slice(0, 3).join(' x ')}` : ''),
    `  spacing    ${info.spacingMm.map((s) => short(s)).join(' x ')} mm (${AXIS_LETTERS.slice(0, info.spacingMm.length).join(', ')})`,
    `  datatype   ${info.datatype} (NIfTI-${info.niftiVersion})`,
    `  affine     ${rows.join('\n             ')}`,
    `  geometry   affine from ${GEOMETRY_SOURCES[info.geometrySource]}`,
    ...(info.geometryNote !== undefined ? [`  note       ${info.geometryNote}`] : []),
    `  min/max    ${info.min} / ${info.max}`,
    `  mean       ${short(info.mean)}`,
  ];
  if (info.nonFinite > 0) lines.push(`  non-finite ${info.nonFinite} voxels (NaN or infinite)`);
  return lines;
}

export interface DataCommandsIo {
  /** Where results go (default process.stdout). */
  stdout?: { write(text: string): unknown };
  /** Progress of long steps (default: a bar or plain lines on stderr). */
  progress?: () => ProgressReporter;
}

export function registerDataCommands(program: Command, io: DataCommandsIo = {}): void {
  const stdout = io.stdout ?? process.stdout;
  const write = (text: string): void => {
    stdout.write(`${text}\n`);
  };
  const progress = io.progress ?? (() => terminalProgress());
  program
    .command('info')
    .description('shape, spacing, affine, datatype and min/max/mean of a NIfTI image (axes in NIfTI i, j, k order)')
    .argument('<file>', '.nii or .nii.gz file')
    .option('--json', 'print JSON only')
    .action(async (file, options) => {
      const info = niftiInfo(file, await readNifti(file));
      if (options.json) write(JSON.stringify(info));
      else for (const line of formatNiftiInfo(info)) write(line);
    });

  program
    .command('synth')
    .description('write a synthetic chest-CT dataset (nnU-Net v2 raw layout) of one lesion kind')
    .addOption(new Option('--kind <kind>', 'lesion kind').choices(LESION_KINDS).makeOptionMandatory())
    .requiredOption('--cases <n>', 'number of cases', integer('cases', 1))
    .requiredOption('--out <dir>', 'dataset folder (empty, new, or the same synth dataset to complete)')
    .option('--seed <s>', 'seed', integer('seed', 0), 0)
    .addOption(new Option('--size <size>', 'phantom size').choices(SYNTH_SIZES).default('small' as const))
    .option('--radiopaedia', 'covid: odd cases in the Radiopaedia 0-255 convention, as COVID-19-CT-Seg ships half its scans')
    .action(async (options) => {
      checkOutputs([{ path: options.out, option: '--out', kind: 'folder' }], []);
      const { caseIds } = await writeSynthDataset({
        kind: options.kind as LesionKind,
        cases: options.cases,
        out: options.out,
        seed: options.seed,
        size: options.size as SynthSize,
        radiopaediaConvention: options.radiopaedia === true,
        progress: progress(),
      });
      write(`synth: ${caseIds.length} ${options.kind} cases (${options.size}, seed ${options.seed}) in ${options.out}`);
    });

  program
    .command('import')
    .description('convert a public release into the nnU-Net v2 raw layout')
    .addArgument(program.createArgument('<kind>', `one of ${IMPORT_KINDS.join(', ')}`).choices(IMPORT_KINDS))
    .argument('<src>', 'the release folder, unpacked')
    .requiredOption('--out <dir>', 'dataset folder (empty, new, or the same import to complete)')
    .option('--images <dir>', 'nsclc-effusion: folder of the CT, as LUNG1-xxx.nii.gz or as LUNG1-xxx/ DICOM folders (converted with dcm2niix)')
    .addOption(new Option('--labels <set>', 'covid19-ctseg: infection (1 = infection), or lungs+infection (Lung_and_Infection_Mask: 1 left lung, 2 right lung, 3 infection)').choices(COVID_LABEL_SETS))
    .action(async (kind, src, options) => {
      checkOutputs([{ path: options.out, option: '--out', kind: 'folder' }], [src, ...(options.images !== undefined ? [options.images] : [])]);
      const result = await importDataset(kind, src, options.out, {
        progress: progress(),
        ...(options.images !== undefined ? { imagesDir: options.images } : {}),
        ...(options.labels !== undefined ? { labels: options.labels } : {}),
      });
      const kept = result.kept.length > 0 ? ` (${result.kept.length} kept from an earlier run)` : '';
      write(`import ${kind}: ${result.written.length + result.kept.length} cases in ${result.out}${kept}`);
    });

  program
    .command('check')
    .description('list every problem of an nnU-Net v2 raw dataset (exit 1 when there is any)')
    .argument('<dataset>', 'dataset folder')
    .option('--json', 'print {issues, cases} as JSON')
    .action(async (dataset, options) => {
      if (fs.existsSync(dataset) && !fs.statSync(dataset).isDirectory()) {
        throw new InputError('is a file; check takes a dataset folder (use `lesionseg info` for one image)', { file: dataset, code: 'not-folder' });
      }
      const result = await checkDataset(dataset);
      if (options.json) write(JSON.stringify({ issues: result.issues, cases: result.cases }));
      else {
        for (const issue of result.issues) write(formatIssue(issue));
        const count = result.issues.length;
        write(`${dataset}: ${result.cases} cases, ${count === 0 ? 'no problems found' : `${count} problem${count === 1 ? '' : 's'} found`}`);
      }
      if (result.issues.length > 0) process.exitCode = 1;
    });

  program
    .command('plan')
    .description('fingerprint one or more raw datasets (pooled) and write a plan')
    .argument('<datasets...>', 'dataset folders')
    .requiredOption('--preset <preset>', `one of ${PRESET_NAMES.join(', ')}`)
    .requiredOption('--out <file>', 'plan file (JSON)')
    .action(async (datasets, options) => {
      getPreset(options.preset); // an unknown name lists the valid ones
      for (const dataset of datasets) requireFolder(dataset, 'a dataset folder');
      checkOutputs([{ path: options.out, option: '--out', kind: 'file' }], datasets);
      const plan = await planDatasets(datasets, options.preset as PresetName, { progress: progress() });
      savePlan(options.out, plan);
      const c = plan.configuration;
      const others = planConfigurationNames(plan).slice(1);
      write(
        `plan (${plan.preset}) for ${datasets.join(', ')}: patch ${c.patchSize.join('x')}, batch ${c.batchSize}, ` +
          `spacing ${c.targetSpacing.map((s) => Number(s.toFixed(4))).join('x')} mm${others.length > 0 ? ` (also ${others.join(', ')})` : ''} -> ${options.out}`,
      );
    });

  program
    .command('preprocess')
    .description('crop, resample and normalise a raw dataset with a plan into the preprocessed cache')
    .argument('<dataset>', 'dataset folder')
    .requiredOption('--plan <file>', 'plan file from `lesionseg plan`')
    .option('--configuration <name>', `the plan's configuration to preprocess for (${CONFIGURATION_NAMES.join(', ')}; default: the plan's own, 3d_fullres for a plan from \`lesionseg plan\`)`)
    .option('--out <dir>', 'cache folder (default: <DATASET>_preprocessed beside the dataset)')
    .option('--workers <n>', 'worker threads (0 = in this thread)', integer('workers', 0), 2)
    .action(async (dataset, options) => {
      requireFolder(dataset, 'a dataset folder');
      const loaded = loadPlan(options.plan);
      const plan = options.configuration === undefined ? loaded : selectConfiguration(loaded, options.configuration);
      const out = options.out ?? `${path.resolve(dataset)}_preprocessed`;
      checkOutputs([{ path: out, option: '--out', kind: 'folder' }], [dataset, options.plan]);
      const result = await preprocessDataset(dataset, plan, out, { workers: options.workers, progress: progress() });
      write(`preprocess: ${result.processed.length} cases written, ${result.skipped.length} already done, in ${result.outDir}`);
    });
}
