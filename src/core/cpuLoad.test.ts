/**
 * Free-core thread choice: /proc/stat's aggregate line parsed as the kernel documents it
 * (proc(5): user nice system idle iowait irq softirq steal guest guest_nice, guest already in
 * user), busy cores from two samples by hand, and the rounding of the choice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busyCores, busyCoresBetween, parseProcStat, threadsForFreeCores } from './cpuLoad.js';

const STAT = (user: number, idle: number, iowait = 0, guest = 0) =>
  `cpu  ${user} 0 0 ${idle} ${iowait} 0 0 0 ${guest} 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2 3\n`;

test('parseProcStat reads the aggregate cpu line, idle and iowait as idle, guest not twice', () => {
  assert.deepEqual(parseProcStat(STAT(100, 300, 20, 50)), { total: 420, idle: 320 });
  assert.equal(parseProcStat('intr 1 2\n'), null);
  assert.equal(parseProcStat('cpu  1 x 3 4\n'), null);
});

test('busy cores between two samples: one of two cores busy is 1.0', () => {
  // 200 jiffies passed on 2 cores; 100 of them busy (user), 100 idle.
  assert.equal(busyCoresBetween(parseProcStat(STAT(1000, 5000))!, parseProcStat(STAT(1100, 5100))!, 2), 1);
  assert.equal(busyCoresBetween(parseProcStat(STAT(1000, 5000))!, parseProcStat(STAT(1000, 5200))!, 2), 0);
  assert.equal(busyCoresBetween(parseProcStat(STAT(1000, 5000))!, parseProcStat(STAT(1000, 5000))!, 2), 0, 'no time passed');
});

test('threads: the cores not busy, rounded, at least one; every core when the load is unknown', () => {
  assert.deepEqual(threadsForFreeCores(2, 0.2), { threads: 2, cores: 2, busy: 0.2 });
  assert.equal(threadsForFreeCores(2, 0.6).threads, 1);
  assert.equal(threadsForFreeCores(2, 2).threads, 1);
  assert.equal(threadsForFreeCores(8, 3.4).threads, 5);
  assert.equal(threadsForFreeCores(4, null).threads, 4);
});

test('busyCores on this machine is a number of cores in range', () => {
  const busy = busyCores(50, 2);
  if (busy !== null) assert.ok(busy >= 0 && busy <= 2, String(busy));
});
