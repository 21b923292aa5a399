/**
 * multipart/related (RFC 2046 5.1, RFC 2387) as DICOMweb uses it (PS3.18 8.6.1.2): a streaming
 * parser for WADO-RS replies and a streaming body for STOW-RS requests. Neither ever holds more than
 * one chunk of the network (or of a file) plus a delimiter's length: a series of 1 GB goes through
 * in a few MiB of memory. The parser reports each part as events (its headers, its bytes chunk by
 * chunk, its end) and refuses, with a message saying what is wrong, a reply that ends before its
 * closing delimiter, a part whose headers do not end, or one longer than the caller allows.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';

/** One event of a multipart body, in order: `headers`, then `data` zero or more times, then `end`. */
export type MultipartEvent =
  | { kind: 'headers'; headers: ReadonlyMap<string, string> }
  | { kind: 'data'; bytes: Uint8Array }
  | { kind: 'end' };

/** Why a multipart body is malformed (the client turns it into an error naming the request). */
export class MultipartError extends Error {}

/** Longest header block of one part (DICOMweb parts carry two or three short headers). */
const MAX_PART_HEADER_BYTES = 16 * 1024;

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/** The parameters of a Content-Type value: `multipart/related; type="application/dicom"; boundary=x`. */
export function mediaTypeOf(contentType: string): { type: string; parameters: Map<string, string> } {
  const [type = '', ...rest] = contentType.split(';');
  const parameters = new Map<string, string>();
  for (const item of rest) {
    const equals = item.indexOf('=');
    if (equals < 0) continue;
    const name = item.slice(0, equals).trim().toLowerCase();
    let value = item.slice(equals + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    parameters.set(name, value);
  }
  return { type: type.trim().toLowerCase(), parameters };
}

type State = 'preamble' | 'delimiter' | 'headers' | 'body' | 'done';

/**
 * A push parser: feed it the body's chunks in order (`push`), then `finish`. Each call returns the
 * events the bytes completed. Boundaries split across chunks are found: the unconsumed tail kept
 * between calls is at most the delimiter's length (or one part's header block).
 */
export class MultipartParser {
  private readonly delimiter: Buffer;
  private pending: Buffer = Buffer.from(CRLF);
  private state: State = 'preamble';
  private partCount = 0;

  constructor(boundary: string) {
    if (!/^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$/.test(boundary) || boundary.endsWith(' ')) {
      throw new MultipartError(`the multipart boundary ${JSON.stringify(boundary.slice(0, 80))} is not one RFC 2046 allows`);
    }
    // The first delimiter may open the body without a CRLF before it: the pending bytes start with one.
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  /** How many parts have begun so far. */
  get parts(): number {
    return this.partCount;
  }

  push(chunk: Uint8Array): MultipartEvent[] {
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    const events: MultipartEvent[] = [];
    for (;;) {
      const progressed = this.step(events);
      if (!progressed) break;
    }
    return events;
  }

  /** The body ended: throws unless the closing delimiter was seen. */
  finish(): void {
    if (this.state === 'done') return;
    const where = this.state === 'body' || this.state === 'headers' ? ` in part ${this.partCount}` : '';
    throw new MultipartError(`the multipart reply ended before its closing boundary${where}`);
  }

  /** One transition; false when more bytes are needed. */
  private step(events: MultipartEvent[]): boolean {
    switch (this.state) {
      case 'preamble': {
        const at = this.pending.indexOf(this.delimiter);
        if (at < 0) {
          this.keepTail();
          return false;
        }
        this.pending = this.pending.subarray(at + this.delimiter.length);
        this.state = 'delimiter';
        return true;
      }
      case 'delimiter': {
        // After a delimiter: `--` closes the body; else optional linear white space, then CRLF.
        if (this.pending.length < 2) return false;
        if (this.pending[0] === 0x2d && this.pending[1] === 0x2d) {
          this.state = 'done';
          this.pending = Buffer.alloc(0);
          return false;
        }
        const lineEnd = this.pending.indexOf(CRLF);
        if (lineEnd < 0) {
          if (this.pending.length > 256) throw new MultipartError('a multipart boundary line does not end');
          return false;
        }
        if (!/^[ \t]*$/.test(this.pending.subarray(0, lineEnd).toString('latin1'))) throw new MultipartError('a multipart boundary is followed by other text on its line');
        this.pending = this.pending.subarray(lineEnd + 2);
        this.state = 'headers';
        this.partCount++;
        return true;
      }
      case 'headers': {
        // A part without headers starts with the empty line at once.
        const end = this.pending.subarray(0, 2).equals(CRLF) ? -2 : this.pending.indexOf(HEADER_END);
        if (end === -1) {
          if (this.pending.length > MAX_PART_HEADER_BYTES) throw new MultipartError(`the headers of part ${this.partCount} go on past ${MAX_PART_HEADER_BYTES} bytes`);
          return false;
        }
        const headers = new Map<string, string>();
        const block = end === -2 ? '' : this.pending.subarray(0, end).toString('latin1');
        for (const line of block.split('\r\n')) {
          if (line === '') continue;
          const colon = line.indexOf(':');
          if (colon <= 0) throw new MultipartError(`part ${this.partCount} has a header line without a name: ${JSON.stringify(line.slice(0, 60))}`);
          headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
        this.pending = this.pending.subarray(end === -2 ? 2 : end + 4);
        this.state = 'body';
        events.push({ kind: 'headers', headers });
        return true;
      }
      case 'body': {
        const at = this.pending.indexOf(this.delimiter);
        if (at < 0) {
          // All but a possible delimiter's beginning at the end is the part's.
          const safe = this.pending.length - (this.delimiter.length - 1);
          if (safe > 0) {
            events.push({ kind: 'data', bytes: this.pending.subarray(0, safe) });
            this.pending = Buffer.from(this.pending.subarray(safe));
          }
          return false;
        }
        if (at > 0) events.push({ kind: 'data', bytes: this.pending.subarray(0, at) });
        events.push({ kind: 'end' });
        this.pending = this.pending.subarray(at + this.delimiter.length);
        this.state = 'delimiter';
        return true;
      }
      case 'done':
        // The epilogue is ignored.
        this.pending = Buffer.alloc(0);
        return false;
    }
  }

  private keepTail(): void {
    if (this.pending.length >= this.delimiter.length) this.pending = Buffer.from(this.pending.subarray(this.pending.length - (this.delimiter.length - 1)));
  }
}

/** A boundary that no DICOM file we send is likely to hold (random, 32 hex digits). */
export function newBoundary(): string {
  return `lesionseg-${randomBytes(16).toString('hex')}`;
}

/** The bytes before each part and after the last one, for a body of `application/dicom` parts. */
function partHead(boundary: string, first: boolean): Buffer {
  return Buffer.from(`${first ? '' : '\r\n'}--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
}

function closing(boundary: string): Buffer {
  return Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
}

/** The exact length of the STOW body `multipartFileStream` makes of files of these sizes. */
export function multipartLength(boundary: string, fileSizes: readonly number[]): number {
  return fileSizes.reduce((sum, size, i) => sum + partHead(boundary, i === 0).length + size, 0) + closing(boundary).length;
}

/**
 * A multipart/related body of Part 10 files, read from disk 1 MiB at a time as the request is sent.
 * A file whose size changed since `sizes` were taken fails the stream (the Content-Length would lie).
 * `onChunk` is called as each chunk is taken (the idle timer's touch: a long upload is not idle).
 */
export function multipartFileStream(boundary: string, files: readonly string[], sizes: readonly number[], onChunk: () => void = () => undefined): ReadableStream<Uint8Array> {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < files.length; i++) {
      yield partHead(boundary, i === 0);
      const handle = await fs.promises.open(files[i]!, 'r');
      try {
        let sent = 0;
        for (;;) {
          const buffer = Buffer.alloc(1024 * 1024);
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, sent);
          if (bytesRead === 0) break;
          sent += bytesRead;
          if (sent > sizes[i]!) break;
          yield buffer.subarray(0, bytesRead);
        }
        if (sent !== sizes[i]) throw new Error(`${files[i]} changed size while it was sent (${sizes[i]} bytes before, ${sent} now)`);
      } finally {
        await handle.close();
      }
    }
    yield closing(boundary);
  }
  const iterator = chunks();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      onChunk();
      if (next.done === true) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await iterator.return(undefined);
    },
  });
}
