/**
 * Atomic file writes: write to a temporary file in the same folder, loop until every byte is
 * written, check the file's size against the bytes given, fsync, then rename over the target, so a
 * reader (or a resumed run after a kill) never sees a half-written file. A write that fails (a full
 * disk: ENOSPC, a quota, an I/O error) or comes up short removes the temporary file, leaves the
 * target as it was, and throws a LesionsegError (code 'write-failed') naming the target, so the
 * command exits non-zero with one line. Each temporary file is registered while it is written
 * (temporary.ts), so Ctrl-C removes it (cli/signals.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LesionsegError } from './errors.js';
import { registerTemporaryPath, unregisterTemporaryPath } from './temporary.js';

function temporaryPath(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** The system calls the writer makes; tests replace them (withWriteCalls) to make a short or failing write. */
export interface WriteCalls {
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  write(handle: fs.promises.FileHandle, buffer: Uint8Array, offset: number, length: number): Promise<number>;
}

const SYSTEM_CALLS: WriteCalls = {
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  write: async (handle, buffer, offset, length) => (await handle.write(buffer, offset, length)).bytesWritten,
};
let calls: WriteCalls = SYSTEM_CALLS;

/** Tests only: run `work` with some of the write calls replaced, then restore them. */
export async function withWriteCalls<T>(replacement: Partial<WriteCalls>, work: () => T | Promise<T>): Promise<T> {
  const before = calls;
  calls = { ...before, ...replacement };
  try {
    return await work();
  } finally {
    calls = before;
  }
}

type Chunks = string | Uint8Array | readonly Uint8Array[];

function chunkList(chunks: Chunks): readonly Uint8Array[] {
  return typeof chunks === 'string' ? [Buffer.from(chunks)] : chunks instanceof Uint8Array ? [chunks] : chunks;
}

function totalBytes(list: readonly Uint8Array[]): number {
  return list.reduce((sum, chunk) => sum + chunk.byteLength, 0);
}

/** The error a failed write becomes: one line naming the target and why, the system error as its cause. */
function writeFailed(target: string, cause: unknown): LesionsegError {
  if (cause instanceof LesionsegError && cause.code === 'write-failed') return cause;
  const error = cause as NodeJS.ErrnoException;
  const why = error.code === 'ENOSPC' ? 'no space left on the device' : error.code === 'EDQUOT' ? 'disk quota exceeded' : (error.code ?? error.message);
  return new LesionsegError('write-failed', `${target}: cannot write (${why}); nothing was written there (the previous file, if any, is unchanged)`, { cause });
}

/** A write call that took fewer bytes than asked and then none, or a file smaller than the bytes given. */
function shortWrite(written: number, expected: number): Error {
  return new Error(`short write: ${written} of ${expected} bytes written`);
}

/** Make the rename itself durable where the file system allows (some refuse fsync on a folder). */
function syncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(folder, 'r');
    fs.fsyncSync(fd);
  } catch {
    // A folder that cannot be opened or synced (some network file systems): the file itself is synced.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Write `chunks` (one buffer or several, written in order) to `target` atomically. */
export function atomicWriteFileSync(target: string, chunks: Chunks): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = temporaryPath(target);
  const list = chunkList(chunks);
  const expected = totalBytes(list);
  registerTemporaryPath(temporary);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temporary, 'w');
    for (const chunk of list) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        const written = calls.writeSync(fd, chunk, offset, chunk.byteLength - offset);
        if (!(written > 0)) throw shortWrite(offset, chunk.byteLength);
        offset += written;
      }
    }
    const size = fs.fstatSync(fd).size;
    if (size !== expected) throw shortWrite(size, expected);
    fs.fsyncSync(fd);
    const closing = fd;
    fd = undefined;
    fs.closeSync(closing);
    fs.renameSync(temporary, target);
  } catch (error) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(temporary, { force: true });
    throw writeFailed(target, error);
  } finally {
    unregisterTemporaryPath(temporary);
  }
  syncFolder(path.dirname(target));
}

/** Same as atomicWriteFileSync, asynchronous. */
export async function atomicWriteFile(target: string, chunks: Chunks): Promise<void> {
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const temporary = temporaryPath(target);
  const list = chunkList(chunks);
  const expected = totalBytes(list);
  registerTemporaryPath(temporary);
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(temporary, 'w');
    for (const chunk of list) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        const written = await calls.write(handle, chunk, offset, chunk.byteLength - offset);
        if (!(written > 0)) throw shortWrite(offset, chunk.byteLength);
        offset += written;
      }
    }
    const size = (await handle.stat()).size;
    if (size !== expected) throw shortWrite(size, expected);
    await handle.sync();
    const closing = handle;
    handle = undefined;
    await closing.close();
    await fs.promises.rename(temporary, target);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fs.promises.rm(temporary, { force: true });
    throw writeFailed(target, error);
  } finally {
    unregisterTemporaryPath(temporary);
  }
  syncFolder(path.dirname(target));
}

/** Write JSON (2-space indented, trailing newline) atomically. */
export function atomicWriteJsonSync(target: string, value: unknown): void {
  atomicWriteFileSync(target, `${JSON.stringify(value, null, 2)}\n`);
}
