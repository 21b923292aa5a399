/**
 * The importers' shared runner: scan the source, check every case's headers (3D, image/mask shape
 * or geometry), refuse with every problem listed before anything is written, then convert case by
 * case into the nnU-Net v2 raw layout in --out:
 *   imagesTr/<id>_0000.nii.gz (imagesTs/ for test cases without a label), labelsTr/<id>.nii.gz,
 *   extra mask folders (lungsTr/<id>.nii.gz), import_meta.json (what was done, per case), and
 *   dataset.json last, once every case is in.
 * Every file is written atomically, and import_meta.json after each case, so an interrupted import
 * resumes: a non-empty --out is refused unless it holds the same import (same kind, source folder
 * and importer version), whose finished cases are then kept.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { atomicWriteJsonSync, GRID_MISMATCH, InputError, type Issue, SILENT_PROGRESS, type TypedArray, ValidationError, type Volume } from '../../../core/index.js';
import { readNifti, readNiftiHeader } from '../../nifti/read.js';
import { writeNifti } from '../../nifti/write.js';
import { affineFromHeader } from '../../nifti/affine.js';
import { assertVolume, volumeShape } from '../../nifti/validate.js';
import { writeDatasetJson, type DatasetJson } from '../dataset-json.js';
import type { NiftiHeader, NiftiImage } from '../../nifti/types.js';
import { convertCtImage, convertMask } from './convert.js';
import { readDicomSeries } from '../../dicom/series.js';
import { assertDcm2niix, convertDicomSeries } from '../../dicom/convert.js';
import { assertDecoders } from '../../dicom/decode.js';
import { describeMapping, findAxisMapping, isIdentityMapping, reorientToImage } from './reorient.js';
import { IMPORTER_VERSION, type Importer, type ImportOptions, type ImportResult, type ImportKind, type SourceCase, type SourceMask } from './types.js';

export const IMPORT_META_FILE = 'import_meta.json';

export interface ImportMeta {
  importer: 'lesionseg-import';
  kind: ImportKind;
  version: number;
  /** The source folder, absolute. */
  source: string;
  /** True once every case and dataset.json are written. */
  complete: boolean;
  /** dataset.json labels of this import (absent in metas written before --labels existed: the importer's default). */
  labels?: Record<string, number>;
  notes: Record<string, unknown>;
  cases: Record<string, Record<string, unknown>>;
}

/** Largest affine entry difference (mm) between a mask and its image that is not worth a note. */
const AFFINE_NOTE_TOLERANCE = 1e-3;

function issueFromError(error: unknown, fallbackFile: string): Issue {
  if (!(error instanceof InputError)) throw error;
  const file = error.file ?? fallbackFile;
  const message = error.message.startsWith(`${file}: `) ? error.message.slice(file.length + 2) : error.message;
  return { file, path: '', code: error.code, message };
}

