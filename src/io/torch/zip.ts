/**
 * A reader of zip archives for PyTorch's checkpoint format (torch.save writes a zip of stored
 * entries, see pth.ts), built to refuse hostile files rather than to read every zip there is:
 * the central directory is found from the end-of-central-directory record (zip64 records too),
 * every entry must lie inside the file, only "stored" and "deflate" entries are read, an entry
 * may not decode to more than a limit nor to more than it declares (a zip bomb), encrypted and
 * multi-disk archives are refused, and each entry's CRC-32 is checked. Entries are read from the
 * open file on demand, so a checkpoint of several GiB never sits in memory whole.
 *
 * The work is bounded by the file's bytes: a stored entry is its own bytes, and the deflated ones
 * together may declare at most `maxInflateRatio` times the file's size (or `inflateFloorBytes`
 * for small files), checked from the central directory before anything is inflated; inflating
 * stops one byte past the declared size (zlib's maxOutputLength), so an entry that lies about its
 * size never allocates more than it declared. torch.save stores its entries (ratio 1); deflate
 * of trained float weights gains about 10%, and only all-zero tensors compress further.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { CheckpointError } from '../../core/index.js';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  localHeaderOffset: number;
}

export interface ZipLimits {
  /** The most bytes one entry may decode to (default 2 GiB, also the largest Node buffer we make). */
  maxEntryBytes: number;
  /** The most entries the central directory may list (default 1,000,000). */
  maxEntries: number;
  /** The deflated entries together may declare at most this many times the file's bytes (default 16)... */
  maxInflateRatio: number;
  /** ...or this many bytes, when that is more (default 64 MiB: small files with zero tensors). */
  inflateFloorBytes: number;
}

export const ZIP_DEFAULTS: Readonly<ZipLimits> = Object.freeze({ maxEntryBytes: 2 ** 31 - 1, maxEntries: 1_000_000, maxInflateRatio: 16, inflateFloorBytes: 64 * 2 ** 20 });

/** The most bytes the deflated entries of a `fileBytes`-byte archive may inflate to, together. */
export function inflateBudget(fileBytes: number, limits: Pick<ZipLimits, 'maxInflateRatio' | 'inflateFloorBytes'> = ZIP_DEFAULTS): number {
  return Math.max(limits.inflateFloorBytes, limits.maxInflateRatio * fileBytes);
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_BYTES = 22;
const MAX_COMMENT = 0xffff;
const METHODS: Readonly<Record<number, string>> = { 0: 'stored', 8: 'deflate' };

/** An open zip archive; `close()` releases the file. */
export class ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private fd: number | null;

  private constructor(readonly file: string, fd: number, readonly fileBytes: number, entries: Map<string, ZipEntry>, private readonly limits: ZipLimits) {
    this.fd = fd;
    this.entries = entries;
  }

  /** Open `file` and read its central directory; CheckpointError for anything malformed. */
  static open(file: string, limits: Partial<ZipLimits> = {}): ZipArchive {
    const all: ZipLimits = { ...ZIP_DEFAULTS, ...limits };
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (cause) {
      throw new CheckpointError(`cannot read: ${(cause as Error).message}`, { file, cause });
    }
    try {
      const size = fs.fstatSync(fd).size;
      const entries = readCentralDirectory(fd, size, file, all);
      return new ZipArchive(file, fd, size, entries, all);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  /** The decoded bytes of one entry, checked against its declared size and CRC-32. */
  read(name: string, maxBytes = this.limits.maxEntryBytes): Buffer {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new CheckpointError(`the archive has no entry '${name}'`, { file: this.file });
    if (this.fd === null) throw new Error('ZipArchive.read after close()');
    const fail = (message: string, cause?: unknown): never => {
      throw new CheckpointError(`zip entry '${name}' ${message}`, { file: this.file, cause });
    };
    const limit = Math.min(maxBytes, this.limits.maxEntryBytes);
    if (entry.uncompressedSize > limit) fail(`declares ${entry.uncompressedSize} bytes, more than the ${limit}-byte limit (a zip bomb or not a checkpoint)`);
    const local = readAt(this.fd, entry.localHeaderOffset, 30, this.fileBytes, this.file, `the local header of '${name}'`);
    if (local.readUInt32LE(0) !== LOCAL_SIGNATURE) fail(`has no local header at offset ${entry.localHeaderOffset}`);
    const dataStart = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (dataStart + entry.compressedSize > this.fileBytes) {
      fail(`needs bytes ${dataStart}..${dataStart + entry.compressedSize} of a ${this.fileBytes}-byte file (truncated?)`);
    }
    const raw = readAt(this.fd, dataStart, entry.compressedSize, this.fileBytes, this.file, `entry '${name}'`);
    let data: Buffer;
    if (entry.method === 0) {
      data = raw;
    } else {
      try {
        // One byte more than declared: an entry that inflates past its declared size is refused.
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize + 1) });
      } catch (cause) {
        return fail(`does not inflate to its declared ${entry.uncompressedSize} bytes (${(cause as Error).message})`, cause);
      }
      if (data.byteLength !== entry.uncompressedSize) fail(`inflates to ${data.byteLength} bytes, its header declares ${entry.uncompressedSize}`);
    }
    const crc = zlib.crc32(data) >>> 0;
    if (crc !== entry.crc32) fail(`fails its CRC-32 check (${crc.toString(16)} != ${entry.crc32.toString(16)}): the file is damaged`);
    return data;
  }
}

