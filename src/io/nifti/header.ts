/**
 * NIfTI header bytes <-> NiftiHeader. Decodes NIfTI-1 (348 bytes) and NIfTI-2 (540 bytes) in either
 * byte order, detected from sizeof_hdr; encodes little-endian NIfTI-1 single files ("n+1").
 */
import { InputError } from '../../core/index.js';
import { DATATYPES, NiftiHeaderError, UNSUPPORTED_DATATYPES, datatypeFromCode, type NiftiHeader } from './types.js';

export const NIFTI1_HEADER_BYTES = 348;
export const NIFTI2_HEADER_BYTES = 540;
/** Bytes needed to decode any header: the larger header plus the 4-byte extension flag. */
export const HEADER_PROBE_BYTES = NIFTI2_HEADER_BYTES + 4;

function text(bytes: Uint8Array, start: number, length: number): string {
  const slice = bytes.subarray(start, start + length);
  const end = slice.indexOf(0);
  return Buffer.from(end < 0 ? slice : slice.subarray(0, end)).toString('latin1');
}

/** Which header version and byte order the first 4 bytes announce, or undefined if none. */
export function detectHeader(bytes: Uint8Array): { version: 1 | 2; littleEndian: boolean } | undefined {
  if (bytes.byteLength < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const littleEndian of [true, false]) {
    const size = view.getInt32(0, littleEndian);
    if (size === NIFTI1_HEADER_BYTES) return { version: 1, littleEndian };
    if (size === NIFTI2_HEADER_BYTES) return { version: 2, littleEndian };
  }
  return undefined;
}

