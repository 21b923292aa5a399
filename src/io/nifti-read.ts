/**
 * NIfTI reading. A .nii file is read straight into a fresh, aligned buffer; a gzipped file is
 * inflated as a stream (1 MiB chunks) whose bytes are copied once into a buffer allocated as soon
 * as the header says how large the image is. The typed array is a view on that buffer, byte-swapped
 * in place for big-endian files; only scl_slope/scl_inter scaling makes a second array.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { InputError, LesionsegError, type TypedArray, type Shape3 } from '../core/index.js';
import { DATATYPES, type NiftiHeader, type NiftiImage } from './nifti-types.js';
import { HEADER_PROBE_BYTES, NIFTI1_HEADER_BYTES, NIFTI2_HEADER_BYTES, detectHeader, parseNiftiHeader } from './nifti-header.js';
import { affineFromHeader, spatialZooms } from './nifti-affine.js';

const CHUNK_BYTES = 1 << 20;

function wrapFsError(error: unknown, file: string): never {
  if (error instanceof LesionsegError) throw error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') throw new InputError('file not found', { file, code: 'not-found', cause: error });
  if (code === 'EISDIR') throw new InputError('is a folder, not a NIfTI file', { file, code: 'not-nifti', cause: error });
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(String((error as Error).message))) {
    throw new InputError(`corrupt or truncated gzip data (${(error as Error).message})`, { file, code: 'truncated', cause: error });
  }
  throw new InputError(`cannot read: ${(error as Error).message}`, { file, code: 'unreadable', cause: error });
}

function isGzip(prefix: Uint8Array): boolean {
  return prefix.byteLength >= 2 && prefix[0] === 0x1f && prefix[1] === 0x8b;
}

/** Where the voxels start: vox_offset, or right after the header when it points inside the header. */
function dataOffset(h: NiftiHeader): number {
  const headerBytes = h.version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  return h.voxOffset < headerBytes ? headerBytes + 4 : Math.floor(h.voxOffset);
}

function dataByteLength(h: NiftiHeader): number {
  return h.dims.reduce((product, n) => product * n, 1) * DATATYPES[h.datatype].bytes;
}

function allocate(byteLength: number, file: string): Uint8Array {
  try {
    return new Uint8Array(new ArrayBuffer(byteLength));
  } catch (error) {
    throw new InputError(`image too large to hold in memory (${byteLength} bytes)`, { file, code: 'too-large', cause: error });
  }
}

function shortDataError(h: NiftiHeader, file: string, got: number): InputError {
  return new InputError(
    `data too short: dims [${h.dims.join(', ')}] of ${h.datatype} need ${dataByteLength(h)} bytes after offset ` +
      `${dataOffset(h)}, the file has ${got}`,
    { file, code: 'truncated' },
  );
}

async function readPrefix(file: string, bytes: number): Promise<Uint8Array> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Inflate `file` and hand its header and (when `withData`) the image bytes over. Stops inflating as
 * soon as the image is complete, as nibabel does; trailing bytes are ignored.
 */
async function inflate(file: string, withData: boolean): Promise<{ header: NiftiHeader; data: Uint8Array }> {
  const source = fs.createReadStream(file, { highWaterMark: CHUNK_BYTES });
  const gunzip = zlib.createGunzip({ chunkSize: CHUNK_BYTES });
  source.on('error', (error) => gunzip.destroy(error));
  source.pipe(gunzip);
  const prefix: Buffer[] = [];
  let prefixBytes = 0;
  let header: NiftiHeader | undefined;
  let data: Uint8Array = new Uint8Array(0);
  let skip = 0; // bytes still to drop before the data starts
  let filled = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let piece: Uint8Array = chunk;
      if (!header) {
        prefix.push(chunk);
        prefixBytes += chunk.byteLength;
        const joined = prefix.length === 1 ? prefix[0]! : Buffer.concat(prefix);
        const kind = detectHeader(joined);
        const needed = kind?.version === 2 ? NIFTI2_HEADER_BYTES : NIFTI1_HEADER_BYTES;
        if (prefixBytes < needed && (kind || prefixBytes < 4)) continue;
        header = parseNiftiHeader(joined, file);
        if (!withData) break;
        data = allocate(dataByteLength(header), file);
        skip = dataOffset(header);
        piece = joined;
      }
      if (skip >= piece.byteLength) {
        skip -= piece.byteLength;
        continue;
      }
      const take = Math.min(piece.byteLength - skip, data.byteLength - filled);
      data.set(piece.subarray(skip, skip + take), filled);
      filled += take;
      skip = 0;
      if (filled === data.byteLength) break;
    }
  } catch (error) {
    wrapFsError(error, file);
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  if (!header) {
    if (prefixBytes === 0) throw new InputError('empty or truncated gzip stream', { file, code: 'truncated' });
    header = parseNiftiHeader(prefix.length === 1 ? prefix[0]! : Buffer.concat(prefix), file);
  }
  if (withData && filled < data.byteLength) throw shortDataError(header, file, filled);
  return { header, data };
}