function readAt(fd: number, position: number, length: number, fileBytes: number, file: string, what: string): Buffer {
  if (position < 0 || position + length > fileBytes) {
    throw new CheckpointError(`${what} lies outside the ${fileBytes}-byte file (truncated zip?)`, { file });
  }
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) throw new CheckpointError(`${what}: unexpected end of file`, { file });
    done += n;
  }
  return buffer;
}

function safeNumber(value: bigint, what: string, file: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(`zip ${what} ${value} is out of range`, { file });
  return Number(value);
}

interface Directory {
  entries: number;
  size: number;
  offset: number;
  /** Where the (zip64) end records start: the central directory must end before them. */
  end: number;
}

function findDirectory(fd: number, fileBytes: number, file: string): Directory {
  const notZip = (why: string): never => {
    throw new CheckpointError(`not a zip archive (PyTorch checkpoints since 1.6 are zips): ${why}; a truncated download also looks like this`, { file });
  };
  if (fileBytes < EOCD_BYTES) notZip(`only ${fileBytes} bytes`);
  const tailLength = Math.min(fileBytes, EOCD_BYTES + MAX_COMMENT);
  const tail = readAt(fd, fileBytes - tailLength, tailLength, fileBytes, file, 'the end of the archive');
  let at = -1;
  for (let i = tailLength - EOCD_BYTES; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIGNATURE && i + EOCD_BYTES + tail.readUInt16LE(i + 20) === tailLength) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    const head = readAt(fd, 0, 2, fileBytes, file, 'the start of the file');
    if (head[0] === 0x80 && head[1]! <= 5) notZip('it is a bare pickle (the legacy torch.save format of PyTorch < 1.6, not supported: load and save it again with a current PyTorch)');
    notZip('no end-of-central-directory record');
  }
  const eocdPosition = fileBytes - tailLength + at;
  if (tail.readUInt16LE(at + 4) !== 0 || tail.readUInt16LE(at + 6) !== 0) notZip('a multi-disk archive');
  let entries = tail.readUInt16LE(at + 10);
  let size = tail.readUInt32LE(at + 12);
  let offset = tail.readUInt32LE(at + 16);
  let end = eocdPosition;
  if (entries === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    if (eocdPosition < 20) notZip('a zip64 archive without its locator');
    const locator = readAt(fd, eocdPosition - 20, 20, fileBytes, file, 'the zip64 locator');
    if (locator.readUInt32LE(0) !== ZIP64_LOCATOR_SIGNATURE) notZip('the zip64 locator is missing');
    const recordAt = safeNumber(locator.readBigUInt64LE(8), 'zip64 record offset', file);
    const record = readAt(fd, recordAt, 56, fileBytes, file, 'the zip64 end record');
    if (record.readUInt32LE(0) !== ZIP64_EOCD_SIGNATURE) notZip('the zip64 end record is missing');
    entries = safeNumber(record.readBigUInt64LE(32), 'entry count', file);
    size = safeNumber(record.readBigUInt64LE(40), 'central directory size', file);
    offset = safeNumber(record.readBigUInt64LE(48), 'central directory offset', file);
    end = recordAt;
  }
  if (offset + size > end) notZip(`the central directory (bytes ${offset}..${offset + size}) runs past its end record at ${end}`);
  return { entries, size, offset, end };
}

