/**
 * Overlay figures like the paper's Figures 2 and 3: an axial CT slice in a lung window (width 1500,
 * level -600 HU) with the ground truth and a prediction drawn as coloured contours, enlarged with
 * nearest-neighbour pixels (respecting the pixel spacing) so thin contours stay visible. Pure
 * rasterisation into an RGB buffer; png.ts encodes it.
 */
import type { OverlaySlice } from '../experiments/index.js';

export const LUNG_WINDOW_HU = { level: -600, width: 1500 } as const;
export const GROUND_TRUTH_RGB: readonly [number, number, number] = [0, 220, 0];
export const PREDICTION_RGB: readonly [number, number, number] = [255, 40, 40];

export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

export interface DecodedOverlay {
  width: number;
  height: number;
  pixelSpacingMm: [number, number];
  ctHu: Int16Array;
  groundTruth: Uint8Array;
  predictions: { pretrained: string; strategy: string; name?: string; mask: Uint8Array }[];
}

function bytes(base64: string): Buffer {
  return Buffer.from(base64, 'base64');
}

export function decodeOverlay(slice: OverlaySlice): DecodedOverlay {
  const n = slice.width * slice.height;
  const ct = bytes(slice.ctHu);
  const ctHu = new Int16Array(n);
  for (let i = 0; i < n; i++) ctHu[i] = ct.readInt16LE(2 * i);
  const mask = (text: string): Uint8Array => {
    const b = bytes(text);
    if (b.length !== n) throw new RangeError(`overlay of ${slice.caseId}: a mask has ${b.length} bytes, expected ${n}`);
    return new Uint8Array(b);
  };
  return {
    width: slice.width,
    height: slice.height,
    pixelSpacingMm: slice.pixelSpacingMm,
    ctHu,
    groundTruth: mask(slice.groundTruth),
    predictions: slice.predictions.map((p) => ({ pretrained: p.pretrained, strategy: p.strategy, ...(p.name !== undefined ? { name: p.name } : {}), mask: mask(p.mask) })),
  };
}

/** Grey value 0..255 of an HU value in the lung window. */
export function lungWindow(hu: number): number {
  const low = LUNG_WINDOW_HU.level - LUNG_WINDOW_HU.width / 2;
  const value = ((hu - low) / LUNG_WINDOW_HU.width) * 255;
  return Math.max(0, Math.min(255, Math.round(value)));
}

/** Integer enlargement per axis so the panel is about `targetPx` wide, with square millimetres. */
export function scaleFactors(width: number, pixelSpacingMm: [number, number], targetPx = 320): { sx: number; sy: number } {
  const sx = Math.max(1, Math.round(targetPx / width));
  const sy = Math.max(1, Math.round((sx * pixelSpacingMm[0]) / pixelSpacingMm[1]));
  return { sx, sy };
}

/**
 * The CT slice in the lung window, with the contour of each mask (masks at the slice's
 * resolution) drawn in its colour on the enlarged image: a pixel is on the contour when it is
 * inside the mask and a neighbour within `thickness` pixels is outside.
 */
export function renderOverlay(overlay: DecodedOverlay, masks: readonly { mask: Uint8Array; rgb: readonly [number, number, number] }[], targetPx = 320, thickness = 1): RgbImage {
  const { sx, sy } = scaleFactors(overlay.width, overlay.pixelSpacingMm, targetPx);
  const width = overlay.width * sx;
  const height = overlay.height * sy;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const grey = lungWindow(overlay.ctHu[Math.floor(y / sy) * overlay.width + Math.floor(x / sx)]!);
      rgb.set([grey, grey, grey], (y * width + x) * 3);
    }
  }
  const inside = (mask: Uint8Array, x: number, y: number): boolean => x >= 0 && y >= 0 && x < width && y < height && mask[Math.floor(y / sy) * overlay.width + Math.floor(x / sx)] !== 0;
  for (const { mask, rgb: colourRgb } of masks) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (!inside(mask, x, y)) continue;
        let edge = false;
        for (let d = 1; d <= thickness && !edge; d++) edge = !inside(mask, x - d, y) || !inside(mask, x + d, y) || !inside(mask, x, y - d) || !inside(mask, x, y + d);
        if (edge) rgb.set(colourRgb, (y * width + x) * 3);
      }
    }
  }
  return { width, height, rgb };
}
