/**
 * NIfTI-1 writing (.nii, or .nii.gz by extension) through core's atomic writes. The geometry comes
 * from the volume's affine: sform = the affine, qform = its rotation part (shears dropped), as
 * nibabel's set_sform/set_qform store them; pixdim = the volume's spacing where it agrees with the
 * affine's column norms (voxelSpacing, the reader's rule, so that a volume read and written keeps
 * its pixdim), else the column norms as nibabel writes them. A singular or non-finite affine is
 * refused: it would store pixdim 0, which no reader accepts.
 */
import * as zlib from 'node:zlib';
import { atomicWriteFile, InputError, voxelCount, type TypedArray, type Volume } from '../../core/index.js';
import { DATATYPES, datatypeOfArray, type NiftiDatatype, type NiftiHeader } from './types.js';
import { encodeNifti1Header } from './header.js';
import { geometryFromAffine, singularityProblem, voxelSpacing, type Matrix3 } from './affine.js';

export interface WriteNiftiOptions {
  /** Stored datatype; default: the one matching the data's typed array (Float32Array -> float32, ...). */
  datatype?: NiftiDatatype;
  /** gzip level 0-9 for .nii.gz; default 1 (CT volumes barely shrink further, and level 6 is 2x slower). */
  compressionLevel?: number;
  /**
   * A source image's header: its qform/sform codes (when either is > 0), xyzt_units, descrip,
   * intent and slice fields are kept; geometry always comes from the volume's affine.
   */
  header?: NiftiHeader;
}

const CHUNK_BYTES = 1 << 20;
const UNITS_MM = 2;

const INTEGER_RANGES: Partial<Record<NiftiDatatype, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

/**
 * `data` as the typed array of `datatype`: the same array when it already is one; otherwise
 * converted, rounding to nearest and clipping to the type's range for integer targets.
 */
function convert(data: TypedArray, datatype: NiftiDatatype): TypedArray {
  const info = DATATYPES[datatype];
  if (data instanceof info.array) return data;
  const out = new info.array(data.length);
  if (out instanceof BigInt64Array) {
    for (let i = 0; i < data.length; i++) {
      const value = Number(data[i]!);
      out[i] = BigInt(Number.isFinite(value) ? Math.round(value) : 0);
    }
    return out;
  }
  const range = INTEGER_RANGES[datatype];
  for (let i = 0; i < data.length; i++) {
    const value = Number(data[i]!);
    if (range) {
      out[i] = Number.isNaN(value) ? 0 : Math.min(range[1], Math.max(range[0], Math.round(value)));
    } else {
      out[i] = value;
    }
  }
  return out;
}

/** The NIfTI-1 header for a volume (exported for the tests that compare it with nibabel's). */
export function headerForVolume(volume: Volume, datatype: NiftiDatatype, source?: NiftiHeader): NiftiHeader {
  const [nz, ny, nx] = volume.shape;
  const geometry = geometryFromAffine(volume.affine);
  const [sz, sy, sx] = volume.spacing;
  const pixdim = voxelSpacing([sx, sy, sz], volume.affine, 'affine').spacingXyz;
  const keepCodes = source !== undefined && (source.qformCode > 0 || source.sformCode > 0);
  return {
    version: 1,
    littleEndian: true,
    dims: [nx, ny, nz],
    pixdim,
    datatype,
    bitpix: DATATYPES[datatype].bytes * 8,
    sclSlope: 1,
    sclInter: 0,
    qformCode: keepCodes ? source.qformCode : 1,
    sformCode: keepCodes ? source.sformCode : 1,
    quatern: geometry.quatern,
    qoffset: geometry.qoffset,
    qfac: geometry.qfac,
    srowX: geometry.srowX,
    srowY: geometry.srowY,
    srowZ: geometry.srowZ,
    xyztUnits: source?.xyztUnits || UNITS_MM,
    descrip: source?.descrip ?? '',
    auxFile: source?.auxFile ?? '',
    intentName: source?.intentName ?? '',
    voxOffset: 352,
    intentCode: source?.intentCode ?? 0,
    intentParams: source?.intentParams ?? [0, 0, 0],
    calMin: 0,
    calMax: 0,
    sliceCode: source?.sliceCode ?? 0,
    sliceStart: source?.sliceStart ?? 0,
    sliceEnd: source?.sliceEnd ?? 0,
    sliceDuration: source?.sliceDuration ?? 0,
    toffset: source?.toffset ?? 0,
    dimInfo: source?.dimInfo ?? 0,
  };
}

function gzipChunks(chunks: readonly Uint8Array[], level: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const gzip = zlib.createGzip({ level, chunkSize: CHUNK_BYTES });
    const out: Buffer[] = [];
    gzip.on('data', (chunk: Buffer) => out.push(chunk));
    gzip.on('error', reject);
    gzip.on('end', () => resolve(out));
    for (const chunk of chunks) {
      for (let start = 0; start < chunk.byteLength; start += CHUNK_BYTES) {
        gzip.write(chunk.subarray(start, Math.min(chunk.byteLength, start + CHUNK_BYTES)));
      }
    }
    gzip.end();
  });
}

/** Write `volume` as NIfTI-1, atomically; .nii.gz (gzip) or .nii by the file's extension. */
export async function writeNifti(file: string, volume: Volume, options: WriteNiftiOptions = {}): Promise<void> {
  const { shape } = volume;
  if (!/\.nii(\.gz)?$/i.test(file)) {
    throw new InputError('a NIfTI file name must end with .nii or .nii.gz', { file, code: 'bad-file-name' });
  }
  if (shape.length !== 3 || shape.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new InputError(`cannot write shape [${shape.join(', ')}]: need 3 positive integers [z, y, x]`, { file, code: 'bad-shape' });
  }
  if (volume.data.length !== voxelCount(shape)) {
    throw new InputError(`data has ${volume.data.length} values, shape [${shape.join(', ')}] needs ${voxelCount(shape)}`, {
      file,
      code: 'bad-shape',
    });
  }
  if (shape.some((n) => n > 32767)) {
    throw new InputError(`shape [${shape.join(', ')}] exceeds NIfTI-1's 32767 voxels per axis`, { file, code: 'bad-shape' });
  }
  if (volume.affine.flat().some((value) => !Number.isFinite(value))) {
    throw new InputError(`affine has non-finite entries: [${volume.affine.slice(0, 3).map((row) => `[${row.join(', ')}]`).join(', ')}]`, { file, code: 'bad-affine' });
  }
  const singular = singularityProblem(volume.affine.slice(0, 3).map((row) => row.slice(0, 3)) as Matrix3);
  if (singular !== undefined) throw new InputError(`cannot write a singular affine: ${singular}`, { file, code: 'bad-affine' });
  const datatype = options.datatype ?? datatypeOfArray(volume.data);
  const data = convert(volume.data, datatype);
  const header = encodeNifti1Header(headerForVolume(volume, datatype, options.header));
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (/\.gz$/i.test(file)) {
    const level = options.compressionLevel ?? 1;
    if (!Number.isInteger(level) || level < 0 || level > 9) {
      throw new InputError(`compression level ${level} is not an integer 0..9`, { file, code: 'bad-arguments' });
    }
    await atomicWriteFile(file, await gzipChunks([header, body], level));
  } else {
    await atomicWriteFile(file, [header, body]);
  }
}