function readCentralDirectory(fd: number, fileBytes: number, file: string, limits: ZipLimits): Map<string, ZipEntry> {
  const directory = findDirectory(fd, fileBytes, file);
  if (directory.entries > limits.maxEntries) throw new CheckpointError(`the zip lists ${directory.entries} entries, more than the limit of ${limits.maxEntries}`, { file });
  const bytes = readAt(fd, directory.offset, directory.size, fileBytes, file, 'the central directory');
  const entries = new Map<string, ZipEntry>();
  const fail = (message: string): never => {
    throw new CheckpointError(`zip central directory: ${message}`, { file });
  };
  let at = 0;
  let inflated = 0;
  for (let i = 0; i < directory.entries; i++) {
    if (at + 46 > bytes.length || bytes.readUInt32LE(at) !== CENTRAL_SIGNATURE) fail(`entry ${i} of ${directory.entries} is missing or damaged`);
    const flags = bytes.readUInt16LE(at + 8);
    const method = bytes.readUInt16LE(at + 10);
    const crc32 = bytes.readUInt32LE(at + 16);
    let compressedSize = bytes.readUInt32LE(at + 20);
    let uncompressedSize = bytes.readUInt32LE(at + 24);
    const nameLength = bytes.readUInt16LE(at + 28);
    const extraLength = bytes.readUInt16LE(at + 30);
    const commentLength = bytes.readUInt16LE(at + 32);
    const disk = bytes.readUInt16LE(at + 34);
    let localHeaderOffset = bytes.readUInt32LE(at + 42);
    const next = at + 46 + nameLength + extraLength + commentLength;
    if (next > bytes.length) fail(`entry ${i} runs past the directory`);
    const name = bytes.toString('utf8', at + 46, at + 46 + nameLength);
    if (flags & 1) fail(`'${name}' is encrypted`);
    if (disk !== 0 && disk !== 0xffff) fail(`'${name}' is on another disk`);
    if (!(method in METHODS)) fail(`'${name}' uses compression method ${method}; only stored (0) and deflate (8) are read`);
    // Zip64 extended information: 64-bit values for the fields saturated at 0xffffffff, in this order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = bytes.readUInt16LE(extra);
      const length = bytes.readUInt16LE(extra + 2);
      if (extra + 4 + length > extraEnd) fail(`'${name}' has a damaged extra field`);
      if (id === 0x0001) {
        let field = extra + 4;
        const take = (): number => {
          if (field + 8 > extra + 4 + length) fail(`'${name}' has a short zip64 field`);
          const value = safeNumber(bytes.readBigUInt64LE(field), 'size', file);
          field += 8;
          return value;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
      }
      extra += 4 + length;
    }
    if (uncompressedSize > limits.maxEntryBytes) fail(`'${name}' declares ${uncompressedSize} bytes, more than the ${limits.maxEntryBytes}-byte limit (a zip bomb or not a checkpoint)`);
    if (method === 0 && compressedSize !== uncompressedSize) fail(`stored entry '${name}' has ${compressedSize} bytes but declares ${uncompressedSize}`);
    if (localHeaderOffset + 30 + compressedSize > fileBytes) {
      fail(`'${name}' (${compressedSize} bytes at offset ${localHeaderOffset}) lies past the end of the ${fileBytes}-byte file`);
    }
    if (entries.has(name)) fail(`'${name}' is listed twice`);
    entries.set(name, { name, method, compressedSize, uncompressedSize, crc32, localHeaderOffset });
    if (method === 8) inflated += uncompressedSize;
    at = next;
  }
  const budget = inflateBudget(fileBytes, limits);
  if (inflated > budget) {
    throw new CheckpointError(
      `the deflated entries declare ${inflated} bytes in all, more than ${budget} (${limits.maxInflateRatio} times the ${fileBytes}-byte file, at least ${limits.inflateFloorBytes}): a zip bomb, not a checkpoint (torch.save stores its entries uncompressed)`,
      { file },
    );
  }
  return entries;
}
