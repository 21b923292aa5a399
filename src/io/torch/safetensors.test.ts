/** safetensors: reading a file laid out by the reference implementation, byte-identical writing, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointError } from '../../core/index.js';
import { readSafetensors, writeSafetensors, type SafetensorsEntry } from '../index.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/io/safetensors');
const REFERENCE = path.join(FIXTURES, 'ref.safetensors');
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as Record<
  string,
  { dtype: string; shape: number[]; values: number[] }
>;

function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function decode(entry: SafetensorsEntry): number[] {
  const bytes = Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
  const out: number[] = [];
  const size = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 }[entry.dtype];
  for (let offset = 0; offset < bytes.byteLength; offset += size) {
    switch (entry.dtype) {
      case 'F64': out.push(bytes.readDoubleLE(offset)); break;
      case 'F32': out.push(bytes.readFloatLE(offset)); break;
      case 'F16': out.push(halfToNumber(bytes.readUInt16LE(offset))); break;
      case 'I64': out.push(Number(bytes.readBigInt64LE(offset))); break;
      case 'I32': out.push(bytes.readInt32LE(offset)); break;
      case 'U8': case 'BOOL': out.push(bytes[offset]!); break;
      default: throw new Error(`test does not decode ${entry.dtype}`);
    }
  }
  return out;
}

function withTempDir(body: (dir: string) => void): () => void {
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-'));
    try {
      body(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('reads every tensor and the metadata of the reference file', () => {
  const { tensors, metadata } = readSafetensors(REFERENCE);
  assert.deepEqual(metadata, { format: 'pt' });
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    const entry = tensors.get(name)!;
    assert.equal(entry.dtype, want.dtype, name);
    assert.deepEqual(entry.shape, want.shape, name);
    assert.deepEqual(decode(entry), want.values, name);
  }
});

test('writing the same tensors reproduces the reference file byte for byte', withTempDir((dir) => {
  const { tensors, metadata } = readSafetensors(REFERENCE);
  const file = path.join(dir, 'out.safetensors');
  // Insertion order must not matter: reverse it.
  writeSafetensors(file, new Map([...tensors.entries()].reverse()), metadata);
  assert.ok(fs.readFileSync(file).equals(fs.readFileSync(REFERENCE)));
  const asRecord = Object.fromEntries(tensors);
  writeSafetensors(file, asRecord, metadata);
  assert.ok(fs.readFileSync(file).equals(fs.readFileSync(REFERENCE)));
  const headerLength = Number(fs.readFileSync(file).readBigUInt64LE(0));
  assert.equal(headerLength % 8, 0);
}));

test('empty file, no metadata and zero-sized tensors round trip', withTempDir((dir) => {
  const file = path.join(dir, 'x.safetensors');
  writeSafetensors(file, {});
  assert.equal(readSafetensors(file).tensors.size, 0);
  writeSafetensors(file, { empty: { dtype: 'F32', shape: [0, 3], data: new Uint8Array(0) }, one: { dtype: 'BF16', shape: [1], data: new Uint8Array([0x80, 0x3f]) } });
  const back = readSafetensors(file);
  assert.deepEqual(back.metadata, {});
  assert.deepEqual(back.tensors.get('empty')!.shape, [0, 3]);
  assert.deepEqual([...back.tensors.get('one')!.data], [0x80, 0x3f]);
}));

function headerFile(dir: string, header: unknown, dataBytes: number, headerLengthOverride?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(headerLengthOverride ?? BigInt(json.byteLength));
  const file = path.join(dir, 'bad.safetensors');
  fs.writeFileSync(file, Buffer.concat([length, json, Buffer.alloc(dataBytes)]));
  return file;
}

test('refuses malformed files with a CheckpointError naming the file', withTempDir((dir) => {
  const t = (dtype: string, shape: number[], offsets: [number, number]) => ({ dtype, shape, data_offsets: offsets });
  const cases: [string, () => string, RegExp][] = [
    ['truncated', () => { const f = path.join(dir, 'bad.safetensors'); fs.writeFileSync(f, Buffer.alloc(5)); return f; }, /truncated \(5 bytes/],
    ['header longer than the file', () => headerFile(dir, { a: t('F32', [1], [0, 4]) }, 4, 1000n), /header length 1000 is larger than the file/],
    ['bad JSON', () => headerFile(dir, '{"a": [1, 2', 0), /header is not valid JSON/],
    ['offsets outside the data', () => headerFile(dir, { a: t('F32', [2], [0, 8]) }, 4), /lie outside the 4 data bytes/],
    ['overlapping', () => headerFile(dir, { a: t('F32', [2], [0, 8]), b: t('F32', [1], [4, 8]) }, 8), /overlaps/],
    ['not covering', () => headerFile(dir, { a: t('F32', [1], [0, 4]) }, 8), /4 data bytes are not covered/],
    ['gap', () => headerFile(dir, { a: t('F32', [1], [4, 8]) }, 8), /gap in the data before tensor 'a'/],
    ['dtype/shape vs bytes', () => headerFile(dir, { a: t('F32', [3], [0, 8]) }, 8), /needs 12 bytes, data_offsets span 8/],
    ['a shape whose product overflows', () => headerFile(dir, { a: t('F32', [2 ** 40, 2 ** 40, 2 ** 40], [0, 8]) }, 8), /tensor 'a' \(F32 \[1099511627776, 1099511627776, 1099511627776\]\) has more elements than the file has data bytes \(8\)/],
    ['a header length of 2^63', () => headerFile(dir, { a: t('F32', [1], [0, 4]) }, 4, 2n ** 63n), /header length 9223372036854775808 exceeds the 100 MB limit/],
    ['unknown dtype', () => headerFile(dir, { a: t('C64', [1], [0, 8]) }, 8), /unsupported dtype "C64"/],
    ['metadata not strings', () => headerFile(dir, { __metadata__: { epoch: 3 } }, 0), /__metadata__.epoch is not a string/],
    ['missing file', () => path.join(dir, 'nope.safetensors'), /cannot read/],
  ];
  for (const [what, make, message] of cases) {
    const file = make();
    assert.throws(() => readSafetensors(file), (error: unknown) => {
      assert.ok(error instanceof CheckpointError, `${what}: ${String(error)}`);
      assert.equal(error.file, file);
      assert.match(error.message, message, what);
      return true;
    });
  }
  assert.throws(() => writeSafetensors(path.join(dir, 'w.safetensors'), { a: { dtype: 'F32', shape: [2], data: new Uint8Array(4) } }), /needs 8 bytes, got 4/);
  assert.ok(!fs.existsSync(path.join(dir, 'w.safetensors')));
}));