/** The earlier run of this same import found in `out`, or null when `out` is missing or empty; refuses anything else. */
function previousImport(out: string, kind: ImportKind, source: string): ImportMeta | null {
  let entries: string[];
  try {
    if (!fs.statSync(out).isDirectory()) throw new InputError('exists and is not a folder', { file: out, code: 'not-folder' });
    entries = fs.readdirSync(out);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  if (entries.length === 0) return null;
  const refuse = (why: string) =>
    new InputError(`is not empty and ${why}: refusing to import over it (choose an empty or new folder)`, { file: out, code: 'out-not-empty' });
  let meta: Partial<ImportMeta>;
  try {
    meta = JSON.parse(fs.readFileSync(path.join(out, IMPORT_META_FILE), 'utf8')) as Partial<ImportMeta>;
  } catch {
    throw refuse(`holds no readable ${IMPORT_META_FILE} of an earlier import`);
  }
  const differences: string[] = [];
  if (meta.importer !== 'lesionseg-import') differences.push(`importer ${JSON.stringify(meta.importer)}`);
  if (meta.kind !== kind) differences.push(`kind ${JSON.stringify(meta.kind)} (asked ${kind})`);
  if (meta.source !== source) differences.push(`source ${JSON.stringify(meta.source)} (asked ${source})`);
  if (meta.version !== IMPORTER_VERSION) differences.push(`importer version ${JSON.stringify(meta.version)} (this is ${IMPORTER_VERSION})`);
  if (differences.length > 0) throw refuse(`holds a different import: ${differences.join(', ')}`);
  return { ...(meta as ImportMeta), cases: meta.cases ?? {}, notes: meta.notes ?? {} };
}

function masksOf(sourceCase: SourceCase): SourceMask[] {
  return [...(sourceCase.label ? [sourceCase.label] : []), ...sourceCase.extras.map((extra) => extra.mask)];
}

/** Header-level checks of one case: readable, 3D, and each mask's grid matches the image's. */
async function checkCaseHeaders(sourceCase: SourceCase, importer: Importer, issues: Issue[]): Promise<void> {
  const read = async (file: string): Promise<NiftiHeader | undefined> => {
    try {
      const header = await readNiftiHeader(file);
      assertVolume(header, file);
      return header;
    } catch (error) {
      issues.push(issueFromError(error, file));
      return undefined;
    }
  };
  const image = await read(sourceCase.image);
  for (const mask of masksOf(sourceCase)) {
    const header = await read(mask.file);
    if (!image || !header) continue;
    const imageShape = volumeShape(image);
    const maskShape = volumeShape(header);
    if (importer.alignment === 'reorient') {
      const mapping = findAxisMapping(affineFromHeader(image), imageShape, affineFromHeader(header), maskShape);
      if (typeof mapping === 'string') {
        issues.push({ file: mask.file, path: '', code: GRID_MISMATCH, message: `cannot be matched to the image ${sourceCase.image}: ${mapping}` });
      }
    } else if (imageShape.some((n, axis) => n !== maskShape[axis])) {
      issues.push({
        file: mask.file,
        path: '',
        code: GRID_MISMATCH,
        message: `shape [${maskShape.join(', ')}] (z, y, x) differs from the image ${sourceCase.image} [${imageShape.join(', ')}]`,
      });
    }
  }
}

function maxAffineDifference(a: NiftiImage, b: NiftiImage): number {
  return Math.max(...a.affine.flatMap((row, r) => row.map((value, c) => Math.abs(value - b.affine[r]![c]!))));
}

/** A mask's voxels on the image grid, with what was done to get them there. */
async function alignedMask(mask: SourceMask, image: NiftiImage, importer: Importer): Promise<{ data: TypedArray; facts: Record<string, unknown> }> {
  const source = await readNifti(mask.file);
  if (importer.alignment === 'reorient') {
    const mapping = findAxisMapping(image.affine, image.shape, source.affine, source.shape);
    if (typeof mapping === 'string') {
      throw new InputError(`cannot be matched to the image ${image.file}: ${mapping}`, { file: mask.file, code: GRID_MISMATCH });
    }
    if (isIdentityMapping(mapping)) return { data: source.data, facts: { orientation: 'same as the image' } };
    return { data: reorientToImage(source.data, source.shape, mapping, image.shape), facts: { reoriented: describeMapping(mapping) } };
  }
  if (source.shape.some((n, axis) => n !== image.shape[axis])) {
    throw new InputError(`shape [${source.shape.join(', ')}] (z, y, x) differs from the image ${image.file} [${image.shape.join(', ')}]`, {
      file: mask.file,
      code: GRID_MISMATCH,
    });
  }
  const difference = maxAffineDifference(source, image);
  return {
    data: source.data,
    facts: difference > AFFINE_NOTE_TOLERANCE ? { affineNote: `the mask's affine differs from the image's by up to ${difference.toPrecision(4)} mm; the voxels are paired as stored and the image geometry is written` } : {},
  };
}

function outputFiles(out: string, sourceCase: SourceCase): { image: string; label: string | null; extras: string[] } {
  const split = sourceCase.label ? 'Tr' : 'Ts';
  return {
    image: path.join(out, `images${split}`, `${sourceCase.id}_0000.nii.gz`),
    label: sourceCase.label ? path.join(out, 'labelsTr', `${sourceCase.id}.nii.gz`) : null,
    extras: sourceCase.extras.map((extra) => path.join(out, extra.folder, `${sourceCase.id}.nii.gz`)),
  };
}

/** Convert one case and write its files (all conversions first, so a bad case writes nothing). */
async function importCase(sourceCase: SourceCase, importer: Importer, out: string): Promise<Record<string, unknown>> {
  const image = await readNifti(sourceCase.image);
  const converted = convertCtImage(image.data, sourceCase.image, importer.detectRadiopaediaWindow);
  const geometry = { shape: image.shape, spacing: image.spacing, affine: image.affine };
  const masks: { data: Uint8Array; facts: Record<string, unknown>; file: string }[] = [];
  for (const mask of masksOf(sourceCase)) {
    const aligned = await alignedMask(mask, image, importer);
    const label = convertMask(aligned.data, mask.file, mask.rule);
    masks.push({ data: label.data, facts: { ...aligned.facts, ...label.facts }, file: mask.file });
  }
  const files = outputFiles(out, sourceCase);
  const targets = [files.label, ...files.extras].filter((file): file is string => file !== null);
  for (const [index, mask] of masks.entries()) {
    const volume: Volume = { data: mask.data, ...geometry };
    await writeNifti(targets[index]!, volume, { datatype: 'uint8', header: image.header });
  }
  await writeNifti(files.image, { data: converted.data, ...geometry }, { datatype: converted.datatype, header: image.header });
  const maskFacts = Object.fromEntries(
    masks.map((mask, index) => [path.relative(out, targets[index]!), { source: mask.file, ...mask.facts }]),
  );
  return {
    image: sourceCase.image,
    shape: image.shape,
    spacingMm: image.spacing,
    sourceDatatype: image.datatype,
    datatype: converted.datatype,
    intensity: converted.intensity,
    masks: maskFacts,
    ...sourceCase.facts,
  };
}

function caseComplete(out: string, sourceCase: SourceCase, meta: ImportMeta): boolean {
  if (meta.cases[sourceCase.id] === undefined) return false;
  const files = outputFiles(out, sourceCase);
  return [files.image, files.label, ...files.extras].every((file) => file === null || fs.existsSync(file));
}

/** Import `sourceDir` (a public release's layout) with `importer` into the raw layout in `outDir`. */
export async function runImport(importer: Importer, sourceDir: string, outDir: string, options: ImportOptions = {}): Promise<ImportResult> {
  const source = path.resolve(sourceDir);
  const out = path.resolve(outDir);
  if (!fs.existsSync(source)) throw new InputError('source folder not found', { file: sourceDir, code: 'not-found' });
  if (!fs.statSync(source).isDirectory()) throw new InputError(`is not a folder; give the folder of the ${importer.kind} release`, { file: sourceDir, code: 'not-folder' });
  const previous = previousImport(out, importer.kind, source);
  const progress = options.progress ?? SILENT_PROGRESS;

  const scan = importer.scan(source, options);
  const issues = [...scan.issues];
  if (scan.cases.length === 0 && issues.length === 0) {
    issues.push({ file: sourceDir, path: '', code: 'no-cases', message: `no ${importer.kind} cases found` });
  }
  const dicomWork = await convertDicomImages(scan.cases, issues, progress);
  try {
    return await importScanned(importer, scan, issues, { source, out, sourceDir, previous, progress });
  } finally {
    if (dicomWork !== null) fs.rmSync(dicomWork, { recursive: true, force: true });
  }
}

/**
 * Cases whose image is a DICOM folder: its CT series checked from the headers (io dicom-series) and
 * converted by dcm2niix onto the series' grid into a temporary folder (returned, for the caller to
 * remove); problems become issues of the case.
 */
async function convertDicomImages(cases: SourceCase[], issues: Issue[], progress: NonNullable<ImportOptions['progress']>): Promise<string | null> {
  const dicomCases = cases.filter((sourceCase) => fs.statSync(sourceCase.image).isDirectory());
  if (dicomCases.length === 0) return null;
  const series = new Map<SourceCase, ReturnType<typeof readDicomSeries>>();
  for (const sourceCase of dicomCases) {
    try {
      series.set(sourceCase, readDicomSeries(sourceCase.image, undefined, '--series', 'CT'));
    } catch (error) {
      issues.push(issueFromError(error, sourceCase.image));
    }
  }
  if (issues.length > 0) return null;
  await assertDcm2niix();
  // The decoders the series' transfer syntaxes need (dcmtk, GDCM), before any conversion.
  await assertDecoders([...series.values()].flatMap((s) => s.instances.map((instance) => instance.transferSyntaxUid)));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-import-dicom-'));
  progress.start('convert DICOM (dcm2niix)', dicomCases.length);
  try {
    for (const sourceCase of dicomCases) {
      try {
        const converted = await convertDicomSeries(series.get(sourceCase)!, path.join(work, sourceCase.id), sourceCase.id);
        sourceCase.facts = { ...sourceCase.facts, dicomFolder: sourceCase.image, dicomSeries: series.get(sourceCase)!.seriesInstanceUid, dcm2niixGeometryDifferenceMm: converted.geometryDifferenceMm };
        sourceCase.image = converted.file;
      } catch (error) {
        issues.push(issueFromError(error, sourceCase.image));
      }
      progress.tick(1, sourceCase.id);
    }
  } finally {
    progress.stop();
  }
  return work;
}

async function importScanned(
  importer: Importer,
  scan: ReturnType<Importer['scan']>,
  issues: Issue[],
  context: { source: string; out: string; sourceDir: string; previous: ImportMeta | null; progress: NonNullable<ImportOptions['progress']> },
): Promise<ImportResult> {
  const { source, out, sourceDir, previous, progress } = context;
  progress.start(`check ${importer.kind}`, scan.cases.length);
  try {
    for (const sourceCase of scan.cases) {
      await checkCaseHeaders(sourceCase, importer, issues);
      progress.tick(1, sourceCase.id);
    }
  } finally {
    progress.stop();
  }
  if (issues.length > 0) throw new ValidationError(issues, { file: sourceDir });
  const labels = { ...(scan.datasetJson?.labels ?? importer.datasetJson.labels) } as Record<string, number>;
  if (previous !== null && JSON.stringify(previous.labels ?? importer.datasetJson.labels) !== JSON.stringify(labels)) {
    throw new InputError(
      `is not empty and holds a different import: labels ${JSON.stringify(previous.labels ?? importer.datasetJson.labels)} (asked ${JSON.stringify(labels)}): refusing to import over it (choose an empty or new folder)`,
      { file: out, code: 'out-not-empty' },
    );
  }

  const meta: ImportMeta = previous ?? { importer: 'lesionseg-import', kind: importer.kind, version: IMPORTER_VERSION, source, complete: false, labels, notes: {}, cases: {} };
  meta.labels = labels;
  meta.notes = scan.notes;
  meta.complete = false;
  const metaFile = path.join(out, IMPORT_META_FILE);
  fs.mkdirSync(out, { recursive: true });
  atomicWriteJsonSync(metaFile, meta);
  const written: string[] = [];
  const kept: string[] = [];
  progress.start(`import ${importer.kind}`, scan.cases.length);
  try {
    for (const sourceCase of scan.cases) {
      if (caseComplete(out, sourceCase, meta)) {
        kept.push(sourceCase.id);
        progress.tick(1, `${sourceCase.id} kept`);
        continue;
      }
      try {
        meta.cases[sourceCase.id] = await importCase(sourceCase, importer, out);
        atomicWriteJsonSync(metaFile, meta);
        written.push(sourceCase.id);
      } catch (error) {
        issues.push(issueFromError(error, sourceCase.image));
      }
      progress.tick(1, sourceCase.id);
    }
  } finally {
    progress.stop();
  }
  if (issues.length > 0) throw new ValidationError(issues, { file: sourceDir });

  const datasetJson: DatasetJson = {
    ...importer.datasetJson,
    ...scan.datasetJson,
    labels,
    numTraining: scan.cases.filter((sourceCase) => sourceCase.label !== null).length,
    lesionseg_import: { kind: importer.kind, version: IMPORTER_VERSION, source },
  };
  writeDatasetJson(out, datasetJson);
  meta.complete = true;
  atomicWriteJsonSync(metaFile, meta);
  return { out, kind: importer.kind, written, kept };
}
