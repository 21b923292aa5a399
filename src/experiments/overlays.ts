/**
 * The data behind the overlay figures (the paper's Figures 2 and 3): for a few test cases, the axial
 * slice with the most ground-truth lesion, the CT in HU, the ground truth and every arm's predicted
 * mask, oriented for display (anterior up, the patient's right on the left, as radiologists read).
 * Written as DIR/overlays/<case>.json so the report renders figures without reading NIfTI; `files`
 * names the whole volumes, for the report's viewer page of the case.
 */
import * as path from 'node:path';
import { atomicWriteJsonSync, type TypedArray, type Volume } from '../core/index.js';
import { readNifti, type RawCase } from '../io/index.js';
import { radiopaediaToHu } from '../synth/index.js';
import type { OverlaySlice } from './results.js';

export interface OverlayArm {
  pretrained: string;
  strategy: string;
  /** The arm's name (differs from the strategy for a named variant). */
  arm: string;
  /** The arm's predictions folder of the case's fold. */
  predictionDir: string;
}

/** The z index with the most voxels equal to `label` (the middle slice when there are none). */
export function busiestSlice(mask: Volume, label: number): number {
  const [nz, ny, nx] = mask.shape;
  let best = Math.floor(nz / 2);
  let bestCount = 0;
  for (let z = 0; z < nz; z++) {
    let count = 0;
    const offset = z * ny * nx;
    for (let i = 0; i < ny * nx; i++) if (Number(mask.data[offset + i]) === label) count++;
    if (count > bestCount) {
      bestCount = count;
      best = z;
    }
  }
  return best;
}

/** Count of voxels equal to `label`. */
export function labelVoxels(data: TypedArray, label: number): number {
  let count = 0;
  for (let i = 0; i < data.length; i++) if (Number(data[i]) === label) count++;
  return count;
}

/** Slice z of a volume as display rows (anterior up, patient right on the left), mapped by `value`. */
export function displaySlice<T extends Int16Array | Uint8Array>(volume: Volume, z: number, out: T, value: (v: number) => number): T {
  const [, ny, nx] = volume.shape;
  // RAS+ world: +x is the patient's right, +y anterior. Row 0 must be the most anterior voxel row and
  // column 0 the patient's rightmost column (radiological view), as DICOM-derived images already are.
  const flipRows = volume.affine[1][1] > 0;
  const flipColumns = volume.affine[0][0] > 0;
  for (let row = 0; row < ny; row++) {
    const y = flipRows ? ny - 1 - row : row;
    for (let column = 0; column < nx; column++) {
      const x = flipColumns ? nx - 1 - column : column;
      out[row * nx + column] = value(Number(volume.data[(z * ny + y) * nx + x]));
    }
  }
  return out;
}

function base64(array: Int16Array | Uint8Array): string {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64');
}

/** Radiopaedia-convention cases (0..255) back to HU; HU cases as they are. */
function huMapping(data: TypedArray): (v: number) => number {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const radiopaedia = min >= 0 && max <= 255;
  return radiopaedia ? (v) => Math.round(radiopaediaToHu(v)) : (v) => Math.max(-32768, Math.min(32767, Math.round(v)));
}

/** Write the overlay slice of one case; returns the file written. */
export async function writeOverlay(rawCase: RawCase, fold: number, label: number, arms: readonly OverlayArm[], outDir: string): Promise<string> {
  const image = await readNifti(rawCase.images[0]!);
  const truth = await readNifti(rawCase.label!);
  const z = busiestSlice(truth, label);
  const [, ny, nx] = image.shape;
  const isLabel = (v: number): number => (v === label ? 1 : 0);
  const predictions: OverlaySlice['predictions'] = [];
  const predictionFiles: string[] = [];
  for (const arm of arms) {
    const maskFile = path.join(arm.predictionDir, `${rawCase.id}.nii.gz`);
    predictionFiles.push(path.resolve(maskFile));
    const mask = await readNifti(maskFile);
    predictions.push({ pretrained: arm.pretrained, strategy: arm.strategy, ...(arm.arm !== arm.strategy ? { name: arm.arm } : {}), mask: base64(displaySlice(mask, z, new Uint8Array(ny * nx), isLabel)) });
  }
  const overlay: OverlaySlice = {
    caseId: rawCase.id,
    fold,
    slice: z,
    width: nx,
    height: ny,
    pixelSpacingMm: [image.spacing[1], image.spacing[2]],
    ctHu: base64(displaySlice(image, z, new Int16Array(ny * nx), huMapping(image.data))),
    groundTruth: base64(displaySlice(truth, z, new Uint8Array(ny * nx), isLabel)),
    predictions,
    files: { image: path.resolve(rawCase.images[0]!), groundTruth: path.resolve(rawCase.label!), predictions: predictionFiles },
  };
  const file = path.join(outDir, `${rawCase.id}.json`);
  atomicWriteJsonSync(file, overlay);
  return file;
}
