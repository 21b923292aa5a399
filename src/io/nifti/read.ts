/**
 * NIfTI reading. The header is validated (nifti-validate.ts) and the image's size checked against
 * a limit before any voxel buffer exists. A .nii file is read straight into a fresh, aligned buffer
 * once its size is known to hold the data; a gzipped file is inflated as a stream (1 MiB chunks)
 * whose bytes are copied into a buffer that is allocated in full only when the gzip trailer's ISIZE
 * agrees with the header, and otherwise grows with the bytes actually inflated, so a small file
 * declaring gigabytes costs what it holds. The typed array is a view on that buffer, byte-swapped in
 * place for big-endian files; only scl_slope/scl_inter scaling makes a second array.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { InputError, LesionsegError, type Shape3 } from '../../core/index.js';
import { DATATYPES, type NiftiHeader, type NiftiImage } from './types.js';
import { HEADER_PROBE_BYTES, NIFTI1_HEADER_BYTES, NIFTI2_HEADER_BYTES, detectHeader, parseNiftiHeader } from './header.js';
import { geometryFromHeader } from './affine.js';
import { applyScaling, scaling } from './scaling.js';
import { DEFAULT_MAX_IMAGE_BYTES, assertVolume, checkImageSize, validateNiftiHeader, volumeShape } from './validate.js';

export interface ReadNiftiOptions {
  /**
   * Most bytes one image's voxels may take in memory (stored values plus the scaled copy); an image
   * declaring more is refused before anything is allocated. Default DEFAULT_MAX_IMAGE_BYTES (8 GiB).
   */
  maxBytes?: number;
}

const CHUNK_BYTES = 1 << 20;
/** First buffer for a gzip stream whose trailer does not vouch for the declared size; doubled as bytes arrive. */
export const GZIP_GROWTH_START_BYTES = 64 * 2 ** 20;
const GZIP_TRAILER_BYTES = 8;
const GZIP_MINIMUM_BYTES = 18;

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

/** Where the voxels start: vox_offset, or right after the header when it points inside the header. */
function dataOffset(h: NiftiHeader): number {
  const headerBytes = h.version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  return h.voxOffset < headerBytes ? headerBytes + 4 : h.voxOffset;
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

/** Everything to refuse before reading voxels: a bad header, a 4D image (when reading data), too many bytes. */
function checkBeforeReading(h: NiftiHeader, file: string, withData: boolean, options: ReadNiftiOptions): void {
  validateNiftiHeader(h, file);
  if (!withData) return;
  assertVolume(h, file);
  checkImageSize(h, file, options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES);
}

/** Whether the file is gzip and, if so, its trailer's ISIZE (uncompressed size mod 2^32 of the last member). */
async function probeFile(file: string): Promise<{ gzip: boolean; isize?: number }> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await handle.read(magic, 0, 2, 0);
    if (bytesRead < 2 || magic[0] !== 0x1f || magic[1] !== 0x8b) return { gzip: false };
    const size = (await handle.stat()).size;
    if (size < GZIP_MINIMUM_BYTES) return { gzip: true };
    const trailer = Buffer.alloc(GZIP_TRAILER_BYTES);
    await handle.read(trailer, 0, GZIP_TRAILER_BYTES, size - GZIP_TRAILER_BYTES);
    return { gzip: true, isize: trailer.readUInt32LE(4) };
  } finally {
    await handle.close();
  }
}

/**
 * Bytes to allocate first for `dataBytes` of voxels at `offset` in a gzip stream: all of them when
 * the trailer's ISIZE equals offset + dataBytes mod 2^32 (a single-member stream of exactly that
 * size), else at most GZIP_GROWTH_START_BYTES. A trailer can lie too, but then the allocation is
 * still bounded by the size limit checked before.
 */
export function initialGzipCapacity(dataBytes: number, offset: number, isize: number | undefined): number {
  if (isize !== undefined && isize === (offset + dataBytes) % 2 ** 32) return dataBytes;
  return Math.min(dataBytes, GZIP_GROWTH_START_BYTES);
}

/** The capacity after `capacity` that holds `needed` bytes: doubling, never beyond `dataBytes`. */
export function grownCapacity(capacity: number, needed: number, dataBytes: number): number {
  let next = Math.max(1, capacity);
  while (next < needed) next *= 2;
  return Math.min(next, dataBytes);
}

