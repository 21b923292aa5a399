/**
 * One process at a time in a run folder: `lockFolder` creates FOLDER/.lesionseg.lock with O_EXCL
 * ('wx'), holding the PID, the process's start time (Linux /proc, so a reused PID is told apart),
 * the host and the command. A second `train --resume` (or `pretrain`) on the same folder finds it
 * and is refused (InputError 'folder-locked', exit 2) naming the holder's PID; a lock whose process
 * is gone (killed with SIGKILL, the machine rebooted) is stale and taken over. A lock from another
 * host (a shared file system) cannot be checked and is respected; its message says which file to
 * remove once that process is known to be gone. The lock is released when the command ends, and by
 * the signal handler (it is registered as a temporary path).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError } from './errors.js';
import { registerTemporaryPath, unregisterTemporaryPath } from './temporary.js';

export const LOCK_FILE = '.lesionseg.lock';

interface LockHolder {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot), null where /proc is not there. */
  startTime: string | null;
  host: string;
  command: string;
  since: string;
}

export interface FolderLock {
  readonly file: string;
  release(): void;
}

/** A process's start time from /proc, or null (not Linux, or no such process). */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const now = processStartTime(holder.pid);
  return holder.startTime === null || now === null || now === holder.startTime;
}

function readHolder(file: string): LockHolder | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>;
    return typeof parsed.pid === 'number' && typeof parsed.host === 'string' ? (parsed as LockHolder) : null;
  } catch {
    return null;
  }
}

/** Lock `folder` (created if missing) for `command`; see the file comment. */
export function lockFolder(folder: string, command: string): FolderLock {
  const created = !fs.existsSync(folder);
  if (!created && !fs.statSync(folder).isDirectory()) throw new InputError('the run folder is a file', { file: folder, code: 'bad-run-folder' });
  fs.mkdirSync(folder, { recursive: true });
  const file = path.join(folder, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, startTime: processStartTime(process.pid), host: os.hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 50; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readHolder(file);
      if (holder === null) {
        // Created but not yet written by its holder, or left empty by a crash: wait, then count it stale.
        const ageMs = Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0);
        if (ageMs < 2000) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
          continue;
        }
      } else if (holder.host !== me.host) {
        throw new InputError(`is in use by lesionseg ${holder.command} (PID ${holder.pid} on host ${holder.host}, since ${holder.since}), which this host cannot check; once that process is gone, remove ${file}`, { file: folder, code: 'folder-locked' });
      } else if (isAlive(holder)) {
        throw new InputError(`is in use by lesionseg ${holder.command} (PID ${holder.pid}, since ${holder.since}): wait for it to end or stop it (kill ${holder.pid}); two runs in one folder would interleave its log and checkpoints`, { file: folder, code: 'folder-locked' });
      }
      // Stale: move it away (one taker wins the rename), then try again.
      const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        fs.renameSync(file, aside);
        fs.rmSync(aside, { force: true });
      } catch (moveError) {
        if ((moveError as NodeJS.ErrnoException).code !== 'ENOENT') throw moveError;
      }
      continue;
    }
    try {
      fs.writeSync(fd, `${JSON.stringify(me)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    registerTemporaryPath(file);
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      process.removeListener('exit', release);
      unregisterTemporaryPath(file);
      if (readHolder(file)?.pid === process.pid) fs.rmSync(file, { force: true });
      // A folder made only to hold the lock (the command refused its inputs) goes with it.
      if (created && fs.existsSync(folder) && fs.readdirSync(folder).length === 0) fs.rmdirSync(folder);
    };
    process.on('exit', release);
    return { file, release };
  }
  throw new InputError(`could not take ${file} after 50 attempts (other processes keep taking it)`, { file: folder, code: 'folder-locked' });
}

/**
 * Runs `body` holding `folder`'s lock when `hold` is true (a data-parallel run's writer rank; ranks
 * that write nothing share the writer's folder), and releases it however `body` ends.
 */
export async function withFolderLock<T>(folder: string, command: string, hold: boolean, body: () => Promise<T>): Promise<T> {
  const lock = hold ? lockFolder(folder, command) : null;
  try {
    return await body();
  } finally {
    lock?.release();
  }
}
