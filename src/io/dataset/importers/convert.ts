/**
 * Voxel conversions of the importers: CT images to HU in int16 (float32 where the values need it),
 * undoing the Radiopaedia [-1250, 250] HU -> 0..255 window of COVID-19-CT-Seg; and source masks to
 * uint8 label maps, either checked against a set of allowed values or thresholded.
 */
import { InputError, type TypedArray } from '../../../core/index.js';
import type { NiftiDatatype } from '../../nifti/types.js';
import type { MaskRule } from './types.js';

/** The window COVID-19-CT-Seg's Radiopaedia scans were clipped to before rescaling to 0..255. */
export const RADIOPAEDIA_WINDOW_HU: readonly [number, number] = [-1250, 250];
const WINDOW_WIDTH = RADIOPAEDIA_WINDOW_HU[1] - RADIOPAEDIA_WINDOW_HU[0];

/** HU of a Radiopaedia 0..255 value: v * 1500 / 255 - 1250. */
export function radiopaediaValueToHu(value: number): number {
  return (value * WINDOW_WIDTH) / 255 + RADIOPAEDIA_WINDOW_HU[0];
}

export interface ValueSummary {
  min: number;
  max: number;
  /** Every value is an integer. */
  integral: boolean;
  nonFinite: number;
}

export function summarizeValues(data: TypedArray): ValueSummary {
  let min = Infinity;
  let max = -Infinity;
  let integral = true;
  let nonFinite = 0;
  if (data instanceof BigInt64Array) {
    for (const big of data) {
      const value = Number(big);
      if (value < min) min = value;
      if (value > max) max = value;
    }
    return { min, max, integral, nonFinite };
  }
  const integerType = !(data instanceof Float32Array || data instanceof Float64Array);
  for (let i = 0; i < data.length; i++) {
    const value = data[i] as number;
    if (value !== value || value === Infinity || value === -Infinity) {
      nonFinite++;
      continue;
    }
    if (value < min) min = value;
    if (value > max) max = value;
    if (!integerType && integral && value !== Math.round(value)) integral = false;
  }
  return { min, max, integral, nonFinite };
}

export interface ConvertedImage {
  data: Int16Array | Float32Array;
  datatype: NiftiDatatype;
  /** What was done, for import_meta.json. */
  intensity: Record<string, unknown>;
}

const INT16_RANGE: readonly [number, number] = [-32768, 32767];

/**
 * A CT image in HU. With `detectRadiopaediaWindow`, an image whose values all lie in [0, 255] (no
 * negative value, as no HU scan of a chest can be) is taken as the Radiopaedia window and mapped
 * back: HU = v * 1500 / 255 - 1250. Integer-valued results are stored as int16 (rounding the mapped
 * values moves them by at most 0.5 HU, a twelfth of the window's 5.9 HU step); fractional source
 * values, or values outside int16, are kept as float32. Non-finite voxels are refused.
 */
export function convertCtImage(data: TypedArray, file: string, detectRadiopaediaWindow: boolean): ConvertedImage {
  const summary = summarizeValues(data);
  if (summary.nonFinite > 0) {
    throw new InputError(`${summary.nonFinite} voxels are NaN or infinite`, { file, code: 'non-finite' });
  }
  if (data.length === 0 || summary.min > summary.max) throw new InputError('image holds no voxels', { file, code: 'empty-image' });
  const sourceRange = [summary.min, summary.max];
  const windowed = detectRadiopaediaWindow && summary.min >= 0 && summary.max <= 255;
  if (windowed) {
    const asInt16 = summary.integral;
    const out = asInt16 ? new Int16Array(data.length) : new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const hu = radiopaediaValueToHu(Number(data[i]!));
      out[i] = asInt16 ? Math.round(hu) : hu;
    }
    return {
      data: out,
      datatype: asInt16 ? 'int16' : 'float32',
      intensity: {
        convention: 'radiopaedia-window',
        detectedBecause: `all values lie in [0, 255] (source range ${sourceRange.join('..')})`,
        conversion: 'HU = v * 1500 / 255 - 1250 (window [-1250, 250] HU rescaled to 0..255 undone)',
        rounded: asInt16 ? 'to int16 (at most 0.5 HU)' : 'no (fractional source values, float32)',
        sourceRange,
      },
    };
  }
  const fitsInt16 = summary.integral && summary.min >= INT16_RANGE[0] && summary.max <= INT16_RANGE[1];
  const out = fitsInt16 ? (data instanceof Int16Array ? data : Int16Array.from(data as ArrayLike<number>, Number)) : Float32Array.from(data as ArrayLike<number>, Number);
  return {
    data: out,
    datatype: fitsInt16 ? 'int16' : 'float32',
    intensity: {
      convention: 'hu',
      sourceRange,
      ...(fitsInt16 ? {} : { stored: 'float32 (values not integral or outside int16)' }),
    },
  };
}

/** A source mask as a uint8 label map by `rule`; a value the rule does not allow is an InputError naming the file. */
export function convertMask(data: TypedArray, file: string, rule: MaskRule): { data: Uint8Array; facts: Record<string, unknown> } {
  const out = new Uint8Array(data.length);
  if (rule.kind === 'threshold') {
    let nonBinary = 0;
    let nonFinite = 0;
    for (let i = 0; i < data.length; i++) {
      const value = Number(data[i]!);
      if (value !== value) nonFinite++;
      else {
        if (value !== 0 && value !== 1) nonBinary++;
        out[i] = value > rule.threshold ? 1 : 0;
      }
    }
    if (nonFinite > 0) throw new InputError(`${nonFinite} mask voxels are NaN`, { file, code: 'non-finite' });
    return { data: out, facts: nonBinary > 0 ? { thresholded: `${nonBinary} non-binary voxels, value > ${rule.threshold} -> 1` } : {} };
  }
  const allowed = new Set(rule.allowed);
  const bad = new Map<string, number>();
  for (let i = 0; i < data.length; i++) {
    const value = Number(data[i]!);
    if (!allowed.has(value)) {
      const key = String(value);
      bad.set(key, (bad.get(key) ?? 0) + 1);
      continue;
    }
    out[i] = rule.map?.[value] ?? value;
  }
  if (bad.size > 0) {
    const listed = [...bad.entries()].slice(0, 6).map(([value, count]) => `${value} (${count} voxels)`);
    throw new InputError(`mask holds values ${listed.join(', ')}${bad.size > 6 ? ', ...' : ''}; expected only ${rule.allowed.join(', ')}`, {
      file,
      code: 'unexpected-label',
    });
  }
  return { data: out, facts: {} };
}
