/** runPool: never more than `jobs` tasks in flight, results in task order, the first failure stops new starts and surfaces after the running tasks settle. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { runPool } from './pool.js';

test('at most `jobs` tasks run at once; results come back in the order of the tasks', async () => {
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  // Durations chosen so that tasks finish out of order.
  const durations = [30, 5, 20, 5, 10, 1, 15];
  const tasks = durations.map((ms, i) => async () => {
    started.push(i);
    running++;
    peak = Math.max(peak, running);
    await sleep(ms);
    running--;
    return i * 10;
  });
  assert.deepEqual(await runPool(tasks, 3), [0, 10, 20, 30, 40, 50, 60]);
  assert.equal(peak, 3);
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6]);
  running = 0;
  peak = 0;
  assert.deepEqual(await runPool(tasks, 1), [0, 10, 20, 30, 40, 50, 60]);
  assert.equal(peak, 1);
  assert.deepEqual(await runPool([], 2), []);
  await assert.rejects(runPool(tasks, 0), RangeError);
});

test('after a failure no task starts, the running ones finish, then the first error is thrown', async () => {
  const finished: number[] = [];
  const started: number[] = [];
  const tasks = [40, 5, 40, 5, 5].map((ms, i) => async () => {
    started.push(i);
    await sleep(ms);
    if (i === 1) throw new Error('task 1 failed');
    if (i === 2) throw new Error('task 2 failed too');
    finished.push(i);
    return i;
  });
  await assert.rejects(runPool(tasks, 3), /task 1 failed/);
  // Tasks 0 and 2 were running when task 1 failed: awaited (0 finished, 2 failed later); 3 and 4 never started.
  assert.deepEqual(started, [0, 1, 2]);
  assert.deepEqual(finished, [0]);
});
