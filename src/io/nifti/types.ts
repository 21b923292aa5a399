/**
 * NIfTI data model shared by the reader and the writer: the supported datatypes (with their NIfTI
 * codes, byte sizes and typed-array constructors), the decoded header, and the image type.
 */
import { InputError, type Volume, type TypedArray } from '../../core/index.js';

export type NiftiDatatype = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'float32' | 'float64';

/** A decoded NIfTI-1 or NIfTI-2 header (values as stored; no defaults applied). */
export interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  /** dim[1..ndim] in file order x, y, z, (t, ...). */
  dims: number[];
  /**
   * pixdim[1..max(ndim, 3)], same order as dims (as stored, may be negative or zero); a 1D or 2D
   * header keeps pixdim[1..3] because nibabel's qform uses them.
   */
  pixdim: number[];
  datatype: NiftiDatatype;
  bitpix: number;
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  /** quatern_b, quatern_c, quatern_d. */
  quatern: [number, number, number];
  /** qoffset_x, qoffset_y, qoffset_z. */
  qoffset: [number, number, number];
  /** pixdim[0] as stored (the standard treats anything but -1 as 1). */
  qfac: number;
  srowX: [number, number, number, number];
  srowY: [number, number, number, number];
  srowZ: [number, number, number, number];
  xyztUnits: number;
  descrip: string;
  auxFile: string;
  intentName: string;
  /** Byte offset of the voxel data in the (decompressed) file. */
  voxOffset: number;
  intentCode: number;
  intentParams: [number, number, number];
  calMin: number;
  calMax: number;
  sliceCode: number;
  sliceStart: number;
  sliceEnd: number;
  sliceDuration: number;
  toffset: number;
  dimInfo: number;
}

/** One problem of a header, under the code `check` reports it with. */
export type HeaderProblemCode =
  | 'bad-dims'
  | 'bad-pixdim'
  | 'non-finite-sform'
  | 'singular-sform'
  | 'non-finite-qform'
  | 'bad-qfac'
  | 'bad-quaternion'
  | 'bad-vox-offset'
  | 'bad-scaling';

export interface HeaderProblem {
  code: HeaderProblemCode;
  message: string;
}

/** A header that cannot be read as it stands: code 'bad-header', every problem in `problems`. */
export class NiftiHeaderError extends InputError {
  readonly problems: readonly HeaderProblem[];
  constructor(problems: readonly HeaderProblem[], file: string) {
    super(problems.map((problem) => problem.message).join('; '), { file, code: 'bad-header' });
    this.problems = problems;
  }
}

/**
 * Which header fields the affine (and so the spacing) came from, chosen as nibabel's get_best_affine
 * does: the sform when sform_code > 0, else the qform when qform_code > 0, else pixdim alone.
 */
export type NiftiGeometrySource = 'sform' | 'qform' | 'pixdim';

/** A 3D NIfTI image: a Volume plus the header it came from. */
export interface NiftiImage extends Volume {
  header: NiftiHeader;
  /** The stored datatype (data may be Float32Array/Float64Array when scl_slope/scl_inter apply). */
  datatype: NiftiDatatype;
  file: string;
  /**
   * Where `affine` came from. `spacing` is pixdim (nibabel's get_zooms()) when the affine's voxel
   * sizes agree with it to 1e-5 relative, else the affine's (voxelSpacing in nifti-affine.ts).
   */
  geometrySource: NiftiGeometrySource;
  /** Set when the header's fields disagree and one was chosen (e.g. pixdim vs the sform), for `info` to show. */
  geometryNote?: string;
}

type TypedArrayConstructor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  new (length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

export interface DatatypeInfo {
  name: NiftiDatatype;
  code: number;
  bytes: number;
  array: TypedArrayConstructor;
}

export const DATATYPES: Readonly<Record<NiftiDatatype, DatatypeInfo>> = {
  uint8: { name: 'uint8', code: 2, bytes: 1, array: Uint8Array as unknown as TypedArrayConstructor },
  int16: { name: 'int16', code: 4, bytes: 2, array: Int16Array as unknown as TypedArrayConstructor },
  int32: { name: 'int32', code: 8, bytes: 4, array: Int32Array as unknown as TypedArrayConstructor },
  float32: { name: 'float32', code: 16, bytes: 4, array: Float32Array as unknown as TypedArrayConstructor },
  float64: { name: 'float64', code: 64, bytes: 8, array: Float64Array as unknown as TypedArrayConstructor },
  int8: { name: 'int8', code: 256, bytes: 1, array: Int8Array as unknown as TypedArrayConstructor },
  uint16: { name: 'uint16', code: 512, bytes: 2, array: Uint16Array as unknown as TypedArrayConstructor },
  uint32: { name: 'uint32', code: 768, bytes: 4, array: Uint32Array as unknown as TypedArrayConstructor },
  int64: { name: 'int64', code: 1024, bytes: 8, array: BigInt64Array as unknown as TypedArrayConstructor },
};

/** Names of NIfTI datatype codes we do not read, for error messages. */
export const UNSUPPORTED_DATATYPES: Readonly<Record<number, string>> = {
  0: 'unknown',
  1: 'binary (1 bit)',
  32: 'complex64',
  128: 'rgb24',
  511: 'float128',
  1280: 'uint64',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'rgba32',
};

export function datatypeFromCode(code: number): DatatypeInfo | undefined {
  return Object.values(DATATYPES).find((info) => info.code === code);
}

/** The datatype a typed array is stored as when no datatype is asked for. */
export function datatypeOfArray(data: TypedArray): NiftiDatatype {
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Float64Array) return 'float64';
  return 'float32';
}
