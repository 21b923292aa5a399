/**
 * A WADO-RS multipart reply written into a folder as it arrives: each part goes to a temporary file
 * (registered, so Ctrl-C removes it), counted byte by byte against its Content-Length and against
 * the largest instance allowed (refused while streaming, never buffered), then checked as a DICOM
 * Part 10 file our header reader accepts (preamble and `DICM`, a header read up to PixelData,
 * PixelData as long as it says), of the series asked for, and renamed to <SOPInstanceUID>.dcm. A
 * reply that fails anywhere leaves no file of this reply behind: the caller gets an error, and
 * the files it added are removed with the temporary one (a file that was there before, the same
 * instance from an earlier retrieve, is replaced whole by the rename and kept).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError, LesionsegError, registerTemporaryPath, unregisterTemporaryPath } from '../../../core/index.js';
import { isDicomFile, readDicomHeader } from '../header.js';
import { isUid } from './dicom-json.js';
import { mediaTypeOf, MultipartError, MultipartParser, type MultipartEvent } from './multipart.js';
import { TransientError } from './http.js';

export interface ReceiveRequest {
  /** `server: retrieving series X of study Y`, the start of every message. */
  readonly what: string;
  readonly studyUid: string;
  readonly seriesUid: string;
  readonly destFolder: string;
  readonly maxInstanceBytes: number;
  /** Called on each chunk read (the idle timer's touch). */
  readonly onBytes: () => void;
}

/** One part being written. */
interface OpenPart {
  readonly temporary: string;
  readonly handle: fs.promises.FileHandle;
  readonly declaredBytes: number | null;
  bytes: number;
}

function replyError(request: ReceiveRequest, message: string, cause?: unknown): InputError {
  return new InputError(`${request.what}: ${message}`, { code: 'dicomweb-reply', cause });
}

/** The boundary of a WADO-RS reply's Content-Type, or an error saying the reply is not multipart/related. */
export function boundaryOf(request: ReceiveRequest, contentType: string | null): string {
  const media = mediaTypeOf(contentType ?? '');
  const boundary = media.parameters.get('boundary');
  if (media.type !== 'multipart/related' || boundary === undefined) {
    throw replyError(request, `the reply is not multipart/related with a boundary (Content-Type ${JSON.stringify((contentType ?? 'none').slice(0, 100))})`);
  }
  return boundary;
}

/** Check a written instance and give it its final name; returns that name and whether it is new (not a replaced copy). */
function finishInstance(request: ReceiveRequest, part: OpenPart, partNumber: number, seen: Set<string>): { file: string; created: boolean } {
  const label = `instance ${partNumber} of the reply`;
  if (part.declaredBytes !== null && part.bytes !== part.declaredBytes) {
    throw replyError(request, `${label} is ${part.bytes} bytes, its Content-Length says ${part.declaredBytes} (truncated)`);
  }
  if (!isDicomFile(part.temporary)) throw replyError(request, `${label} (${part.bytes} bytes) is not a DICOM Part 10 file (no 'DICM' after the 128-byte preamble)`);
  let header;
  try {
    header = readDicomHeader(part.temporary);
  } catch (error) {
    const message = error instanceof Error ? error.message.replace(`${part.temporary}: `, '') : String(error);
    throw replyError(request, `${label} is not a DICOM file lesionseg reads: ${message}`, error);
  }
  if (header.pixelData !== null && header.pixelData.length !== null && header.pixelData.offset + header.pixelData.length > header.fileBytes) {
    throw replyError(request, `${label} is truncated: its PixelData says ${header.pixelData.length} bytes, ${header.fileBytes - header.pixelData.offset} follow`);
  }
  const sop = header.text.SOPInstanceUID;
  if (sop === undefined || !isUid(sop)) throw replyError(request, `${label} has no valid SOPInstanceUID (${JSON.stringify(sop ?? 'none')})`);
  if (header.text.SeriesInstanceUID !== request.seriesUid) {
    throw replyError(request, `${label} (${sop}) belongs to series ${header.text.SeriesInstanceUID ?? 'none'}, not the one asked for`);
  }
  if (seen.has(sop)) throw replyError(request, `${label} repeats the SOPInstanceUID ${sop}`);
  seen.add(sop);
  const target = path.join(request.destFolder, `${sop}.dcm`);
  const existed = fs.existsSync(target);
  fs.renameSync(part.temporary, target);
  unregisterTemporaryPath(part.temporary);
  return { file: target, created: !existed };
}

