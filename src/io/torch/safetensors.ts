/**
 * safetensors files (the format of huggingface/safetensors): an unsigned 64-bit little-endian header
 * length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {..}}`,
 * then the tensor bytes. Reading checks every rule the reference implementation checks (the header
 * at most 100 MB and inside the file, every tensor's bytes inside the data, dtype x shape equal to
 * its byte range, the tensors tiling the data), so a tensor never costs more than the file's own
 * bytes, which are read once and viewed, never copied. Writing pads
 * the header with spaces to a multiple of 8 bytes and orders tensors by alignment, then name.
 */
import * as fs from 'node:fs';
import { atomicWriteFileSync, CheckpointError } from '../../core/index.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Raw little-endian bytes (a view into the file's buffer when read). */
  data: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Position in the reference implementation's `Dtype` enum, which orders tensors in a written file. */
const DTYPE_RANK: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 0, U8: 1, I8: 2, I16: 3, F16: 5, BF16: 6, I32: 7, F32: 9, F64: 10, I64: 11,
};

/** The reference implementation refuses headers above 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, n) => product * n, 1);
}

/** Read a .safetensors file; throws CheckpointError naming the file and what is wrong. */
export function readSafetensors(file: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new CheckpointError(`cannot read: ${(error as Error).message}`, { file, cause: error });
  }
  const fail = (message: string, cause?: unknown): never => {
    throw new CheckpointError(`not a valid safetensors file: ${message}`, { file, cause });
  };
  if (bytes.byteLength < 8) fail(`truncated (${bytes.byteLength} bytes, the header length alone takes 8)`);
  const headerLength = bytes.readBigUInt64LE(0);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds the 100 MB limit`);
  if (8n + headerLength > BigInt(bytes.byteLength)) {
    fail(`header length ${headerLength} is larger than the file (${bytes.byteLength} bytes)`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(bytes.subarray(8, dataStart).toString('utf8'));
  } catch (error) {
    fail(`header is not valid JSON (${(error as Error).message})`, error);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataLength = bytes.byteLength - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('__metadata__ is not an object');
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        if (typeof item !== 'string') fail(`__metadata__.${key} is not a string`);
        metadata[key] = item as string;
      }
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof entry !== 'object' || entry === null) fail(`tensor '${name}' is not an object`);
    const dtype = entry!.dtype;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
      fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    const shape = entry!.shape;
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) fail(`tensor '${name}' has an invalid shape`);
    const offsets = entry!.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
      fail(`tensor '${name}' has invalid data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLength) {
      fail(`tensor '${name}' data_offsets [${begin}, ${end}] lie outside the ${dataLength} data bytes`);
    }
    // A count above the data's bytes is refused before it is multiplied (no product past 2^53).
    const count = elementCount(shape as number[]);
    if (count > dataLength) fail(`tensor '${name}' (${dtype} [${(shape as number[]).join(', ')}]) has more elements than the file has data bytes (${dataLength})`);
    const expected = count * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end - begin !== expected) {
      fail(`tensor '${name}' (${dtype} [${(shape as number[]).join(', ')}]) needs ${expected} bytes, data_offsets span ${end - begin}`);
    }
    spans.push({ name, begin, end });
    tensors.set(name, {
      dtype: dtype as SafetensorsDtype,
      shape: shape as number[],
      data: new Uint8Array(bytes.buffer, bytes.byteOffset + dataStart + begin, end - begin),
    });
  }
  // The tensors must tile the data exactly: no overlap, no gap, nothing left over.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  for (const span of spans) {
    if (span.begin !== position) {
      fail(span.begin < position ? `tensor '${span.name}' overlaps the tensor before it` : `gap in the data before tensor '${span.name}'`);
    }
    position = span.end;
  }
  if (position !== dataLength) fail(`${dataLength - position} data bytes are not covered by any tensor`);
  return { tensors, metadata };
}

/** Write tensors (and string metadata) as a .safetensors file, atomically. */
export function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, SafetensorsEntry> | Record<string, SafetensorsEntry>,
  metadata?: Record<string, string>,
): void {
  const entries: [string, SafetensorsEntry][] =
    tensors instanceof Map
      ? [...(tensors as ReadonlyMap<string, SafetensorsEntry>).entries()]
      : Object.entries(tensors as Record<string, SafetensorsEntry>);
  for (const [name, entry] of entries) {
    if (name === '__metadata__') throw new CheckpointError(`'__metadata__' cannot name a tensor`, { file });
    if (!(entry.dtype in DTYPE_BYTES)) throw new CheckpointError(`tensor '${name}' has unsupported dtype '${entry.dtype}'`, { file });
    if (!entry.shape.every(isNonNegativeInteger)) throw new CheckpointError(`tensor '${name}' has an invalid shape`, { file });
    const expected = elementCount(entry.shape) * DTYPE_BYTES[entry.dtype];
    if (entry.data.byteLength !== expected) {
      throw new CheckpointError(
        `tensor '${name}' (${entry.dtype} [${entry.shape.join(', ')}]) needs ${expected} bytes, got ${entry.data.byteLength}`,
        { file },
      );
    }
  }
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (typeof value !== 'string') throw new CheckpointError(`metadata '${key}' is not a string`, { file });
  }
  // As the reference implementation: dtypes in descending enum order (wider types first, which keeps
  // every tensor aligned to its element size), then by name.
  const ordered = entries.sort(
    ([nameA, a], [nameB, b]) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || (nameA < nameB ? -1 : nameA > nameB ? 1 : 0),
  );
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, entry] of ordered) {
    header[name] = { dtype: entry.dtype, shape: entry.shape, data_offsets: [offset, offset + entry.data.byteLength] };
    offset += entry.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(jsonBytes.byteLength));
  atomicWriteFileSync(file, [length, jsonBytes, ...ordered.map(([, entry]) => entry.data)]);
}
