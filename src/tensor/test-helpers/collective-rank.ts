/**
 * One rank of the shutdown tests (src/tensor/distributed.test.ts), started as a child process:
 * `node --import tsx collective-rank.ts SCENARIO RANK PORT PORT2`, world of 2 on 127.0.0.1. It
 * prints one JSON line of what it saw and exits 0; any crash shows as another exit status.
 *
 * in-flight: rank 0 queues an all-reduce of 2^20 floats (4 MiB, buckets of 1 MiB) and calls
 *   shutdown at once, while libuv's thread pool is still busy (4 key derivations queued first), so
 *   the collective has not even started running; rank 1 joins the collective only 400 ms later.
 *   Then both ranks start a second group on PORT2 and all-reduce again.
 * peer-gone: rank 1 exits right after joining; rank 0 queues an all-reduce and shuts down.
 */
import { pbkdf2 } from 'node:crypto';
import * as T from '../index.js';

const [scenario, rankText, portText, port2Text] = process.argv.slice(2);
const rank = Number(rankText);
const port = Number(portText);
const init = (p: number): Promise<number> =>
  T.initProcessGroup({ rank, worldSize: 2, host: '127.0.0.1', port: p, timeoutMs: 20_000, backend: 'gloo', networkInterface: null });
const MiB = 2 ** 20;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Smallest and largest element. */
const range = (x: T.Tensor): [number, number] => {
  const values = x.toFloat32Array();
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi];
};
/** How a Promise settled, and when (ms since `t0`). */
async function outcome<V>(promise: Promise<V>, t0: number): Promise<{ ok: boolean; value?: V; code?: string; message?: string; at: number }> {
  try {
    const value = await promise;
    return { ok: true, value, at: performance.now() - t0 };
  } catch (error) {
    return { ok: false, code: (error as { code?: string }).code, message: (error as Error).message, at: performance.now() - t0 };
  }
}

await init(port);
const x = T.full([MiB], rank + 1);
if (scenario === 'in-flight') {
  if (rank === 0) {
    // Occupy the pool's 4 threads (UV_THREADPOOL_SIZE's default) for a while.
    const busy = Array.from({ length: 4 }, () => new Promise((resolve) => pbkdf2('k', 's', 100_000, 64, 'sha512', resolve)));
    const t0 = performance.now();
    const reduce = outcome(T.allReduce([x], 'sum', MiB), t0);
    const shutdown = outcome(T.shutdownProcessGroup(), t0);
    const initializedAfterShutdown = T.processGroupInitialized();
    const refused = await outcome(T.allReduce([T.ones([4])]), t0);
    const [reduced, shut] = await Promise.all([reduce, shutdown, ...busy]);
    await init(Number(port2Text));
    const second = T.full([3], 10);
    await T.allReduce([second]);
    await T.shutdownProcessGroup();
    process.stdout.write(`${JSON.stringify({ reduced, shut, range: range(x), initializedAfterShutdown, refused, second: range(second) })}\n`);
  } else {
    await sleep(400);
    await T.allReduce([x], 'sum', MiB);
    const shut = await T.shutdownProcessGroup();
    await init(Number(port2Text));
    const second = T.full([3], 20);
    await T.allReduce([second]);
    await T.shutdownProcessGroup();
    process.stdout.write(`${JSON.stringify({ shut, range: range(x), second: range(second) })}\n`);
  }
} else if (scenario === 'peer-gone') {
  if (rank === 1) process.exit(0);
  await sleep(200);
  const t0 = performance.now();
  const reduce = outcome(T.allReduce([x], 'sum', MiB), t0);
  const shutdown = outcome(T.shutdownProcessGroup(), t0);
  const [reduced, shut] = await Promise.all([reduce, shutdown]);
  process.stdout.write(`${JSON.stringify({ reduced, shut })}\n`);
} else {
  throw new Error(`unknown scenario ${scenario}`);
}
