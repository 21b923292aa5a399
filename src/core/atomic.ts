/**
 * Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the
 * target, so a reader (or a resumed run after a kill) never sees a half-written file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

function temporaryPath(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Write `chunks` (one buffer or several, written in order) to `target` atomically. */
export function atomicWriteFileSync(target: string, chunks: string | Uint8Array | readonly Uint8Array[]): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = temporaryPath(target);
  const fd = fs.openSync(temporary, 'w');
  try {
    const list = typeof chunks === 'string' ? [Buffer.from(chunks)] : chunks instanceof Uint8Array ? [chunks] : chunks;
    for (const chunk of list) {
      let offset = 0;
      while (offset < chunk.byteLength) offset += fs.writeSync(fd, chunk, offset, chunk.byteLength - offset);
    }
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temporary, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(temporary, target);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

/** Same as atomicWriteFileSync, asynchronous. */
export async function atomicWriteFile(target: string, chunks: string | Uint8Array | readonly Uint8Array[]): Promise<void> {
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const temporary = temporaryPath(target);
  const handle = await fs.promises.open(temporary, 'w');
  try {
    const list = typeof chunks === 'string' ? [Buffer.from(chunks)] : chunks instanceof Uint8Array ? [chunks] : chunks;
    for (const chunk of list) await handle.write(chunk);
    await handle.sync();
    await handle.close();
    await fs.promises.rename(temporary, target);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.promises.rm(temporary, { force: true });
    throw error;
  }
}

/** Write JSON (2-space indented, trailing newline) atomically. */
export function atomicWriteJsonSync(target: string, value: unknown): void {
  atomicWriteFileSync(target, `${JSON.stringify(value, null, 2)}\n`);
}