/**
 * Inflate `file` and hand its header and (when `withData`) the image bytes over. Stops inflating as
 * soon as the image is complete, as nibabel does; trailing bytes are ignored.
 */
async function inflate(file: string, withData: boolean, isize: number | undefined, options: ReadNiftiOptions): Promise<{ header: NiftiHeader; data: Uint8Array }> {
  const source = fs.createReadStream(file, { highWaterMark: CHUNK_BYTES });
  const gunzip = zlib.createGunzip({ chunkSize: CHUNK_BYTES });
  source.on('error', (error) => gunzip.destroy(error));
  source.pipe(gunzip);
  const prefix: Buffer[] = [];
  let prefixBytes = 0;
  let header: NiftiHeader | undefined;
  let data: Uint8Array = new Uint8Array(0);
  let dataBytes = 0;
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
        checkBeforeReading(header, file, withData, options);
        if (!withData) break;
        dataBytes = dataByteLength(header);
        skip = dataOffset(header);
        data = allocate(initialGzipCapacity(dataBytes, skip, isize), file);
        piece = joined;
      }
      if (skip >= piece.byteLength) {
        skip -= piece.byteLength;
        continue;
      }
      const take = Math.min(piece.byteLength - skip, dataBytes - filled);
      if (filled + take > data.byteLength) {
        const grown = allocate(grownCapacity(data.byteLength, filled + take, dataBytes), file);
        grown.set(data.subarray(0, filled));
        data = grown;
      }
      data.set(piece.subarray(skip, skip + take), filled);
      filled += take;
      skip = 0;
      if (filled === dataBytes) break;
    }
  } catch (error) {
    wrapFsError(error, file);
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  if (!header) {
    if (prefixBytes === 0) throw new InputError('empty or truncated gzip stream', { file, code: 'truncated' });
    // A stream shorter than a header: parsing throws 'truncated' (or 'not-nifti').
    header = parseNiftiHeader(prefix.length === 1 ? prefix[0]! : Buffer.concat(prefix), file);
    checkBeforeReading(header, file, withData, options);
    dataBytes = dataByteLength(header);
  }
  if (withData && filled < dataBytes) throw shortDataError(header, file, filled);
  return { header, data };
}

async function readUncompressed(file: string, withData: boolean, options: ReadNiftiOptions): Promise<{ header: NiftiHeader; data: Uint8Array }> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const probe = Buffer.alloc(HEADER_PROBE_BYTES);
    const { bytesRead } = await handle.read(probe, 0, probe.byteLength, 0);
    const header = parseNiftiHeader(probe.subarray(0, bytesRead), file);
    checkBeforeReading(header, file, withData, options);
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

async function readRaw(file: string, withData: boolean, options: ReadNiftiOptions): Promise<{ header: NiftiHeader; data: Uint8Array }> {
  try {
    const { gzip, isize } = await probeFile(file);
    return gzip ? await inflate(file, withData, isize, options) : await readUncompressed(file, withData, options);
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

/**
 * Read only the header of a .nii or .nii.gz file, validated as readNifti validates it (a 4D header is
 * returned, for callers that report that themselves).
 */
export async function readNiftiHeader(file: string): Promise<NiftiHeader> {
  return (await readRaw(file, false, {})).header;
}

/**
 * Read a 3D NIfTI image (.nii or .nii.gz, NIfTI-1 or -2, either byte order); throws InputError
 * naming the file. NaN voxels are returned as they are (see assertFiniteVoxels); scaling that makes
 * finite stored values infinite is refused.
 */
export async function readNifti(file: string, options: ReadNiftiOptions = {}): Promise<NiftiImage> {
  const { header, data } = await readRaw(file, true, options);
  const info = DATATYPES[header.datatype];
  if (!header.littleEndian) swapBytes(data, info.bytes);
  const raw = new info.array(data.buffer, data.byteOffset, data.byteLength / info.bytes);
  const scale = scaling(header);
  const values = scale ? applyScaling(raw, scale, header.datatype, file) : raw;
  const geometry = geometryFromHeader(header);
  const [sx, sy, sz] = geometry.spacingXyz;
  const shape: Shape3 = volumeShape(header);
  return {
    data: values,
    shape,
    spacing: [sz, sy, sx],
    affine: geometry.affine,
    header,
    datatype: header.datatype,
    file,
    geometrySource: geometry.source,
    ...(geometry.note !== undefined ? { geometryNote: geometry.note } : {}),
  };
}
