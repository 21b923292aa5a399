/**
 * Hostile .pth files made here with our own writers (pickle-write.ts, zip-write.ts; deflated and
 * zip64 entries by the small writer below): each is refused with a CheckpointError naming the
 * file, and the peak resident memory of this process (getrusage's maxRSS) grows by less than
 * 64 MiB while it is refused, though the files claim or inflate to 1 to 8 GiB. Before these
 * bounds, the honest 1 GiB bomb and the broadcast views allocated gigabytes (or ended in a
 * RangeError). Also: a real deflated zero tensor (1000:1) within the floor still reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { CheckpointError } from '../../core/index.js';
import { pickle, type PickleStorage, type PickleTensor, type PickleValue } from './pickle-write.js';
import { readPth, stateDictEntries } from './pth.js';
import { storedZipChunks } from './zip-write.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pth-hostile-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const MIB = 2 ** 20;
const GIB = 2 ** 30;

interface RawEntry {
  name: string;
  /** The bytes as they lie in the archive (deflated for method 8). */
  data: Uint8Array;
  method: 0 | 8;
  /** The uncompressed size the headers declare (zip64 above 4 GiB). */
  declared: number;
  crc: number;
}

/** A zip of `entries` as given (no checks: the point is to write lies). */
function rawZip(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name);
    const zip64 = entry.declared >= 0xffffffff;
    const local = Buffer.alloc(30 + name.length);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(45, 4);
    local.writeUInt16LE(entry.method, 8);
    local.writeUInt32LE(entry.crc, 14);
    local.writeUInt32LE(entry.data.byteLength, 18);
    local.writeUInt32LE(zip64 ? 0xffffffff : entry.declared, 22);
    local.writeUInt16LE(name.length, 26);
    name.copy(local, 30);
    const extra = Buffer.alloc(zip64 ? 12 : 0);
    if (zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(8, 2);
      extra.writeBigUInt64LE(BigInt(entry.declared), 4);
    }
    const record = Buffer.alloc(46 + name.length + extra.length);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(45, 4);
    record.writeUInt16LE(45, 6);
    record.writeUInt16LE(entry.method, 10);
    record.writeUInt32LE(entry.crc, 16);
    record.writeUInt32LE(entry.data.byteLength, 20);
    record.writeUInt32LE(zip64 ? 0xffffffff : entry.declared, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt16LE(extra.length, 30);
    record.writeUInt32LE(offset, 42);
    name.copy(record, 46);
    extra.copy(record, 46 + name.length);
    parts.push(local, Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength));
    central.push(record);
    offset += local.length + entry.data.byteLength;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

/**
 * A raw deflate stream of `mib` MiB of zeros, made without allocating them: one MiB deflated and
 * flushed to a byte boundary (Z_SYNC_FLUSH, whose back references reach only zeros), repeated,
 * then a final empty fixed-Huffman block (bits 1, 01, end-of-block: bytes 03 00).
 */
