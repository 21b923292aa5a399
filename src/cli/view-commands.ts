/**
 * `lesionseg view IMAGE [MASK...] --out PAGE.html`: one self-contained viewer page (src/report
 * viewer.ts: NiiVue inlined, volumes as base64 NIfTI) of a CT and its masks, and the helpers that
 * `predict --view` and `report` (one page per overlay case, writeStudyViewers) use to write it.
 * IMAGE may be a DICOM series' folder and a MASK a DICOM SEG of it (view-dicom.ts).
 *
 * Every input is checked before any page is built: each file is a readable 3D NIfTI, and each mask
 * lies on the CT's grid (core's one same-grid test), else an InputError naming
 * the file (exit 2). CTs above VIEWER_MAX_VOXELS (256 x 256 x 128) are block-averaged (masks:
 * block maximum, so small lesions stay visible) by whole factors until they fit, and the page says so.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from '@commander-js/extra-typings';
import { type Affine, assertSameGrid, atomicWriteFileSync, checkOutputs, InputError, isFolder, type Shape3, type TypedArray, type Volume } from '../core/index.js';
import { assertVolume, gridFromHeader, type NiftiHeader, type NiftiImage, readNifti, readNiftiHeader, writeNifti } from '../io/index.js';
import type { SeveritySummary } from '../eval/index.js';
import { removeDicomWork } from '../infer/index.js';
import { isSegArgument, prepareDicomView, refuseDicomArgumentsWithoutSeries } from './view-dicom.js';
import { overlayViewerCases, readStudyResults, viewerHtml, VIEWER_LABEL_RGB, viewerPageOf, type ViewerMask } from '../report/index.js';

/** CTs up to this many voxels (256 x 256 x 128) go into the page at full resolution. */
export const VIEWER_MAX_VOXELS = 256 * 256 * 128;

/**
 * Refuse `file` (InputError, exit 2) unless its header is 3D and lies on `reference`'s grid (core's
 * one same-grid test, GRID_MISMATCH); `what` says what the file is ('the lung mask').
 */
export function assertMaskOnGrid(file: string, header: NiftiHeader, reference: NiftiHeader, referenceFile: string, what: string): void {
  if (header.dims.slice(3).some((n) => n !== 1)) throw new InputError(`${what} is ${header.dims.length}D [${header.dims.join(', ')}]; a 3D mask is needed`, { file, code: 'not-3d' });
  assertSameGrid(file, gridFromHeader(header), gridFromHeader(reference), what, `the CT ${referenceFile}`);
}

/** The header of an existing file, errors naming it. */
export async function headerOf(file: string, what: string): Promise<NiftiHeader> {
  if (!fs.existsSync(file)) throw new InputError(`${what} not found`, { file, code: 'not-found' });
  return readNiftiHeader(file);
}

/**
 * Whole factors [fz, fy, fx] so that the downsampled shape has at most `maxVoxels` voxels: first the
 * plane (x and y by one factor) down to 256, then z down to 128 slices, then the plane again, so a
 * 512 x 512 x 300 CT keeps 256 x 256 pixels per slice.
 */
export function viewerFactors(shape: Shape3, maxVoxels = VIEWER_MAX_VOXELS): Shape3 {
  const factors: Shape3 = [1, 1, 1];
  const size = (axis: number) => Math.floor(shape[axis]! / factors[axis]!);
  while (size(0) * size(1) * size(2) > maxVoxels) {
    if (Math.max(size(1), size(2)) <= 256 && size(0) > 128) factors[0] = factors[0] + 1;
    else [factors[1], factors[2]] = [factors[1] + 1, factors[2] + 1];
  }
  return factors;
}

