/**
 * The addon's CPU arena (native/src/allocator.cpp): blocks of 1 MiB and more are kept when their
 * tensor dies and reused without faulting pages in again; freed neighbours merge, so a block twice
 * the size fits where two died; emptyCpuCache hands the pages back to the kernel. This file runs in
 * a process of its own, so the arena holds only what these tests allocate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as T from './index.js';

const MiB = 2 ** 20;
const floats = (bytes: number): number => bytes / 4;
const faults = (): number => process.resourceUsage().minorPageFault;
const rssBytes = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

test('the arena is on by default and counts live and idle bytes of large blocks only', () => {
  const before = T.cpuCacheStats()!;
  assert.notEqual(before, null);
  const small = T.zeros([floats(256 * 1024)]);
  assert.equal(T.cpuCacheStats()!.liveBytes, before.liveBytes, 'a 256 KiB tensor goes to the default allocator');
  const large = T.zeros([floats(3 * MiB)]);
  const during = T.cpuCacheStats()!;
  assert.equal(during.liveBytes - before.liveBytes, 3 * MiB);
  large.dispose();
  small.dispose();
  const after = T.cpuCacheStats()!;
  assert.equal(after.liveBytes, before.liveBytes);
  assert.ok(after.idleBytes >= 3 * MiB, `idle ${after.idleBytes} after a 3 MiB block died`);
});

test('a block that died is reused without faulting its pages in again', () => {
  const bytes = 64 * MiB;
  const pages = bytes / 4096;
  T.fillInPlace(T.zeros([floats(bytes)]), 1).dispose();
  const start = faults();
  for (let round = 0; round < 4; round++) {
    const tensor = T.zeros([floats(bytes)]);
    T.fillInPlace(tensor, round);
    tensor.dispose();
  }
  const perRound = (faults() - start) / 4;
  // Without the arena each round maps 64 MiB afresh: 16,384 faults of 4 KiB pages.
  assert.ok(perRound < pages / 20, `${perRound} minor faults per 64 MiB round (${pages} pages)`);
});

test('freed neighbours merge: a block of twice the size takes the place of two that died', () => {
  T.emptyCpuCache();
  const a = T.zeros([floats(8 * MiB)]);
  const b = T.zeros([floats(8 * MiB)]);
  const extent = T.cpuCacheStats(true)!.mappedBytes;
  a.dispose();
  b.dispose();
  const merged = T.zeros([floats(16 * MiB)]);
  const stats = T.cpuCacheStats()!;
  merged.dispose();
  assert.equal(stats.peakMappedBytes, extent, 'the 16 MiB block needed no address beyond the two 8 MiB blocks');
  assert.equal(stats.peakLiveBytes - stats.liveBytes, 0);
});

test('emptyCpuCache hands idle pages back: the RSS falls', () => {
  const bytes = 96 * MiB;
  const tensor = T.zeros([floats(bytes)]);
  T.fillInPlace(tensor, 2);
  tensor.dispose();
  const resident = rssBytes();
  const released = T.emptyCpuCache();
  assert.ok(released >= bytes, `released ${released} bytes, expected at least ${bytes}`);
  assert.equal(T.cpuCacheStats()!.idleBytes, 0);
  const drop = resident - rssBytes();
  assert.ok(drop >= bytes * 0.75, `RSS fell by ${drop / MiB} MiB after handing back ${bytes / MiB} MiB`);
});
