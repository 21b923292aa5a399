/** The PNG encoder against Python zlib's CRC-32 values (test/fixtures/report/make_report_fixtures.py) and a decode with node:zlib. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { deflateSync, inflateSync } from 'node:zlib';
import { crc32, decodePng, encodePng, pngDataUri } from './png.js';

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

test('decodePng reads back encodePng, and RGBA rows under each of the five filters', () => {
  const decoded = decodePng(encodePng(reference.width, reference.height, Uint8Array.from(reference.rgb)));
  assert.equal(decoded.width, reference.width);
  for (let i = 0; i < reference.width * reference.height; i++) assert.deepEqual([...decoded.rgba.subarray(4 * i, 4 * i + 4)], [...reference.rgb.slice(3 * i, 3 * i + 3), 255]);
  // A 3x5 RGBA image, row y filtered with filter y (None, Sub, Up, Average, Paeth), built by hand.
  const width = 3;
  const height = 5;
  const pixels = Uint8Array.from({ length: width * height * 4 }, (_, i) => (i * 37 + 11) % 256);
  const stride = width * 4;
  const raw = Buffer.alloc((stride + 1) * height);
  const at = (x: number, y: number) => (x < 0 || y < 0 ? 0 : pixels[y * stride + x]!);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = y;
    for (let x = 0; x < stride; x++) {
      const a = at(x - 4, y);
      const b = at(x, y - 1);
      const c = at(x - 4, y - 1);
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predicted = [0, a, b, (a + b) >> 1, paeth][y]!;
      raw[y * (stride + 1) + 1 + x] = (pixels[y * stride + x]! - predicted) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const chunkOf = (type: string, data: Buffer) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunkOf('IHDR', ihdr), chunkOf('IDAT', deflateSync(raw)), chunkOf('IEND', Buffer.alloc(0))]);
  assert.deepEqual([...decodePng(png).rgba], [...pixels]);
  png[png.length - 20] = png[png.length - 20]! ^ 1; // inside IDAT: the CRC no longer matches
  assert.throws(() => decodePng(png), /bad CRC/);
});