/** Block mean (`reduce` 'mean') or maximum ('max') over blocks of `factors`, the affine moved to the block centres. */
export function downsampleVolume(volume: Volume, factors: Shape3, reduce: 'mean' | 'max'): Volume<Float32Array> {
  const [nz, ny, nx] = volume.shape;
  const [fz, fy, fx] = factors;
  const shape: Shape3 = [Math.floor(nz / fz), Math.floor(ny / fy), Math.floor(nx / fx)];
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  const source = volume.data as Exclude<TypedArray, BigInt64Array>;
  for (let z = 0; z < shape[0]; z++) {
    for (let y = 0; y < shape[1]; y++) {
      for (let x = 0; x < shape[2]; x++) {
        let sum = 0;
        let max = -Infinity;
        for (let dz = 0; dz < fz; dz++) {
          for (let dy = 0; dy < fy; dy++) {
            const row = ((z * fz + dz) * ny + (y * fy + dy)) * nx + x * fx;
            for (let dx = 0; dx < fx; dx++) {
              const v = Number(source[row + dx]);
              sum += v;
              if (v > max) max = v;
            }
          }
        }
        data[(z * shape[1] + y) * shape[2] + x] = reduce === 'mean' ? sum / (fz * fy * fx) : max;
      }
    }
  }
  // Columns of the affine are the voxel axes (x, y, z); scale each and move the origin to the first block's centre.
  const axisFactor = [fx, fy, fz];
  const affine = volume.affine.map((row, r) =>
    r === 3 ? [...row] : [row[0] * fx, row[1] * fy, row[2] * fz, row[3] + row[0] * (fx - 1) / 2 + row[1] * (fy - 1) / 2 + row[2] * (fz - 1) / 2],
  ) as Affine;
  const spacing: Shape3 = [volume.spacing[0] * axisFactor[2]!, volume.spacing[1] * axisFactor[1]!, volume.spacing[2] * axisFactor[0]!];
  return { data, shape, spacing, affine };
}

/** World mm (RAS+) of the voxel nearest the centre of the first mask's busiest axial slice. */
export function startMm(mask: Volume): [number, number, number] | undefined {
  const [nz, ny, nx] = mask.shape;
  let bestZ = -1;
  let bestCount = 0;
  for (let z = 0; z < nz; z++) {
    let count = 0;
    for (let i = z * ny * nx; i < (z + 1) * ny * nx; i++) if (Number(mask.data[i]) !== 0) count++;
    if (count > bestCount) [bestZ, bestCount] = [z, count];
  }
  if (bestZ < 0) return undefined;
  let sx = 0;
  let sy = 0;
  const voxels: [number, number][] = [];
  for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) if (Number(mask.data[(bestZ * ny + y) * nx + x]) !== 0) [sx, sy] = [sx + x, sy + y], voxels.push([x, y]);
  const [cx, cy] = [sx / voxels.length, sy / voxels.length];
  const [x, y] = voxels.reduce((best, v) => (Math.hypot(v[0] - cx, v[1] - cy) < Math.hypot(best[0] - cx, best[1] - cy) ? v : best));
  const a = mask.affine;
  return [0, 1, 2].map((r) => a[r]![0] * x + a[r]![1] * y + a[r]![2] * bestZ + a[r]![3]) as [number, number, number];
}