function zeroBomb(mib: number): Buffer {
  const chunk = zlib.deflateRawSync(Buffer.alloc(MIB), { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return Buffer.concat([...new Array<Buffer>(mib).fill(chunk), Buffer.from([0x03, 0x00])]);
}

/** CRC-32 of `mib` MiB of zeros, computed a MiB at a time. */
function zeroCrc(mib: number): number {
  const chunk = Buffer.alloc(MIB);
  let crc = 0;
  for (let i = 0; i < mib; i++) crc = zlib.crc32(chunk, crc);
  return crc >>> 0;
}

const storage = (numel: number, key = '0'): PickleStorage => ({ key, dtype: 'F32', numel });
const view = (s: PickleStorage, shape: number[], stride: number[], storageOffset = 0): PickleTensor => ({ kind: 'tensor', storage: s, storageOffset, shape, stride });

/** A checkpoint `{'w': tensor}` whose storage entry is given raw. */
function write(name: string, tensor: PickleTensor, data: Omit<RawEntry, 'name'>): string {
  const file = path.join(tmp, name);
  const root: PickleValue = new Map([['w', tensor]]);
  fs.writeFileSync(file, rawZip([
    { name: 'archive/data.pkl', ...stored(pickle(root)) },
    { name: `archive/data/${tensor.storage.key}`, ...data },
  ]));
  return file;
}

function stored(bytes: Uint8Array): Omit<RawEntry, 'name'> {
  return { data: bytes, method: 0, declared: bytes.byteLength, crc: zlib.crc32(bytes) >>> 0 };
}

/** Peak RSS growth (bytes) while `body` runs. */
function peakGrowth(body: () => void): number {
  const before = process.resourceUsage().maxRSS * 1024;
  body();
  return process.resourceUsage().maxRSS * 1024 - before;
}

/** Open the checkpoint and read its tensor 'w'; it must be refused, naming the file, within 64 MiB of peak memory. */
function refusedBounded(file: string, pattern: RegExp): void {
  const growth = peakGrowth(() => {
    assert.throws(() => readPth(file, (pth) => pth.tensor(stateDictEntries(pth.root, 'w', pth.file).get('w')!)), (error: unknown) => {
      assert.ok(error instanceof CheckpointError, String(error));
      assert.match(error.message, pattern);
      assert.ok(error.message.startsWith(file), error.message);
      return true;
    });
  });
  assert.ok(growth < 64 * MIB, `${path.basename(file)}: peak RSS grew by ${(growth / MIB).toFixed(1)} MiB`);
}

test('the zero bomb is a valid deflate stream of zeros (checked on 3 MiB)', () => {
  const out = zlib.inflateRawSync(zeroBomb(3));
  assert.equal(out.byteLength, 3 * MIB);
  assert.ok(out.every((byte) => byte === 0));
  assert.equal(zlib.crc32(out) >>> 0, zeroCrc(3));
});

test('deflate bombs: an honest 1 GiB entry in a 1 MiB file, one claiming 8 GiB, one declaring 4 KiB that inflates to 8 GiB', () => {
  // 1 GiB of zeros in about 1 MiB: more than 16 times the file and the 64 MiB floor, refused from the directory.
  const honest = write('honest_1gib.pth', view(storage(GIB / 4), [GIB / 4], [1]), { data: zeroBomb(1024), method: 8, declared: GIB, crc: zeroCrc(1024) });
  assert.ok(fs.statSync(honest).size < 2 * MIB);
  refusedBounded(honest, /the deflated entries declare 1073741824 bytes in all, more than 67108864 \(16 times the \d+-byte file, at least 67108864\): a zip bomb/);
  // 8 GiB declared through zip64: above the 2 GiB an entry may have.
  const claim = write('claim_8gib.pth', view(storage(2 * GIB), [2 * GIB], [1]), { data: zeroBomb(8), method: 8, declared: 8 * GIB, crc: 0 });
  refusedBounded(claim, /zip central directory: 'archive\/data\/0' declares 8589934592 bytes, more than the 2147483647-byte limit/);
  // The liar: its headers say 4 KiB (its storage 1024 floats agrees), its stream holds 8 GiB; inflating stops at 4 KiB + 1.
  const liar = write('liar_8gib.pth', view(storage(1024), [1024], [1]), { data: zeroBomb(8192), method: 8, declared: 4096, crc: 0 });
  refusedBounded(liar, /zip entry 'archive\/data\/0' does not inflate to its declared 4096 bytes/);
});

test('a deflated zero tensor (1000:1) within the 64 MiB floor still reads', () => {
  const file = write('zeros_ok.pth', view(storage(MIB), [1024, 1024], [1024, 1]), { data: zeroBomb(4), method: 8, declared: 4 * MIB, crc: zeroCrc(4) });
  readPth(file, (pth) => {
    const entry = pth.tensor(stateDictEntries(pth.root, 'w', pth.file).get('w')!);
    assert.deepEqual(entry.shape, [1024, 1024]);
    assert.equal(entry.data.byteLength, 4 * MIB);
    assert.ok(entry.data.every((byte) => byte === 0));
  });
});

test('tensor views: a broadcast (stride 0) of 2^31 elements, an overflowing shape, a stride past the storage, a storage larger than its entry', () => {
  const four = stored(new Uint8Array(16));
  refusedBounded(write('broadcast.pth', view(storage(4), [2 ** 31], [0]), four),
    /tensor \[2147483648\] \(stride \[0\], offset 0\) of storage 0 has more elements than its storage's 4 \(a broadcast view: save it with \.contiguous\(\)\)/);
  refusedBounded(write('broadcast_2d.pth', view(storage(4), [4, 2 ** 40], [1, 0]), four), /tensor \[4, 1099511627776\] .* has more elements than its storage's 4/);
  refusedBounded(write('overflow.pth', view(storage(4), [2 ** 40, 2 ** 40, 2 ** 40], [2 ** 52, 2 ** 40, 1]), four), /has more elements than its storage's 4/);
  refusedBounded(write('stride.pth', view(storage(4), [2, 2], [1, 5]), four), /tensor \[2, 2\] \(stride \[1, 5\], offset 0\) of storage 0 reaches element 6 of a storage of 4/);
  refusedBounded(write('offset.pth', view(storage(4), [1], [1], 4), four), /reaches element 4 of a storage of 4/);
  refusedBounded(write('numel.pth', view(storage(2 ** 40), [2 ** 40], [1]), four), /storage 0 declares 1099511627776 F32 elements \(4398046511104 bytes\), its entry archive\/data\/0 holds 16/);
  // A stride-0 view no larger than its storage is an ordinary (if odd) tensor: read and expanded.
  readPth(write('small_broadcast.pth', view(storage(4), [2, 2], [0, 1]), stored(new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer))), (pth) => {
    const entry = pth.tensor(stateDictEntries(pth.root, 'w', pth.file).get('w')!);
    assert.deepEqual([...new Float32Array(entry.data.slice().buffer)], [1, 2, 1, 2]);
  });
});

test('a pickle of 2 million one-byte EMPTY_DICTs is refused after a million values', () => {
  const bomb = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(2_000_000, 0x7d), Buffer.from('.')]);
  const file = path.join(tmp, 'dicts.pth');
  fs.writeFileSync(file, Buffer.concat(storedZipChunks([{ name: 'archive/data.pkl', data: bomb }])));
  assert.throws(() => readPth(file, () => undefined), /pickle \(byte 1000002\): makes more than 1000000 values/);
});
