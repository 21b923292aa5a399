/**
 * A writer of "stored" (uncompressed) zip archives, the layout torch.save produces: each entry's
 * bytes follow its local header unchanged, so a reader can map a tensor's storage straight from
 * the file. As PyTorch's own writer (caffe2 inline_container), every entry's data starts at a
 * multiple of 64 bytes: the local header carries an extra field (id 0x4246, "FB") of padding.
 * CRC-32 and sizes are in the local header (no data descriptors), names are UTF-8 (flag bit 11).
 * Archives and entries above 4 GiB would need zip64 records, which this writer does not write:
 * they are refused (a 3D U-Net checkpoint has tens to hundreds of MB).
 *
 * The result is a list of chunks (headers and the callers' own buffers, not copied), for
 * core's atomicWriteFileSync.
 */
import * as zlib from 'node:zlib';
import { LesionsegError } from '../../core/index.js';

export interface ZipWriteEntry {
  /** Path inside the archive, '/'-separated. */
  name: string;
  /** The bytes, possibly in several pieces (written one after the other). */
  data: Uint8Array | readonly Uint8Array[];
}

export interface ZipWriteOptions {
  /** Entry data starts at a multiple of this many bytes (default 64, as torch.save; 1: no padding). */
  alignment?: number;
}

const LOCAL_SIGNATURE = 0x04034b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const EOCD_SIGNATURE = 0x06054b50;
const PADDING_FIELD_ID = 0x4246;
const UTF8_FLAG = 1 << 11;
/** "Version needed to extract": 2.0 (plain stored entries). */
const VERSION = 20;
const MAX_32 = 0xffffffff;
/** 1980-01-01 00:00 in MS-DOS date/time: a fixed stamp keeps equal contents byte-identical. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

function tooLarge(what: string): never {
  throw new LesionsegError('zip-too-large', `${what} exceeds 4 GiB, which needs zip64 records this writer does not write`);
}

/** The chunks of a stored zip holding `entries` in order; names must be unique. */
export function storedZipChunks(entries: readonly ZipWriteEntry[], options: ZipWriteOptions = {}): Uint8Array[] {
  const alignment = options.alignment ?? 64;
  if (!Number.isInteger(alignment) || alignment < 1) throw new RangeError(`zip alignment must be a positive integer, got ${alignment}`);
  const seen = new Set<string>();
  const chunks: Uint8Array[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    if (seen.has(entry.name)) throw new RangeError(`zip entry '${entry.name}' is listed twice`);
    seen.add(entry.name);
    const name = Buffer.from(entry.name, 'utf8');
    if (name.byteLength > 0xffff) throw new RangeError(`zip entry name '${entry.name.slice(0, 40)}...' is longer than 65535 bytes`);
    const pieces = entry.data instanceof Uint8Array ? [entry.data] : entry.data;
    let size = 0;
    let crc = 0;
    for (const piece of pieces) {
      size += piece.byteLength;
      crc = zlib.crc32(piece, crc);
    }
    if (size > MAX_32) tooLarge(`zip entry '${entry.name}'`);
    if (offset > MAX_32) tooLarge('the archive');
    // Padding so that the data after header, name and extra field starts aligned.
    const unpadded = offset + 30 + name.byteLength;
    const extraLength = alignment === 1 || unpadded % alignment === 0 ? 0 : 4 + ((alignment - ((unpadded + 4) % alignment)) % alignment);
    const local = Buffer.alloc(30 + name.byteLength + extraLength);
    local.writeUInt32LE(LOCAL_SIGNATURE, 0);
    local.writeUInt16LE(VERSION, 4);
    local.writeUInt16LE(UTF8_FLAG, 6);
    local.writeUInt16LE(0, 8); // method: stored
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(size, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.byteLength, 26);
    local.writeUInt16LE(extraLength, 28);
    name.copy(local, 30);
    if (extraLength > 0) {
      local.writeUInt16LE(PADDING_FIELD_ID, 30 + name.byteLength);
      local.writeUInt16LE(extraLength - 4, 32 + name.byteLength);
    }
    const record = Buffer.alloc(46 + name.byteLength);
    record.writeUInt32LE(CENTRAL_SIGNATURE, 0);
    record.writeUInt16LE(VERSION, 4); // version made by
    record.writeUInt16LE(VERSION, 6);
    record.writeUInt16LE(UTF8_FLAG, 8);
    record.writeUInt16LE(0, 10);
    record.writeUInt16LE(DOS_TIME, 12);
    record.writeUInt16LE(DOS_DATE, 14);
    record.writeUInt32LE(crc >>> 0, 16);
    record.writeUInt32LE(size, 20);
    record.writeUInt32LE(size, 24);
    record.writeUInt16LE(name.byteLength, 28);
    // extra length 0, comment length 0, disk 0, internal and external attributes 0
    record.writeUInt32LE(offset, 42);
    name.copy(record, 46);
    central.push(record);
    chunks.push(local, ...pieces);
    offset += local.byteLength + size;
  }
  const centralBytes = central.reduce((sum, record) => sum + record.byteLength, 0);
  if (offset > MAX_32 || offset + centralBytes > MAX_32) tooLarge('the archive');
  if (entries.length > 0xffff) throw new RangeError(`a zip without zip64 records holds at most 65535 entries, not ${entries.length}`);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(EOCD_SIGNATURE, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralBytes, 12);
  end.writeUInt32LE(offset, 16);
  chunks.push(...central, end);
  return chunks;
}