async function openPart(request: ReceiveRequest, headers: ReadonlyMap<string, string>, partNumber: number): Promise<OpenPart> {
  const label = `instance ${partNumber} of the reply`;
  const type = headers.get('content-type');
  if (type !== undefined && mediaTypeOf(type).type !== 'application/dicom') throw replyError(request, `${label} is ${JSON.stringify(type.slice(0, 100))}, not application/dicom`);
  const lengthText = headers.get('content-length');
  let declaredBytes: number | null = null;
  if (lengthText !== undefined) {
    if (!/^\d{1,15}$/.test(lengthText)) throw replyError(request, `${label} has the Content-Length ${JSON.stringify(lengthText.slice(0, 40))}, not a number`);
    declaredBytes = Number(lengthText);
    if (declaredBytes > request.maxInstanceBytes) {
      throw new InputError(`${request.what}: ${label} is ${declaredBytes} bytes, more than the ${request.maxInstanceBytes} allowed for one instance; refused before reading it`, { code: 'too-large' });
    }
  }
  const temporary = path.join(request.destFolder, `.lesionseg-instance-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  registerTemporaryPath(temporary);
  const handle = await fs.promises.open(temporary, 'w');
  return { temporary, handle, declaredBytes, bytes: 0 };
}

/** Run a write of the part's file; a failure (a full disk, a quota) becomes 'write-failed' naming the folder. */
async function writing(request: ReceiveRequest, partNumber: number, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOSPC' ? 'no space left on the device' : code === 'EDQUOT' ? 'disk quota exceeded' : (code ?? (error as Error).message);
    throw new LesionsegError('write-failed', `${request.destFolder}: cannot write instance ${partNumber} of the series (${why})`, { cause: error });
  }
}

async function writeAll(handle: fs.promises.FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.byteLength - offset);
    if (!(bytesWritten > 0)) throw new Error(`short write: ${offset} of ${bytes.byteLength} bytes`);
    offset += bytesWritten;
  }
}

/**
 * Write every part of `body` into `request.destFolder`; returns the files, in the reply's order. A
 * reply cut off before its closing boundary (the connection closed, the stream ended) is a
 * TransientError (worth another try); anything else wrong is an InputError. Either way, every file
 * of this reply is removed before the error leaves.
 */
export async function receiveInstances(request: ReceiveRequest, body: ReadableStream<Uint8Array>, boundary: string): Promise<string[]> {
  const parser = new MultipartParser(boundary);
  const written: string[] = [];
  /** The files this reply added (not the ones it replaced with the same instance): removed on failure. */
  const created: string[] = [];
  const seen = new Set<string>();
  let part: OpenPart | null = null;
  // Counted here, not read from the parser: one chunk may hold several parts, all parsed before they are handled.
  let partNumber = 0;
  const reader = body.getReader();
  let ended = false;
  const handle = async (event: MultipartEvent): Promise<void> => {
    if (event.kind === 'headers') {
      partNumber++;
      part = await openPart(request, event.headers, partNumber);
    } else if (event.kind === 'data') {
      const open = part!;
      open.bytes += event.bytes.byteLength;
      if (open.bytes > request.maxInstanceBytes) {
        throw new InputError(`${request.what}: instance ${partNumber} of the reply goes on past the ${request.maxInstanceBytes} bytes allowed for one instance; refused`, { code: 'too-large' });
      }
      if (open.declaredBytes !== null && open.bytes > open.declaredBytes) {
        throw replyError(request, `instance ${partNumber} of the reply goes on past its Content-Length of ${open.declaredBytes} bytes`);
      }
      await writing(request, partNumber, () => writeAll(open.handle, event.bytes));
    } else {
      // `part` stays set until the file has its name, so that a refusal below removes the temporary file.
      const open = part!;
      await writing(request, partNumber, async () => {
        await open.handle.sync();
        await open.handle.close();
      });
      const finished = finishInstance(request, open, partNumber, seen);
      written.push(finished.file);
      if (finished.created) created.push(finished.file);
      part = null;
    }
  };
  try {
    for (;;) {
      const next = await reader.read();
      request.onBytes();
      if (next.done) {
        ended = true;
        break;
      }
      for (const event of parser.push(next.value)) await handle(event);
    }
    parser.finish();
    if (written.length === 0) throw new InputError(`${request.what}: the server sent no instance of it`, { code: 'dicomweb-not-found' });
    return written;
  } catch (error) {
    const open = part as OpenPart | null;
    if (open !== null) {
      await open.handle.close().catch(() => undefined);
      fs.rmSync(open.temporary, { force: true });
      unregisterTemporaryPath(open.temporary);
    }
    for (const file of created) fs.rmSync(file, { force: true });
    if (!ended) await reader.cancel().catch(() => undefined);
    if (error instanceof MultipartError) {
      if (/ended before its closing boundary/.test(error.message)) throw new TransientError(`${error.message} (the connection closed mid-transfer)`, undefined, { cause: error });
      throw replyError(request, error.message, error);
    }
    throw error;
  } finally {
    reader.releaseLock();
  }
}
