/**
 * The process group's lifetime (native/src/distributed.cpp): a shutdown that meets an in-flight
 * all-reduce lets it finish and settle first, then frees the group (rank 0's store port is free
 * again and a new group can start); a shutdown whose in-flight collective lost its peer settles
 * that collective with a clear error, no crash; an init that fails half-way frees what it built.
 * Two ranks run as child processes (test-helpers/collective-rank.ts); the world-of-one cases run
 * in this process. The collectives' numbers themselves are tested by src/train/distributed.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as T from './index.js';
import { freePort, runTsxScript } from './test-support.js';

const RANK_SCRIPT = fileURLToPath(new URL('./test-helpers/collective-rank.ts', import.meta.url));
const skip = T.distributedSupport().available ? false : `the addon has no data-parallel support (${T.distributedSupport().reason})`;

/** Whether a TCP server can listen on 127.0.0.1:port right now (nobody else holds it). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

interface Settled<V> {
  ok: boolean;
  value?: V;
  code?: string;
  message?: string;
  at: number;
}

async function startRank(args: string[]): Promise<{ code: number | null; signal: string | null; out: Record<string, unknown> | null; stderr: string }> {
  const run = await runTsxScript(RANK_SCRIPT, args);
  return { code: run.code, signal: run.signal, out: run.stdout.trim() ? (JSON.parse(run.stdout.trim()) as Record<string, unknown>) : null, stderr: run.stderr };
}

const worldOfOne = (port: number, networkInterface: string | null = null): T.ProcessGroupOptions => ({
  rank: 0, worldSize: 1, host: '127.0.0.1', port, timeoutMs: 5_000, backend: 'gloo', networkInterface,
});

test('shutdown without a group resolves at once; a collective without one is refused by name', { skip }, async () => {
  assert.equal(T.processGroupInitialized(), false);
  assert.ok((await T.shutdownProcessGroup()) < 1);
  await assert.rejects(T.allReduce([T.ones([2])]), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'distributed-failure');
    assert.equal(error.message, 'no process group (distInit first; distShutdown ends it)');
    return true;
  });
});

test('an init that fails after its store started frees the store (the port is free again), and init then works', { skip }, async () => {
  const port = await freePort();
  // The TCPStore (rank 0 serves it) starts, then Gloo cannot find the interface and throws.
  await assert.rejects(T.initProcessGroup(worldOfOne(port, 'no-such-if0')), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'distributed-failure');
    assert.match(error.message, /no-such-if0/);
    return true;
  });
  assert.equal(T.processGroupInitialized(), false);
  assert.equal(await portIsFree(port), true, 'the failed init left its TCPStore serving the port');
  await T.initProcessGroup(worldOfOne(port));
  assert.equal(T.processGroupInitialized(), true);
  await assert.rejects(T.initProcessGroup(worldOfOne(port)), /already initialised/);
  const x = T.full([3], 7);
  await T.allReduce([x]);
  assert.deepEqual([...x.toFloat32Array()], [7, 7, 7], 'a world of one sums one contribution');
  // Shut down with the collective still queued: it completes, then the group goes.
  const y = T.full([2], 5);
  const reduce = T.allReduce([y]);
  const shutdown = T.shutdownProcessGroup();
  assert.equal(T.processGroupInitialized(), false, 'ended at once for new operations');
  await Promise.all([reduce, shutdown]);
  assert.deepEqual([...y.toFloat32Array()], [5, 5]);
  assert.equal(await portIsFree(port), true, 'shutdown freed the store');
});

test('two ranks: a shutdown called while an all-reduce is in flight waits for it; the result is right and a new group starts', { skip }, async (t) => {
  const [port, port2] = [await freePort(), await freePort()];
  const [rank0, rank1] = await Promise.all([0, 1].map((rank) => startRank(['in-flight', String(rank), String(port), String(port2)])));
  assert.equal(rank0!.code, 0, `rank 0 (signal ${rank0!.signal}): ${rank0!.stderr}`);
  assert.equal(rank1!.code, 0, `rank 1 (signal ${rank1!.signal}): ${rank1!.stderr}`);
  const r0 = rank0!.out as { reduced: Settled<number>; shut: Settled<number>; range: number[]; initializedAfterShutdown: boolean; refused: Settled<number>; second: number[] };
  // Each rank contributes rank + 1 to every element: 1 + 2.
  assert.equal(r0.reduced.ok, true, r0.reduced.message);
  assert.deepEqual(r0.range, [3, 3]);
  assert.deepEqual((rank1!.out as { range: number[] }).range, [3, 3]);
  // Rank 1 joined 400 ms late: the collective was in flight all that time, and the shutdown
  // (called right after it was queued) resolved only after it settled.
  assert.ok(r0.reduced.at >= 300, `the all-reduce settled after ${r0.reduced.at} ms, before rank 1 joined`);
  assert.equal(r0.shut.ok, true, r0.shut.message);
  assert.ok(r0.shut.at >= r0.reduced.at, `shutdown resolved at ${r0.shut.at} ms, before its in-flight all-reduce (${r0.reduced.at} ms)`);
  assert.equal(r0.initializedAfterShutdown, false);
  assert.equal(r0.refused.ok, false);
  assert.equal(r0.refused.code, 'distributed-failure');
  assert.match(r0.refused.message!, /^no process group/);
  // The second group (10 + 20 on every element).
  assert.deepEqual(r0.second, [30, 30]);
  assert.deepEqual((rank1!.out as { second: number[] }).second, [30, 30]);
  t.diagnostic(`all-reduce settled at ${r0.reduced.at.toFixed(0)} ms, shutdown at ${r0.shut.at.toFixed(0)} ms`);
});

test('two ranks: a shutdown whose in-flight all-reduce lost its peer settles it with a clear error, no crash', { skip }, async () => {
  const port = await freePort();
  const [rank0, rank1] = await Promise.all([0, 1].map((rank) => startRank(['peer-gone', String(rank), String(port), '0'])));
  assert.equal(rank1!.code, 0, rank1!.stderr);
  assert.equal(rank0!.code, 0, `rank 0 (signal ${rank0!.signal}): ${rank0!.stderr}`);
  const r0 = rank0!.out as { reduced: Settled<number>; shut: Settled<number> };
  assert.equal(r0.reduced.ok, false);
  assert.equal(r0.reduced.code, 'distributed-failure');
  assert.match(r0.reduced.message!, /a collective with the other ranks failed .*Connection (closed|reset) by peer/);
  assert.equal(r0.shut.ok, true, r0.shut.message);
  assert.ok(r0.shut.at >= r0.reduced.at);
  assert.ok(r0.shut.at < 10_000, `shutdown took ${r0.shut.at} ms`);
});
