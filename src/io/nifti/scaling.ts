/**
 * NIfTI scl_slope / scl_inter: when a header asks for scaling, which headers are contradictory, the
 * array the scaled values go into, and the scaling itself, which refuses to turn finite stored
 * values into infinities.
 *
 * What the references do, and what we do:
 * - slope 0 means "no scaling" in the standard; nibabel and nifti1_io read the stored values. So do we.
 * - a non-finite slope: both references read the stored values. We do too when the intercept is 0
 *   (or also non-finite), but refuse a finite non-zero intercept: the header then says the values
 *   are offset (CT stored as HU + 1024 with scl_inter -1024) and we cannot know by what slope, and
 *   the raw values would be a plausible but wrong image.
 * - a valid slope with a non-finite intercept: nibabel refuses ("Valid slope but invalid
 *   intercept"), nifti1_io reads the intercept as 0. We refuse, as nibabel does.
 */
import type { TypedArray } from '../../core/index.js';
import { NiftiHeaderError, type NiftiDatatype, type NiftiHeader } from './types.js';
import { formatNumber } from './affine.js';

export interface Scaling {
  slope: number;
  inter: number;
}

/** Contradictory scaling fields, as messages naming the fields (empty when the header is usable). */
export function scalingProblems(h: NiftiHeader): string[] {
  const slopeFinite = Number.isFinite(h.sclSlope);
  const interFinite = Number.isFinite(h.sclInter);
  if (slopeFinite && h.sclSlope !== 0 && !interFinite) {
    return [`scl_inter is ${h.sclInter} with scl_slope ${formatNumber(h.sclSlope)} (a valid slope needs a finite intercept)`];
  }
  if (!slopeFinite && interFinite && h.sclInter !== 0) {
    return [`scl_slope is ${h.sclSlope} with scl_inter ${formatNumber(h.sclInter)} (the intercept says the values are scaled, but by no usable slope)`];
  }
  return [];
}

/** Slope and intercept to apply, or undefined when they leave the values unchanged (slope 0 or non-finite). */
export function scaling(h: NiftiHeader): Scaling | undefined {
  if (!Number.isFinite(h.sclSlope) || h.sclSlope === 0) return undefined;
  const inter = Number.isFinite(h.sclInter) ? h.sclInter : 0;
  if (h.sclSlope === 1 && inter === 0) return undefined;
  return { slope: h.sclSlope, inter };
}

/**
 * Bytes per scaled value: float32 for types float32 holds exactly (8/16-bit integers, float32),
 * float64 for 32/64-bit integers and float64, where float32 would round the stored values.
 */
export function scaledValueBytes(datatype: NiftiDatatype): 4 | 8 {
  return datatype === 'float64' || datatype === 'int32' || datatype === 'uint32' || datatype === 'int64' ? 8 : 4;
}

/**
 * `raw * slope + inter` in a fresh Float32Array or Float64Array (see scaledValueBytes). Throws an
 * NiftiHeaderError ('bad-scaling') naming `file` when the scaling makes finite stored values infinite (beyond the output
 * type's range); NaN or infinite stored values stay what they are, for the caller to judge.
 */
export function applyScaling(raw: TypedArray, scale: Scaling, datatype: NiftiDatatype, file: string): Float32Array | Float64Array {
  const { slope, inter } = scale;
  const wide = scaledValueBytes(datatype) === 8;
  const out = wide ? new Float64Array(raw.length) : new Float32Array(raw.length);
  let madeInfinite = 0;
  if (raw instanceof BigInt64Array) {
    for (let i = 0; i < raw.length; i++) {
      out[i] = Number(raw[i]!) * slope + inter;
      if (!Number.isFinite(out[i]!)) madeInfinite++;
    }
  } else if (raw instanceof Float32Array || raw instanceof Float64Array) {
    for (let i = 0; i < raw.length; i++) {
      const value = raw[i]!;
      out[i] = value * slope + inter;
      if (!Number.isFinite(out[i]!) && Number.isFinite(value)) madeInfinite++;
    }
  } else {
    // Integer types: every stored value is finite.
    for (let i = 0; i < raw.length; i++) {
      out[i] = (raw[i] as number) * slope + inter;
      if (!Number.isFinite(out[i]!)) madeInfinite++;
    }
  }
  if (madeInfinite > 0) {
    const message =
      `scl_slope ${formatNumber(slope)} and scl_inter ${formatNumber(inter)} make ${madeInfinite} of ${raw.length} voxels infinite ` +
      `(beyond the ${wide ? 'float64' : 'float32'} range)`;
    throw new NiftiHeaderError([{ code: 'bad-scaling', message }], file);
  }
  return out;
}
