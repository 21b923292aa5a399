/**
 * The run-folder lock with two processes: a child holds the folder, `lesionseg train --resume` on
 * it is refused (exit 2, one line naming the holder's PID) and so is a lock taken here; the child
 * killed with SIGKILL leaves a stale lock, which is taken over; a lock whose PID is alive but whose
 * start time is another process's (a reused PID) is stale too; SIGINT removes the holder's lock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from './errors.js';
import { LOCK_FILE, lockFolder, processStartTime } from './folderLock.js';
import { lesionseg, ROOT } from '../cli/test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'folder-lock-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const source = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/** A child process that locks `folder`, says so, and waits to be killed. */
async function holder(folder: string): Promise<{ pid: number; kill(signal: NodeJS.Signals): Promise<NodeJS.Signals | null> }> {
  const script = path.join(tmp, `hold-${path.basename(folder)}.mts`);
  fs.writeFileSync(script, [
    `import { lockFolder } from ${JSON.stringify(source('./index.ts'))};`,
    `import { removeTemporaryFilesOnSignals } from ${JSON.stringify(source('../cli/cleanupSignals.ts'))};`,
    'removeTemporaryFilesOnSignals();',
    `lockFolder(${JSON.stringify(folder)}, 'train --resume');`,
    "process.stdout.write('locked\\n');",
    'setInterval(() => undefined, 1000);',
  ].join('\n'));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    child.on('close', () => reject(new Error('the holder ended before locking')));
  });
  return { pid: child.pid!, kill: (signal) => (child.kill(signal), ended) };
}

test('a second train --resume on a locked run folder is refused with the holder\'s PID; SIGKILL leaves a stale lock that is taken over', async () => {
  const run = path.join(tmp, 'run');
  const first = await holder(run);
  const second = await lesionseg('train', '--dataset', path.join(tmp, 'no-dataset'), '--out', run, '--resume');
  assert.equal(second.code, 2, second.stderr);
  assert.match(second.stderr, new RegExp(`^lesionseg: ${run}: is in use by lesionseg train --resume \\(PID ${first.pid}, since [^)]+\\): wait for it to end or stop it \\(kill ${first.pid}\\)`));
  assert.equal(second.stderr.trim().split('\n').length, 1, second.stderr);
  assert.throws(() => lockFolder(run, 'train'), (e: unknown) => e instanceof InputError && e.code === 'folder-locked' && e.message.includes(`PID ${first.pid}`));
  assert.equal(await first.kill('SIGKILL'), 'SIGKILL');
  assert.equal(JSON.parse(fs.readFileSync(path.join(run, LOCK_FILE), 'utf8')).pid, first.pid, 'SIGKILL left the lock');
  const taken = lockFolder(run, 'train');
  assert.equal(JSON.parse(fs.readFileSync(taken.file, 'utf8')).pid, process.pid);
  taken.release();
  assert.equal(fs.existsSync(taken.file), false);
});

test('a lock whose PID now belongs to another process (start time differs) is stale', () => {
  const run = path.join(tmp, 'reused');
  fs.mkdirSync(run);
  assert.ok(processStartTime(process.pid) !== null, 'Linux /proc');
  fs.writeFileSync(path.join(run, LOCK_FILE), JSON.stringify({ pid: process.pid, startTime: '1', host: os.hostname(), command: 'train', since: '2020-01-01' }));
  const lock = lockFolder(run, 'train');
  lock.release();
  assert.deepEqual(fs.readdirSync(run), []);
});

test('SIGINT to the holder removes its lock; a folder made only for the lock goes with it on release', async () => {
  const run = path.join(tmp, 'interrupted');
  const first = await holder(run);
  assert.equal(await first.kill('SIGINT'), 'SIGINT');
  assert.deepEqual(fs.readdirSync(run), []);
  const fresh = path.join(tmp, 'fresh');
  lockFolder(fresh, 'train').release();
  assert.equal(fs.existsSync(fresh), false);
});