async function readUncompressed(file: string, withData: boolean): Promise<{ header: NiftiHeader; data: Uint8Array }> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const probe = Buffer.alloc(HEADER_PROBE_BYTES);
    const { bytesRead } = await handle.read(probe, 0, probe.byteLength, 0);
    const header = parseNiftiHeader(probe.subarray(0, bytesRead), file);
    if (!withData) return { header, data: new Uint8Array(0) };
    const offset = dataOffset(header);
    const size = (await handle.stat()).size;
    const available = Math.max(0, size - offset);
    if (available < dataByteLength(header)) throw shortDataError(header, file, available);
    const data = allocate(dataByteLength(header), file);
    let filled = 0;
    while (filled < data.byteLength) {
      const length = Math.min(data.byteLength - filled, 1 << 30);
      const result = await handle.read(data, filled, length, offset + filled);
      if (result.bytesRead === 0) throw shortDataError(header, file, filled);
      filled += result.bytesRead;
    }
    return { header, data };
  } finally {
    await handle.close();
  }
}

async function readRaw(file: string, withData: boolean): Promise<{ header: NiftiHeader; data: Uint8Array }> {
  try {
    const prefix = await readPrefix(file, 2);
    return isGzip(prefix) ? await inflate(file, withData) : await readUncompressed(file, withData);
  } catch (error) {
    wrapFsError(error, file);
  }
}

/** Reverse the byte order of each `elementBytes`-wide element, in place. */
function swapBytes(bytes: Uint8Array, elementBytes: number): void {
  if (elementBytes === 1) return;
  for (let start = 0; start < bytes.byteLength; start += elementBytes) {
    for (let low = start, high = start + elementBytes - 1; low < high; low++, high--) {
      const value = bytes[low]!;
      bytes[low] = bytes[high]!;
      bytes[high] = value;
    }
  }
}

/** Slope and intercept to apply, or undefined when they leave the values unchanged (slope 0/NaN means none). */
function scaling(h: NiftiHeader): { slope: number; inter: number } | undefined {
  if (!Number.isFinite(h.sclSlope) || h.sclSlope === 0) return undefined;
  const inter = Number.isFinite(h.sclInter) ? h.sclInter : 0;
  if (h.sclSlope === 1 && inter === 0) return undefined;
  return { slope: h.sclSlope, inter };
}

/**
 * Scaled values: Float32Array for types float32 holds exactly (8/16-bit integers, float32), Float64Array
 * for 32/64-bit integers and float64, where float32 would round the stored values.
 */
function applyScaling(raw: TypedArray, slope: number, inter: number, datatype: NiftiHeader['datatype']): Float32Array | Float64Array {
  const wide = datatype === 'float64' || datatype === 'int32' || datatype === 'uint32' || datatype === 'int64';
  const out = wide ? new Float64Array(raw.length) : new Float32Array(raw.length);
  if (raw instanceof BigInt64Array) {
    for (let i = 0; i < raw.length; i++) out[i] = Number(raw[i]!) * slope + inter;
  } else {
    for (let i = 0; i < raw.length; i++) out[i] = (raw[i] as number) * slope + inter;
  }
  return out;
}

/** Read only the header of a .nii or .nii.gz file. */
export async function readNiftiHeader(file: string): Promise<NiftiHeader> {
  return (await readRaw(file, false)).header;
}

/** Read a 3D NIfTI image (.nii or .nii.gz, NIfTI-1 or -2, either byte order); throws InputError naming the file. */
export async function readNifti(file: string): Promise<NiftiImage> {
  const { header, data } = await readRaw(file, true);
  const extra = header.dims.slice(3);
  if (extra.some((n) => n !== 1)) {
    throw new InputError(`image is ${header.dims.length}D [${header.dims.join(', ')}]; only 3D images are supported`, {
      file,
      code: 'not-3d',
    });
  }
  const info = DATATYPES[header.datatype];
  if (!header.littleEndian) swapBytes(data, info.bytes);
  const raw = new info.array(data.buffer, data.byteOffset, data.byteLength / info.bytes);
  const scale = scaling(header);
  const values = scale ? applyScaling(raw, scale.slope, scale.inter, header.datatype) : raw;
  const [nx, ny, nz] = [header.dims[0] ?? 1, header.dims[1] ?? 1, header.dims[2] ?? 1];
  const [sx, sy, sz] = spatialZooms(header);
  const shape: Shape3 = [nz, ny, nx];
  return {
    data: values,
    shape,
    spacing: [sz, sy, sx],
    affine: affineFromHeader(header),
    header,
    datatype: header.datatype,
    file,
  };
}