async function niftiBytes(volume: Volume, datatype: 'int16' | 'uint8'): Promise<Uint8Array> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-view-'));
  try {
    const file = path.join(dir, 'volume.nii.gz');
    await writeNifti(file, volume, { datatype });
    return fs.readFileSync(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface ViewerMaskInput {
  file: string;
  /** The name shown (default: the file's). */
  name?: string;
  /** Label value -> name (and colour); default: every value found, named by the file. */
  labels?: { value: number; name: string; rgb?: readonly [number, number, number] }[];
  opacity?: number;
}

export interface ViewerInput {
  title: string;
  image: string;
  /** The CT's name shown (default: the file's). */
  imageName?: string;
  masks: ViewerMaskInput[];
  summary?: SeveritySummary | null;
  notes?: string[];
}

/** Check every mask's header against the CT's (before anything is read or written). */
export async function checkViewerInputs(input: ViewerInput): Promise<void> {
  const reference = await headerOf(input.image, 'image');
  assertVolume(reference, input.image);
  for (const mask of input.masks) assertMaskOnGrid(mask.file, await headerOf(mask.file, 'mask'), reference, input.image, 'the mask');
}

function labelsFound(image: NiftiImage): { value: number; name: string }[] {
  const values = new Set<number>();
  for (let i = 0; i < image.data.length; i++) values.add(Number(image.data[i]));
  values.delete(0);
  const base = path.basename(image.file).replace(/\.nii(\.gz)?$/i, '');
  return [...values].sort((a, b) => a - b).map((value) => ({ value, name: values.size === 1 ? base : `${base} ${value}` }));
}

/** Build the page of `input` (already checked) and write it atomically to `out`; returns its size in bytes. */
export async function writeViewerPage(input: ViewerInput, out: string): Promise<number> {
  const image = await readNifti(input.image);
  const notes = [...(input.notes ?? [])];
  const factors = viewerFactors(image.shape);
  const reduced = factors.some((f) => f > 1);
  if (reduced) notes.push(`Downsampled for this page: the CT ${image.shape.slice().reverse().join('x')} (x, y, z) by ${factors.slice().reverse().join('x')} (block mean; masks block maximum) to keep the page small; the files themselves are at full resolution.`);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < image.data.length; i++) {
    const v = Number(image.data[i]);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  // A CT stored as the Radiopaedia 0-255 window ([-1250, 250] HU): the lung window in those units.
  const radiopaedia = min >= 0 && max <= 255;
  if (radiopaedia) notes.push('The CT holds values 0-255 (the Radiopaedia window of [-1250, 250] HU): the lung window is shown in those units.');
  const windowHu = radiopaedia ? { level: ((-600 + 1250) * 255) / 1500, width: 255 } : undefined;
  const reducedBytes = async (volume: Volume, reduce: 'mean' | 'max'): Promise<Uint8Array> => {
    const small = downsampleVolume(volume, factors, reduce);
    return reduce === 'mean'
      ? niftiBytes({ ...small, data: Int16Array.from(small.data, (v) => Math.max(-32768, Math.min(32767, Math.round(v)))) }, 'int16')
      : niftiBytes({ ...small, data: Uint8Array.from(small.data) }, 'uint8');
  };
  const imageBytes = reduced ? await reducedBytes(image, 'mean') : fs.readFileSync(input.image);
  const masks: ViewerMask[] = [];
  let start: [number, number, number] | undefined;
  for (const mask of input.masks) {
    const volume = await readNifti(mask.file);
    start ??= startMm(volume);
    const bytes = reduced ? await reducedBytes(volume, 'max') : fs.readFileSync(mask.file);
    masks.push({ name: mask.name ?? path.basename(mask.file), bytes, labels: mask.labels ?? labelsFound(volume), ...(mask.opacity !== undefined ? { opacity: mask.opacity } : {}) });
  }
  const html = viewerHtml({
    title: input.title,
    image: { name: input.imageName ?? path.basename(input.image), bytes: imageBytes },
    masks,
    summary: input.summary ?? null,
    notes,
    ...(start !== undefined ? { startMm: start } : {}),
    ...(windowHu !== undefined ? { windowHu } : {}),
  });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  atomicWriteFileSync(out, html);
  return Buffer.byteLength(html);
}

/** `<mask without .nii(.gz)>.summary.json` beside a mask, the file `view` shows when it exists. */
export function summaryFileOf(maskFile: string): string {
  return `${maskFile.replace(/\.nii(\.gz)?$/i, '')}.summary.json`;
}

export function registerViewCommand(program: Command): void {
  program
    .command('view')
    .description('write one self-contained HTML page (opens offline) showing a CT in a lung window with its masks as coloured overlays: axial, coronal, sagittal and 3D render (NiiVue), and the case summary when there is one; a DICOM series with its DICOM SEGs read back by their own frame references')
    .argument('<image>', 'the CT (.nii/.nii.gz), or the folder of its DICOM series')
    .argument('[masks...]', 'label maps on the CT\'s grid (a prediction, lung masks, ...), or DICOM SEG files (.dcm) of the DICOM series')
    .requiredOption('--out <page>', 'the page to write (.html)')
    .option('--summary <file>', 'a summary JSON of `predict --summary` to show beside the viewer (default: <first mask>.summary.json when it exists)')
    .option('--series <uid>', 'the series of a DICOM folder that holds several (default: the one the SEGs reference)')
    .action(async (image, masks, options) => {
      if (!/\.html?$/i.test(options.out)) throw new InputError('--out must name an .html file', { file: options.out, code: 'bad-output' });
      checkOutputs([{ path: options.out, option: '--out', kind: 'file' }], [image, ...masks, ...(options.summary !== undefined ? [options.summary] : [])]);
      const dicom = isFolder(image);
      if (!dicom) refuseDicomArgumentsWithoutSeries(image, masks, options.series);
      const prepared = dicom ? await prepareDicomView(image, masks, options.series) : null;
      try {
        const input: ViewerInput = prepared?.input ?? { title: path.basename(image).replace(/\.nii(\.gz)?$/i, ''), image, masks: masks.map((file, m) => ({ file, opacity: m === 0 ? 0.6 : 0.25 })) };
        await checkViewerInputs(input);
        const firstNifti = masks.find((file) => !isSegArgument(file));
        const summaryFile = options.summary ?? (firstNifti !== undefined && fs.existsSync(summaryFileOf(firstNifti)) ? summaryFileOf(firstNifti) : undefined);
        if (summaryFile !== undefined) input.summary = readSummaryJson(summaryFile);
        const bytes = await writeViewerPage(input, options.out);
        process.stdout.write(`view: ${options.out} (${(bytes / 2 ** 20).toFixed(1)} MiB)\n`);
      } finally {
        if (prepared !== null) removeDicomWork(prepared.workDir);
      }
    });
}

/** The `summary` of a summary JSON written by `predict --summary`. */
export function readSummaryJson(file: string): SeveritySummary {
  let json: { format?: string; summary?: SeveritySummary };
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof json;
  } catch (cause) {
    throw new InputError(`cannot read the summary JSON: ${(cause as Error).message}`, { file, code: 'bad-json', cause });
  }
  if (json.format !== 'lesionseg-case-summary' || json.summary === undefined) throw new InputError('not a summary written by `lesionseg predict --summary`', { file, code: 'bad-format' });
  return json.summary;
}

/** Ground truth green as in the report's figures; the arms in the viewer's other colours. */
const GROUND_TRUTH_RGB = [0, 220, 0] as const;

/**
 * The viewer page of each overlay case of a study (RUN_DIR/report/viewers/<case>.html: CT, ground
 * truth, every arm's prediction); returns the cases written, for writeReport to link. A case whose
 * files are gone or off the CT's grid is skipped with a warning (the report is still written).
 */
export async function writeStudyViewers(runDir: string, warn: (message: string) => void): Promise<Set<string>> {
  const written = new Set<string>();
  for (const item of overlayViewerCases(runDir, readStudyResults(runDir))) {
    const input: ViewerInput = {
      title: `${item.caseId}: ground truth and predictions`,
      image: item.image,
      masks: [
        { file: item.groundTruth, labels: [{ value: 1, name: 'ground truth', rgb: GROUND_TRUTH_RGB }], opacity: 0.5 },
        ...item.predictions.map((p, k) => ({ file: p.file, labels: [{ value: 1, name: p.label, rgb: VIEWER_LABEL_RGB[k % VIEWER_LABEL_RGB.length]! }], opacity: k === 0 ? 0.4 : 0 })),
      ],
      notes: ['Masks: the study label only (value 1). Raise an arm\'s opacity to compare it with the ground truth.'],
    };
    try {
      await checkViewerInputs(input);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      warn(`no viewer page for case ${item.caseId}: ${error.message}`);
      continue;
    }
    await writeViewerPage(input, viewerPageOf(runDir, item.caseId));
    written.add(item.caseId);
  }
  return written;
}
