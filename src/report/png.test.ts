/** The PNG encoder against Python zlib's CRC-32 values (test/fixtures/report/make_report_fixtures.py) and a decode with node:zlib. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { inflateSync } from 'node:zlib';
import { crc32, encodePng, pngDataUri } from './png.js';

const reference = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/report/png_reference.json', import.meta.url), 'utf8')) as {
  width: number;
  height: number;
  rgb: number[];
  ihdr_crc: number;
  raw_crc: number;
  raw_length: number;
  check_crc_123456789: number;
};

interface Chunk {
  type: string;
  data: Buffer;
  crc: number;
}

function chunks(png: Buffer): Chunk[] {
  const out: Chunk[] = [];
  let at = 8;
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    out.push({ type: png.toString('ascii', at + 4, at + 8), data: png.subarray(at + 8, at + 8 + length), crc: png.readUInt32BE(at + 8 + length) });
    at += 12 + length;
  }
  return out;
}

test('crc32 gives the standard check value and matches zlib', () => {
  assert.equal(crc32(Buffer.from('123456789')), reference.check_crc_123456789);
  assert.equal(reference.check_crc_123456789, 0xcbf43926);
});

test('encodePng writes signature, IHDR, IDAT, IEND with correct CRCs and the filtered rows', () => {
  const png = encodePng(reference.width, reference.height, Uint8Array.from(reference.rgb));
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const list = chunks(png);
  assert.deepEqual(list.map((c) => c.type), ['IHDR', 'IDAT', 'IEND']);
  const [ihdr, idat, iend] = list as [Chunk, Chunk, Chunk];
  assert.equal(ihdr.data.readUInt32BE(0), reference.width);
  assert.equal(ihdr.data.readUInt32BE(4), reference.height);
  assert.deepEqual([...ihdr.data.subarray(8)], [8, 2, 0, 0, 0]);
  assert.equal(ihdr.crc, reference.ihdr_crc);
  for (const c of list) assert.equal(c.crc, crc32(Buffer.concat([Buffer.from(c.type, 'ascii'), c.data])), `${c.type} CRC`);
  assert.equal(iend.data.length, 0);
  const raw = inflateSync(idat.data);
  assert.equal(raw.length, reference.raw_length);
  assert.equal(crc32(raw), reference.raw_crc);
  const stride = reference.width * 3;
  for (let y = 0; y < reference.height; y++) {
    assert.equal(raw[y * (stride + 1)], 0, 'filter byte 0');
    assert.deepEqual([...raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))], reference.rgb.slice(y * stride, (y + 1) * stride));
  }
  assert.match(pngDataUri(png), /^data:image\/png;base64,iVBORw0KGgo/);
});

test('encodePng refuses a wrong buffer size', () => {
  assert.throws(() => encodePng(2, 2, new Uint8Array(11)), /expected 12 bytes/);
  assert.throws(() => encodePng(0, 2, new Uint8Array(0)), /bad size/);
});
