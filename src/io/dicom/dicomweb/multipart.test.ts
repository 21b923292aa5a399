/**
 * The multipart/related parser and the STOW-RS body: a hand-written body (RFC 2046 5.1.1's grammar:
 * preamble, delimiters with padding, a part without headers, data holding a delimiter's beginning,
 * epilogue) parses to the same parts whichever way it is cut into chunks, every byte split point
 * included; data leaves the parser as it comes (no event larger than the chunk that brought it plus a
 * delimiter), and the body built from files has the length announced and parses back into the files.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mediaTypeOf, MultipartError, MultipartParser, multipartFileStream, multipartLength, type MultipartEvent } from './multipart.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicomweb-multipart-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Part {
  headers: Record<string, string>;
  body: string;
}

function collect(events: readonly MultipartEvent[], parts: Part[]): void {
  for (const event of events) {
    if (event.kind === 'headers') parts.push({ headers: Object.fromEntries(event.headers), body: '' });
    else if (event.kind === 'data') parts[parts.length - 1]!.body += Buffer.from(event.bytes).toString('latin1');
  }
}

function parse(body: Buffer, boundary: string, cuts: readonly number[]): Part[] {
  const parser = new MultipartParser(boundary);
  const parts: Part[] = [];
  let start = 0;
  for (const cut of [...cuts, body.length]) {
    collect(parser.push(body.subarray(start, cut)), parts);
    start = cut;
  }
  parser.finish();
  return parts;
}

const BODY = Buffer.from(
  'This is the preamble, ignored.\r\n' +
    '--b0und4ry \t\r\n' +
    'Content-Type: application/dicom\r\nContent-Length: 31\r\n\r\n' +
    'DICM\r\n--b0und4r\r\n-- not the end\r\n' +
    '--b0und4ry\r\n' +
    '\r\n' +
    'no headers here' +
    '\r\n--b0und4ry--\r\n' +
    'epilogue, ignored; --b0und4ry\r\n',
  'latin1',
);
const EXPECTED: Part[] = [
  { headers: { 'content-type': 'application/dicom', 'content-length': '31' }, body: 'DICM\r\n--b0und4r\r\n-- not the end' },
  { headers: {}, body: 'no headers here' },
];

test('one chunk, one byte at a time, and every split into two chunks give the same two parts', () => {
  assert.deepEqual(parse(BODY, 'b0und4ry', []), EXPECTED);
  assert.deepEqual(parse(BODY, 'b0und4ry', Array.from({ length: BODY.length - 1 }, (_, i) => i + 1)), EXPECTED);
  for (let cut = 0; cut <= BODY.length; cut++) assert.deepEqual(parse(BODY, 'b0und4ry', [cut]), EXPECTED, `cut at byte ${cut}`);
  // A body that opens with its first delimiter (no preamble, no CRLF before it).
  assert.deepEqual(parse(Buffer.from('--x\r\nA: 1\r\n\r\nabc\r\n--x--'), 'x', [3]), [{ headers: { a: '1' }, body: 'abc' }]);
});

test('data streams out as it comes: no event larger than its chunk plus a delimiter', () => {
  const boundary = 'stream-boundary';
  const chunk = Buffer.alloc(64 * 1024, 0x2d); // '-' everywhere, the worst case for a delimiter search
  const parser = new MultipartParser(boundary);
  let largest = 0;
  let total = 0;
  const count = (events: MultipartEvent[]): void => {
    for (const event of events) if (event.kind === 'data') (largest = Math.max(largest, event.bytes.byteLength)), (total += event.bytes.byteLength);
  };
  count(parser.push(Buffer.from(`--${boundary}\r\n\r\n`)));
  for (let i = 0; i < 256; i++) count(parser.push(chunk));
  count(parser.push(Buffer.from(`\r\n--${boundary}--`)));
  parser.finish();
  assert.equal(total, 256 * chunk.length, 'every byte of the 16 MiB part');
  assert.ok(largest <= chunk.length + boundary.length + 4, `largest data event ${largest} bytes`);
});

test('malformed bodies are refused: no closing delimiter, endless headers, text after a delimiter, a bad boundary', () => {
  const refuses = (body: string, boundary: string, pattern: RegExp): void => {
    assert.throws(() => parse(Buffer.from(body), boundary, []), (error: unknown) => error instanceof MultipartError && pattern.test(error.message));
  };
  refuses('--x\r\n\r\nabc', 'x', /^the multipart reply ended before its closing boundary in part 1$/);
  refuses('no delimiter at all', 'x', /^the multipart reply ended before its closing boundary$/);
  refuses(`--x\r\n${'A: b\r\n'.repeat(4000)}`, 'x', /the headers of part 1 go on past 16384 bytes/);
  refuses('--x junk\r\n\r\n', 'x', /followed by other text on its line/);
  refuses('--x\r\nno colon\r\n\r\n', 'x', /part 1 has a header line without a name: "no colon"/);
  refuses('', 'a"b', /the multipart boundary "a\\"b" is not one RFC 2046 allows/);
  refuses('', 'x'.repeat(71), /is not one RFC 2046 allows/);
});

test('Content-Type parameters: quoted, unquoted, case of the names', () => {
  const media = mediaTypeOf('Multipart/Related; Type="application/dicom"; BOUNDARY="a b:c"; transfer-syntax=*');
  assert.equal(media.type, 'multipart/related');
  assert.equal(media.parameters.get('type'), 'application/dicom');
  assert.equal(media.parameters.get('boundary'), 'a b:c');
  assert.equal(media.parameters.get('transfer-syntax'), '*');
});

test('the STOW-RS body of three files has the length announced and parses back into the files', async () => {
  const contents = [Buffer.alloc(0), Buffer.from('\r\n--lesionseg-\r\n'), Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a)];
  const files = contents.map((bytes, i) => {
    const file = path.join(tmp, `file-${i}.dcm`);
    fs.writeFileSync(file, bytes);
    return file;
  });
  const boundary = 'lesionseg-0123456789abcdef';
  const sizes = contents.map((bytes) => bytes.length);
  const chunks: Uint8Array[] = [];
  for await (const chunk of multipartFileStream(boundary, files, sizes) as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  assert.equal(body.length, multipartLength(boundary, sizes));
  const parts = parse(body, boundary, [1000, 1024 * 1024]);
  assert.deepEqual(parts.map((part) => part.headers), contents.map(() => ({ 'content-type': 'application/dicom' })));
  assert.deepEqual(parts.map((part) => Buffer.from(part.body, 'latin1').equals(contents[parts.indexOf(part)]!)), [true, true, true]);
  // A file that grew since its size was taken fails the stream rather than send a body of another length.
  fs.appendFileSync(files[1]!, 'more');
  await assert.rejects(
    (async () => {
      for await (const _ of multipartFileStream(boundary, files, sizes) as unknown as AsyncIterable<Uint8Array>);
    })(),
    /file-1\.dcm changed size while it was sent \(16 bytes before, 20 now\)/,
  );
});
