/** Helpers for the importer tests: temporary folders and tiny NIfTI files laid out like the releases. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ValidationError, type Affine, type Shape3, type TypedArray } from '../../../core/index.js';
import { writeNifti } from '../../nifti/write.js';
import type { NiftiDatatype } from '../../nifti/types.js';

export const SHAPE: Shape3 = [3, 4, 5];
export const VOXELS = 3 * 4 * 5;

export function affine(spacingXyz: [number, number, number] = [0.8, 0.8, 2.5], origin: [number, number, number] = [-100, -120, -50]): Affine {
  return [
    [spacingXyz[0], 0, 0, origin[0]],
    [0, spacingXyz[1], 0, origin[1]],
    [0, 0, spacingXyz[2], origin[2]],
    [0, 0, 0, 1],
  ];
}

export async function nifti(file: string, data: TypedArray, options: { shape?: Shape3; affine?: Affine; datatype?: NiftiDatatype } = {}): Promise<void> {
  const a = options.affine ?? affine();
  const spacing: Shape3 = [Math.abs(a[2][2]), Math.abs(a[1][1]), Math.abs(a[0][0])];
  await writeNifti(file, { data, shape: options.shape ?? SHAPE, spacing, affine: a }, options.datatype ? { datatype: options.datatype } : {});
}

/** A CT in HU (negative values, as real scans have). */
export const huImage = (offset = 0) => new Int16Array(VOXELS).map((_, i) => ((i * 37 + offset) % 1400) - 1000);
/** A binary mask with a few ones. */
export const binaryMask = (phase = 0) => new Uint8Array(VOXELS).map((_, i) => ((i + phase) % 7 === 0 ? 1 : 0));

export async function withTemp(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'importers-'));
  try {
    await body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The issues of a ValidationError as "code basename" strings, sorted; fails on any other error. */
export async function issuesOf(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return error.issues.map((issue) => `${issue.code} ${path.basename(issue.file)}`).sort();
  }
  throw new Error('expected a ValidationError');
}

/** Every file under `dir`, relative, sorted. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((name) => fs.statSync(path.join(dir, name)).isFile())
    .map((name) => name.split(path.sep).join('/'))
    .sort();
}
