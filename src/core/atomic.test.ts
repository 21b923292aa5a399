/**
 * The atomic writer on short and failing writes: a write call that writes part of a buffer is
 * looped until every byte is there; one that writes nothing, or a full file system (a 128 KiB tmpfs,
 * mounted here as root), ends in a LesionsegError 'write-failed' naming the target, with the old
 * target untouched and no temporary file left. The CLI on the full tmpfs exits 1 with one line
 * naming the file (before: exit 0 with a truncated .nii.gz). The signal test is in src/cli/signals.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { atomicWriteFile, atomicWriteFileSync, withWriteCalls } from './atomic.js';
import { LesionsegError } from './errors.js';
import { temporaryPathsInProgress } from './temporary.js';
import { lesionseg } from '../cli/test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atomic-test-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);
const leftovers = (dir: string): string[] => fs.readdirSync(dir, { recursive: true }).map(String).filter((name) => name.includes('.tmp-'));

function refused(error: unknown, target: string): true {
  assert.ok(error instanceof LesionsegError, String(error));
  assert.equal(error.code, 'write-failed');
  assert.ok(error.message.startsWith(`${target}: cannot write (`), error.message);
  assert.equal(error.message.includes('\n'), false);
  return true;
}

test('partial writes are looped until every byte is written (sync and async)', async () => {
  const data = bytes(10_000);
  // At most 777 bytes per call: 13 calls for 10000 bytes.
  let callsSync = 0;
  let callsAsync = 0;
  await withWriteCalls({
    writeSync: (fd, buffer, offset, length) => (callsSync++, fs.writeSync(fd, buffer, offset, Math.min(length, 777))),
    write: async (handle, buffer, offset, length) => (callsAsync++, (await handle.write(buffer, offset, Math.min(length, 777))).bytesWritten),
  }, async () => {
    atomicWriteFileSync(path.join(tmp, 'a.bin'), data);
    await atomicWriteFile(path.join(tmp, 'b.bin'), [data.subarray(0, 5000), data.subarray(5000)]);
  });
  assert.equal(callsSync, Math.ceil(10_000 / 777));
  assert.equal(callsAsync, Math.ceil(5000 / 777) * 2);
  assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(tmp, 'a.bin'))), data);
  assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(tmp, 'b.bin'))), data);
});

test('a write that stops short or fails: refused naming the target, the old file kept, no temporary left', async () => {
  const target = path.join(tmp, 'kept.bin');
  fs.writeFileSync(target, 'old');
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  await withWriteCalls({
    // 100 bytes, then nothing (a device that stops taking bytes without an error).
    writeSync: (fd, buffer, offset, length) => (offset === 0 ? fs.writeSync(fd, buffer, offset, Math.min(length, 100)) : 0),
    write: async () => { throw enospc; },
  }, async () => {
    assert.throws(() => atomicWriteFileSync(target, bytes(4096)), (e) => refused(e, target) && /short write: 100 of 4096 bytes/.test(String((e as Error).message)));
    await assert.rejects(atomicWriteFile(target, bytes(4096)), (e) => refused(e, target) && /no space left on the device/.test(String((e as Error).message)));
  });
  assert.equal(fs.readFileSync(target, 'utf8'), 'old');
  assert.deepEqual(leftovers(tmp), []);
  assert.deepEqual(temporaryPathsInProgress(), []);
});

/** A 128 KiB tmpfs at `dir` for `work` (root only; CI runs as root). */
async function onFullDisk(dir: string, work: () => Promise<void>, t: { skip(message: string): void }): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    const why = `cannot mount a tmpfs (${mounted.stderr.trim() || String(mounted.error)}): the seam test above covers the writer`;
    if (process.env.CI === 'true') assert.fail(why);
    t.skip(why);
    return;
  }
  try {
    await work();
  } finally {
    spawnSync('umount', [dir]);
  }
}

test('a full file system (128 KiB tmpfs): the writer refuses, nothing half written, no temporary left', async (t) => {
  const dir = path.join(tmp, 'full');
  await onFullDisk(dir, async () => {
    atomicWriteFileSync(path.join(dir, 'small.bin'), bytes(1000));
    const target = path.join(dir, 'big.bin');
    assert.throws(() => atomicWriteFileSync(target, bytes(512 * 1024)), (e) => refused(e, target));
    await assert.rejects(atomicWriteFile(target, [bytes(64 * 1024), bytes(64 * 1024), bytes(64 * 1024)]), (e) => refused(e, target));
    assert.deepEqual(fs.readdirSync(dir), ['small.bin']);
  }, t);
});

test('lesionseg synth onto a full file system exits 1 with one line naming the image, and leaves no partial file', async (t) => {
  const dir = path.join(tmp, 'full-cli');
  await onFullDisk(dir, async () => {
    // A tiny covid case's image is about 136 KB gzipped: it cannot fit in 128 KiB.
    const run = await lesionseg('synth', '--kind', 'covid', '--cases', '1', '--size', 'tiny', '--out', path.join(dir, 'ds'));
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^lesionseg: \S+covid_000_0000\.nii\.gz: cannot write \(no space left on the device\); nothing was written there/m);
    assert.equal(run.stderr.split('\n').filter((line) => line.startsWith('lesionseg:')).length, 1, run.stderr);
    assert.equal(run.stderr.includes('    at '), false, 'no stack trace');
    assert.deepEqual(leftovers(dir), []);
    assert.equal(fs.existsSync(path.join(dir, 'ds', 'imagesTr', 'covid_000_0000.nii.gz')), false);
  }, t);
});
