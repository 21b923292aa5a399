/**
 * Whether a series' pixels went through lossy compression, for the objects derived from it: PS3.3
 * C.7.6.1.1.5 (Lossy Image Compression (0028,2110) "01" once an image has been lossy compressed,
 * and it "shall not be changed" in derived images) and C.8.20.2.2 (a Segmentation derived from
 * lossy images carries 01 with the ratio and method). An instance is lossy when its
 * LossyImageCompression is 01, or, without the attribute, when its transfer syntax is a lossy one
 * (JPEG baseline/extended; JPEG 2000, JPEG-LS near-lossless and HTJ2K in their may-be-lossy forms).
 * Ratio and method come from the first lossy instance that states them; otherwise the method is the
 * transfer syntax's (PS3.3 Table C.7-6a's defined terms) and the ratio the decoded size over the
 * stored PixelData bytes of the lossy instances (rounded to 0.1; C.7.6.1.1.5.1 asks for an
 * approximate ratio).
 */
import type { DicomHeader } from './header.js';

export interface LossyCompression {
  /** LossyImageCompressionRatio values (DS text), one per lossy step. */
  ratio: string[];
  /** LossyImageCompressionMethod values (CS), as many as the ratios. */
  method: string[];
}

/** Lossy transfer syntaxes and the LossyImageCompressionMethod term of each. */
export const LOSSY_TRANSFER_SYNTAXES: Readonly<Record<string, string>> = {
  '1.2.840.10008.1.2.4.50': 'ISO_10918_1',
  '1.2.840.10008.1.2.4.51': 'ISO_10918_1',
  '1.2.840.10008.1.2.4.81': 'ISO_14495_1',
  '1.2.840.10008.1.2.4.91': 'ISO_15444_1',
  '1.2.840.10008.1.2.4.93': 'ISO_15444_1',
  '1.2.840.10008.1.2.4.203': 'ISO_15444_15',
};

function isLossy(header: DicomHeader): boolean {
  const flag = header.text.LossyImageCompression;
  if (flag !== undefined && flag !== '') return flag === '01';
  return header.transferSyntaxUid in LOSSY_TRANSFER_SYNTAXES;
}

/** The lossy compression the SEG must declare, or null when every instance is lossless. */
export function lossyCompressionOf(headers: readonly DicomHeader[]): LossyCompression | null {
  const lossy = headers.filter(isLossy);
  if (lossy.length === 0) return null;
  const stated = lossy.find((header) => header.text.LossyImageCompressionRatio !== undefined && header.text.LossyImageCompressionMethod !== undefined);
  if (stated !== undefined) {
    const ratio = stated.text.LossyImageCompressionRatio!.split('\\').map((v) => v.trim());
    const method = stated.text.LossyImageCompressionMethod!.split('\\').map((v) => v.trim());
    if (ratio.length === method.length) return { ratio, method };
  }
  let decoded = 0;
  let stored = 0;
  for (const header of lossy) {
    const rows = header.numbers.Rows?.[0] ?? 0;
    const columns = header.numbers.Columns?.[0] ?? 0;
    const bits = header.numbers.BitsAllocated?.[0] ?? 16;
    decoded += (rows * columns * bits) / 8;
    const pixel = header.pixelData;
    stored += pixel === null ? 0 : pixel.length ?? header.fileBytes - pixel.offset;
  }
  const method = methodOf(lossy);
  const ratio = stored > 0 && decoded > 0 ? (decoded / stored).toFixed(1) : '1.0';
  return { ratio: [ratio], method: [method] };
}

function methodOf(lossy: readonly DicomHeader[]): string {
  const stated = lossy.find((header) => header.text.LossyImageCompressionMethod !== undefined)?.text.LossyImageCompressionMethod;
  if (stated !== undefined && stated !== '') return stated.split('\\').pop()!.trim();
  return LOSSY_TRANSFER_SYNTAXES[lossy[0]!.transferSyntaxUid] ?? 'ISO_10918_1';
}