/** Decode a header from the first bytes of a (decompressed) NIfTI file; throws InputError naming `file`. */
export function parseNiftiHeader(bytes: Uint8Array, file: string): NiftiHeader {
  const kind = detectHeader(bytes);
  if (!kind) {
    throw new InputError('not a NIfTI file (sizeof_hdr is neither 348 nor 540)', { file, code: 'not-nifti' });
  }
  const { version, littleEndian: le } = kind;
  const needed = version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  if (bytes.byteLength < needed) {
    throw new InputError(`file too short for a NIfTI-${version} header (${bytes.byteLength} of ${needed} bytes)`, {
      file,
      code: 'truncated',
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = version === 1 ? text(bytes, 344, 4) : text(bytes, 4, 8).slice(0, 3);
  if (magic === 'ni1' || magic === 'ni2') {
    throw new InputError('NIfTI header/image pairs (.hdr/.img) are not supported; convert to .nii or .nii.gz', {
      file,
      code: 'not-nifti',
    });
  }
  if (magic !== `n+${version}`) {
    throw new InputError(`not a NIfTI file (magic '${magic}' where 'n+${version}' was expected)`, {
      file,
      code: 'not-nifti',
    });
  }
  // Field readers for the two layouts: NIfTI-1 uses int16/float32, NIfTI-2 int64/float64.
  const f = (offset: number) => (version === 1 ? view.getFloat32(offset, le) : view.getFloat64(offset, le));
  const i = (offset: number) => (version === 1 ? view.getInt16(offset, le) : Number(view.getBigInt64(offset, le)));
  const o = version === 1
    ? { dim: 40, intent: 56, intentCode: 68, datatype: 70, bitpix: 72, sliceStart: 74, pixdim: 76, voxOffset: 108,
        slope: 112, inter: 116, sliceEnd: 120, calMax: 124, calMin: 128, sliceDuration: 132, toffset: 136,
        descrip: 148, auxFile: 228, qformCode: 252, sformCode: 254, quatern: 256, srow: 280, intentName: 328 }
    : { dim: 16, intent: 80, intentCode: 504, datatype: 12, bitpix: 14, sliceStart: 224, pixdim: 104, voxOffset: 168,
        slope: 176, inter: 184, sliceEnd: 232, calMax: 192, calMin: 200, sliceDuration: 208, toffset: 216,
        descrip: 240, auxFile: 320, qformCode: 344, sformCode: 348, quatern: 352, srow: 400, intentName: 508 };
  const intSize = version === 1 ? 2 : 8;
  const floatSize = version === 1 ? 4 : 8;
  const ndim = i(o.dim);
  if (ndim < 1 || ndim > 7) {
    throw new NiftiHeaderError([{ code: 'bad-dims', message: `invalid dim[0] = ${ndim} (must be 1..7)` }], file);
  }
  const dims: number[] = [];
  const pixdim: number[] = [];
  for (let d = 1; d <= ndim; d++) dims.push(i(o.dim + d * intSize));
  // pixdim[1..3] even for a 1D or 2D image: nibabel's qform uses all three.
  for (let d = 1; d <= Math.max(ndim, 3); d++) pixdim.push(f(o.pixdim + d * floatSize));
  if (dims.some((n) => !(n >= 1))) {
    throw new NiftiHeaderError([{ code: 'bad-dims', message: `invalid dimensions [${dims.join(', ')}] (each must be >= 1)` }], file);
  }
  const code = view.getInt16(o.datatype, le);
  const info = datatypeFromCode(code);
  if (!info) {
    const name = UNSUPPORTED_DATATYPES[code] ?? 'unknown code';
    throw new InputError(
      `unsupported NIfTI datatype ${code} (${name}); supported: ${Object.keys(DATATYPES).join(', ')}`,
      { file, code: 'unsupported-datatype' },
    );
  }
  const srow = (row: number): [number, number, number, number] => [0, 1, 2, 3].map((c) => f(o.srow + (row * 4 + c) * floatSize)) as [number, number, number, number];
  const voxOffset = version === 1 ? view.getFloat32(o.voxOffset, le) : Number(view.getBigInt64(o.voxOffset, le));
  const code32 = (offset: number) => (version === 1 ? view.getInt16(offset, le) : view.getInt32(offset, le));
  return {
    version,
    littleEndian: le,
    dims,
    pixdim,
    datatype: info.name,
    bitpix: view.getInt16(o.bitpix, le),
    sclSlope: f(o.slope),
    sclInter: f(o.inter),
    qformCode: code32(o.qformCode),
    sformCode: code32(o.sformCode),
    quatern: [f(o.quatern), f(o.quatern + floatSize), f(o.quatern + 2 * floatSize)],
    qoffset: [f(o.quatern + 3 * floatSize), f(o.quatern + 4 * floatSize), f(o.quatern + 5 * floatSize)],
    qfac: f(o.pixdim),
    srowX: srow(0),
    srowY: srow(1),
    srowZ: srow(2),
    xyztUnits: version === 1 ? view.getUint8(123) : view.getInt32(500, le),
    descrip: text(bytes, o.descrip, 80),
    auxFile: text(bytes, o.auxFile, 24),
    intentName: text(bytes, o.intentName, 16),
    voxOffset,
    intentCode: version === 1 ? view.getInt16(o.intentCode, le) : view.getInt32(o.intentCode, le),
    intentParams: [f(o.intent), f(o.intent + floatSize), f(o.intent + 2 * floatSize)],
    calMin: f(o.calMin),
    calMax: f(o.calMax),
    sliceCode: version === 1 ? view.getUint8(122) : view.getInt32(496, le),
    sliceStart: i(o.sliceStart),
    sliceEnd: i(o.sliceEnd),
    sliceDuration: f(o.sliceDuration),
    toffset: f(o.toffset),
    dimInfo: view.getUint8(version === 1 ? 39 : 524),
  };
}

function writeText(bytes: Uint8Array, start: number, length: number, value: string): void {
  const encoded = Buffer.from(value, 'latin1').subarray(0, length - 1);
  bytes.set(encoded, start);
}

/** Encode a little-endian NIfTI-1 single-file header plus the 4 zero extension bytes (352 bytes). */
export function encodeNifti1Header(h: NiftiHeader): Uint8Array {
  const bytes = new Uint8Array(NIFTI1_HEADER_BYTES + 4);
  const view = new DataView(bytes.buffer);
  const le = true;
  view.setInt32(0, NIFTI1_HEADER_BYTES, le);
  view.setUint8(39, h.dimInfo);
  view.setInt16(40, h.dims.length, le);
  for (let d = 0; d < 7; d++) {
    view.setInt16(42 + d * 2, h.dims[d] ?? 1, le);
    view.setFloat32(80 + d * 4, h.pixdim[d] ?? 1, le);
  }
  view.setFloat32(56, h.intentParams[0], le);
  view.setFloat32(60, h.intentParams[1], le);
  view.setFloat32(64, h.intentParams[2], le);
  view.setInt16(68, h.intentCode, le);
  view.setInt16(70, DATATYPES[h.datatype].code, le);
  view.setInt16(72, DATATYPES[h.datatype].bytes * 8, le);
  view.setInt16(74, h.sliceStart, le);
  view.setFloat32(76, h.qfac, le);
  view.setFloat32(108, h.voxOffset, le);
  view.setFloat32(112, h.sclSlope, le);
  view.setFloat32(116, h.sclInter, le);
  view.setInt16(120, h.sliceEnd, le);
  view.setUint8(122, h.sliceCode);
  view.setUint8(123, h.xyztUnits);
  view.setFloat32(124, h.calMax, le);
  view.setFloat32(128, h.calMin, le);
  view.setFloat32(132, h.sliceDuration, le);
  view.setFloat32(136, h.toffset, le);
  writeText(bytes, 148, 80, h.descrip);
  writeText(bytes, 228, 24, h.auxFile);
  view.setInt16(252, h.qformCode, le);
  view.setInt16(254, h.sformCode, le);
  const quaternion = [...h.quatern, ...h.qoffset];
  quaternion.forEach((value, index) => view.setFloat32(256 + index * 4, value, le));
  [h.srowX, h.srowY, h.srowZ].forEach((row, r) => row.forEach((value, c) => view.setFloat32(280 + (r * 4 + c) * 4, value, le)));
  writeText(bytes, 328, 16, h.intentName);
  writeText(bytes, 344, 4, 'n+1');
  return bytes;
}
