/**
 * Collectives between the ranks of a data-parallel run (torch's c10d through the addon): one
 * process group per process, set up by `initProcessGroup`. `allReduce` and `broadcast` run off
 * the JS thread and resolve when done (the event loop keeps turning meanwhile); `allReduceSync`
 * blocks and is meant only for the few numbers a loss needs in the middle of a forward pass.
 * A failed collective (a peer died, the group's timeout passed) rejects with a LesionsegError of
 * code 'distributed-failure'.
 */
import { LesionsegError } from '../core/index.js';
import { binding, type NativeHandle } from './binding.js';
import { call, h, invoke, type Tensor } from './tensor.js';

export interface DistributedSupport {
  /** Whether this build of the addon has c10d (Gloo). */
  available: boolean;
  /** What it has, or why not. */
  reason: string;
  nccl: boolean;
}

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** Where rank 0 serves the TCPStore. */
  host: string;
  port: number;
  /** How long a rank waits for the others (joining, and any one collective). */
  timeoutMs: number;
  backend: 'gloo' | 'nccl';
  /** The network interface Gloo binds (GLOO_SOCKET_IFNAME), or null: 127.0.0.1 for a loopback host, else this host's address. */
  networkInterface: string | null;
}

/** 25 MiB, torch DDP's default bucket. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

export function distributedSupport(): DistributedSupport {
  const info = binding.distInfo();
  return { available: info.available, reason: info.reason, nccl: info.nccl };
}

export function processGroupInitialized(): boolean {
  return binding.distInfo().initialized;
}

/**
 * A failed collective, said plainly: nearly always another rank died or stopped answering. A call
 * without a process group (before init, after shutdown) says so instead, and a wrong argument stays
 * the TypeError the addon threw.
 */
function collectiveError(error: unknown): Error {
  if (error instanceof TypeError) return error;
  const detail = String((error as Error).message ?? error).replace(/^dist[A-Za-z]+(\([^)]*\))?: /, '');
  if (/^no process group/.test(detail)) return new LesionsegError('distributed-failure', detail, { cause: error });
  return new LesionsegError('distributed-failure', `a collective with the other ranks failed (did another rank die or stop answering?): ${detail}`, { cause: error });
}

/** The collectives queued and not yet settled, which a shutdown lets settle before it resolves. */
const inFlight = new Set<Promise<unknown>>();

/** Runs `start` (which may throw at once) and maps either kind of failure to the errors above. */
function settle<T>(what: string, start: () => Promise<T>): Promise<T> {
  const settled = (async () => {
    try {
      return await start();
    } catch (error) {
      if (what === 'distInit' && !(error instanceof TypeError)) throw new LesionsegError('distributed-failure', String((error as Error).message ?? error), { cause: error });
      throw collectiveError(error);
    }
  })();
  inFlight.add(settled);
  const forget = (): void => void inFlight.delete(settled);
  settled.then(forget, forget);
  return settled;
}

/** Join the group (every rank calls it; rank 0 serves the store); resolves to the seconds it took. */
export function initProcessGroup(options: ProcessGroupOptions): Promise<number> {
  return settle('distInit', () => binding.distInit(options.rank, options.worldSize, options.host, options.port, options.timeoutMs, options.backend, options.networkInterface));
}

function handlesOf(op: string, tensors: readonly Tensor[]): NativeHandle[] {
  return invoke(op, tensors, (handles) => handles.map((_, i) => h(handles, i)));
}

/**
 * Reduce the tensors in place across ranks (in buckets of `bucketBytes`); resolves to the seconds
 * the collectives took. The tensors' storage is shared with the addon until it resolves: leave
 * them alone meanwhile (the JS handles may be disposed, the addon holds its own references).
 */
export function allReduce(tensors: readonly Tensor[], op: 'sum' | 'max' = 'sum', bucketBytes: number = DEFAULT_BUCKET_BYTES): Promise<number> {
  return settle('distAllReduce', () => binding.distAllReduce(handlesOf('distAllReduce', tensors), op, bucketBytes));
}

/** Overwrite the tensors with rank `root`'s (in place, in buckets). */
export function broadcast(tensors: readonly Tensor[], root = 0, bucketBytes: number = DEFAULT_BUCKET_BYTES): Promise<number> {
  return settle('distBroadcast', () => binding.distBroadcast(handlesOf('distBroadcast', tensors), root, bucketBytes));
}

/** The reduction of `x` over ranks as a new tensor (no gradient). Blocks the JS thread. */
export function allReduceSync(x: Tensor, op: 'sum' | 'max' = 'sum'): Tensor {
  try {
    return call('distAllReduceSync', [x], (hs) => binding.distAllReduceSync(h(hs, 0), op));
  } catch (error) {
    throw collectiveError(error);
  }
}

/** Set a key in the group's store (visible to every rank). */
export function storeSet(key: string, value: string): void {
  binding.distStoreSet(key, value);
}

/** A key's value, or null while no rank has set it (never waits). */
export function storeTryGet(key: string): string | null {
  return binding.distStoreTryGet(key);
}

/**
 * Leave the group. New collectives are refused at once; the ones already queued finish (or fail,
 * when a peer is gone, within the group's timeout) and settle their own Promises first; then the
 * group is freed (rank 0's store port is free again) and this resolves to the seconds it waited.
 * Without a group it resolves at once.
 */
export async function shutdownProcessGroup(): Promise<number> {
  const pending = [...inFlight];
  const freed = binding.distShutdown();
  await Promise.allSettled(pending);
  return await freed;
}

/** Linux: SIGKILL this process when its parent dies; returns whether the parent is still `expectedParentPid`. */
export function killWithParent(expectedParentPid: number): boolean {
  return binding.setParentDeathSignal(expectedParentPid);
}
