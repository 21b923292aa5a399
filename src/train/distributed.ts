/**
 * Data-parallel training, nnU-Net v2's DDP on torch's c10d: one process (rank) per device, the
 * plan's batch split over the ranks (data's rankBatchShare: sizes differ by at most one, the
 * global batch keeps its foreground share), parameters broadcast from rank 0, and each rank's
 * loss the loss of the GLOBAL batch: every mean and every Dice ratio is taken of sums added over
 * the ranks (`crossRankSum`, in the forward pass), so the per-rank gradients add up to the
 * global batch's gradient and are summed by an all-reduce in buckets (run off the JS thread).
 * This is what one process computes on the whole batch (up to float rounding); torch's DDP
 * averages gradients instead, which equals it only when the ranks' batches are equal and the
 * loss has no batch-wide term. The pseudo Dice's tp/fp/fn are summed over ranks, rank 0 alone
 * writes checkpoints and logs, and the ranks agree at each epoch's end whether to stop.
 *
 * Where the ranks come from (`rendezvousFromEnv`, given the environment by the CLI): torchrun's
 * RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT (LOCAL_RANK), or Slurm's SLURM_PROCID /
 * SLURM_NTASKS / SLURM_STEP_NODELIST (its first node serves the store; SLURM_LOCALID).
 */
import { InputError, LesionsegError, type Device } from '../core/index.js';
import {
  add, allReduce, allReduceSync, broadcast, DEFAULT_BUCKET_BYTES, distributedSupport, fromArray, initProcessGroup, mul, scope, storeSet, storeTryGet, sub, sum,
  type Tensor,
} from '../tensor/index.js';
import type { Module } from '../nn/index.js';
import type { ClassCounts } from './pseudoDice.js';

export interface Rendezvous {
  rank: number;
  worldSize: number;
  /** Rank on this node (the CUDA device index of `--device cuda`). */
  localRank: number;
  host: string;
  port: number;
  /** Where the values came from, for messages. */
  source: 'torchrun' | 'slurm' | 'launcher';
  networkInterface: string | null;
}

export const DISTRIBUTED_DEFAULTS = {
  /** Joining and any single collective: a silent peer fails the run after this (a dead one at once). */
  timeoutMs: 300_000,
  /** Slurm without MASTER_PORT: this plus the job id modulo 20000. */
  slurmBasePort: 20_000,
  bucketBytes: DEFAULT_BUCKET_BYTES,
  pollMs: 50,
} as const;

/** The first host of a Slurm node list: `node[03-05,7],gpu1` -> `node03`. */
export function firstSlurmHost(nodeList: string): string {
  const trimmed = nodeList.trim();
  const match = /^([^,[]+)(\[([^\]]*)\])?/.exec(trimmed);
  if (match === null || trimmed === '') throw new InputError(`cannot read the Slurm node list '${nodeList}'`, { code: 'bad-rendezvous' });
  const prefix = match[1]!;
  if (match[3] === undefined) return prefix;
  const firstRange = match[3].split(',')[0]!;
  return prefix + firstRange.split('-')[0]!;
}

function intFrom(env: Record<string, string | undefined>, name: string): number {
  const raw = env[name];
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isInteger(n) || n < 0) throw new InputError(`${name} must be a non-negative integer, got '${raw}'`, { code: 'bad-rendezvous' });
  return n;
}

/**
 * The rank's rendezvous from the environment (torchrun's variables first, then Slurm's), or null
 * when the process is alone (no variables, or a world of one).
 */
export function rendezvousFromEnv(env: Record<string, string | undefined>): Rendezvous | null {
  const networkInterface = env.GLOO_SOCKET_IFNAME !== undefined && env.GLOO_SOCKET_IFNAME !== '' ? env.GLOO_SOCKET_IFNAME : null;
  let result: Rendezvous;
  if (env.WORLD_SIZE !== undefined) {
    const worldSize = intFrom(env, 'WORLD_SIZE');
    if (worldSize <= 1) return null;
    const rank = intFrom(env, 'RANK');
    const source = env.LESIONSEG_LAUNCHER_PID !== undefined ? 'launcher' : 'torchrun';
    result = { rank, worldSize, localRank: env.LOCAL_RANK !== undefined ? intFrom(env, 'LOCAL_RANK') : rank, host: env.MASTER_ADDR ?? '127.0.0.1', port: env.MASTER_PORT !== undefined ? intFrom(env, 'MASTER_PORT') : 29500, source, networkInterface };
  } else if (env.SLURM_NTASKS !== undefined && env.SLURM_PROCID !== undefined) {
    // The job step's task count where srun set it (a batch script's own step is one process).
    const worldSize = intFrom(env, env.SLURM_STEP_NUM_TASKS !== undefined ? 'SLURM_STEP_NUM_TASKS' : 'SLURM_NTASKS');
    if (worldSize <= 1) return null;
    const nodeList = env.SLURM_STEP_NODELIST ?? env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST;
    if (nodeList === undefined) throw new InputError('SLURM_STEP_NODELIST is not set: cannot find the first node of the job step', { code: 'bad-rendezvous' });
    const jobId = env.SLURM_JOB_ID !== undefined ? intFrom(env, 'SLURM_JOB_ID') : 0;
    result = {
      rank: intFrom(env, 'SLURM_PROCID'),
      worldSize,
      localRank: env.SLURM_LOCALID !== undefined ? intFrom(env, 'SLURM_LOCALID') : 0,
      host: env.MASTER_ADDR ?? firstSlurmHost(nodeList),
      port: env.MASTER_PORT !== undefined ? intFrom(env, 'MASTER_PORT') : DISTRIBUTED_DEFAULTS.slurmBasePort + (jobId % 20_000),
      source: 'slurm',
      networkInterface,
    };
  } else {
    return null;
  }
  if (result.rank >= result.worldSize) throw new InputError(`rank ${result.rank} is outside a world of ${result.worldSize}`, { code: 'bad-rendezvous' });
  if (result.port < 1 || result.port > 65535) throw new InputError(`MASTER_PORT must be in [1, 65535], got ${result.port}`, { code: 'bad-rendezvous' });
  return result;
}

/** Refuse a data-parallel run this build cannot do (exit 2 at the CLI). */
export function assertDistributedAvailable(what: string): void {
  const support = distributedSupport();
  if (!support.available) {
    throw new InputError(`${what} needs data-parallel support, which this build of the addon lacks (${support.reason}); rebuild with it: npm run setup installs libgloo-dev, and its build log says whether data-parallel training is on`, { code: 'no-distributed' });
  }
}

/** The value of `local` summed over ranks; its gradient flows into `local` unchanged. Blocks. */
export function crossRankSum(local: Tensor): Tensor {
  return scope(() => {
    const detached = local.detach();
    // local - local.detach() is exactly 0 with the identity gradient; adding the global sum gives its exact value.
    return add(sub(local, detached), allReduceSync(detached, 'sum'));
  });
}

/** One rank of a joined group: the collectives the trainer and the run need. */
export class DataParallel {
  /** Seconds spent in gradient all-reduces so far. */
  gradientSeconds = 0;
  gradientReductions = 0;

  /**
   * `backend` 'nccl' reduces CUDA tensors only, so the run's own numbers (pseudo-Dice counts,
   * the stop flag) then travel on this rank's GPU.
   */
  constructor(readonly rendezvous: Rendezvous, readonly backend: 'gloo' | 'nccl' = 'gloo') {}

  private get numbersDevice(): Device {
    return this.backend === 'nccl' ? { type: 'cuda', index: this.rendezvous.localRank } : { type: 'cpu' };
  }

  get rank(): number {
    return this.rendezvous.rank;
  }

  get worldSize(): number {
    return this.rendezvous.worldSize;
  }

  /** Rank 0 writes checkpoints, logs and caches. */
  get isWriter(): boolean {
    return this.rank === 0;
  }

  readonly crossRank = crossRankSum;

  /** Every rank's parameters become rank 0's. */
  async broadcastParameters(model: Module): Promise<void> {
    const values = model.parameters().map((p) => p.value);
    await broadcast(values, 0, DISTRIBUTED_DEFAULTS.bucketBytes);
  }

  /**
   * Sum the parameters' gradients over the ranks (in place). Frozen or unused parameters have
   * none; a parameter that has one on some rank only (a multi-task head whose task's samples are
   * all on other ranks) first gets a zero gradient where it has none, so that every rank reduces
   * the same tensors and applies the same update.
   */
  async reduceGradients(model: Module): Promise<number> {
    const parameters = model.parameters();
    const has = scope(() => parameters.map((p) => p.value.grad !== null));
    const anywhere = await this.allReduceNumbers(has.map((h) => (h ? 1 : 0)), 'max');
    scope(() => {
      parameters.forEach((p, i) => {
        // 0 * sum(p) adds an exact zero gradient to p, creating it.
        if (!has[i] && anywhere[i]! > 0) mul(sum(p.value), 0).backward();
      });
    });
    // The JS handles of the gradients may go: the addon holds the tensors until it resolves.
    const grads = scope(() =>
      parameters.flatMap((p, i) => {
        if (anywhere[i]! === 0) return [];
        return [p.value.grad!.keep()];
      }),
    );
    try {
      const seconds = await allReduce(grads, 'sum', DISTRIBUTED_DEFAULTS.bucketBytes);
      this.gradientSeconds += seconds;
      this.gradientReductions += 1;
      return seconds;
    } finally {
      for (const g of grads) g.dispose();
    }
  }

  /** Numbers summed (or maxed) over ranks, in float64. */
  async allReduceNumbers(values: readonly number[], op: 'sum' | 'max' = 'sum'): Promise<number[]> {
    if (values.length === 0) return [];
    const tensor = scope(() => fromArray(Float64Array.from(values), [values.length], { device: this.numbersDevice }).keep());
    try {
      await allReduce([tensor], op, DISTRIBUTED_DEFAULTS.bucketBytes);
      return Array.from(tensor.toTypedArray() as Float64Array);
    } finally {
      tensor.dispose();
    }
  }

  /** True on every rank when it is true on any. */
  async any(flag: boolean): Promise<boolean> {
    const [max] = await this.allReduceNumbers([flag ? 1 : 0], 'max');
    return max! > 0;
  }

  /** Pseudo-Dice counts of every rank added together (in place). */
  async sumCounts(counts: ClassCounts[]): Promise<void> {
    const flat = counts.flatMap((c) => [...c.tp, ...c.fp, ...c.fn]);
    const summed = await this.allReduceNumbers(flat);
    let offset = 0;
    for (const c of counts) {
      for (const key of ['tp', 'fp', 'fn'] as const) {
        c[key] = summed.slice(offset, offset + c[key].length);
        offset += c[key].length;
      }
    }
  }

  /** Rank 0 publishes a value under `key`. */
  publish(key: string, value: unknown): void {
    storeSet(key, JSON.stringify(value));
  }

  /**
   * Wait (without blocking the event loop) until rank 0 has published `key`; rank 0 may take long
   * (preprocessing). A rank 0 that died ends the wait with an error (its store is gone).
   */
  async awaitPublished<T>(key: string): Promise<T> {
    for (;;) {
      let value: string | null;
      try {
        value = storeTryGet(key);
      } catch (error) {
        throw new LesionsegError('distributed-failure', `rank ${this.rank}: lost rank 0 while waiting for it to prepare the run (${String((error as Error).message ?? error)})`, { cause: error });
      }
      if (value !== null) return JSON.parse(value) as T;
      await new Promise((resolve) => setTimeout(resolve, DISTRIBUTED_DEFAULTS.pollMs));
    }
  }
}

/** Join the group described by `rendezvous` (every rank calls it; resolves once all have joined). */
export async function joinDataParallel(rendezvous: Rendezvous, options: { backend?: 'gloo' | 'nccl'; timeoutMs?: number } = {}): Promise<DataParallel> {
  assertDistributedAvailable(`rank ${rendezvous.rank} of ${rendezvous.worldSize}`);
  try {
    await initProcessGroup({
      rank: rendezvous.rank,
      worldSize: rendezvous.worldSize,
      host: rendezvous.host,
      port: rendezvous.port,
      timeoutMs: options.timeoutMs ?? DISTRIBUTED_DEFAULTS.timeoutMs,
      backend: options.backend ?? 'gloo',
      networkInterface: rendezvous.networkInterface,
    });
  } catch (error) {
    throw new LesionsegError('distributed-failure', `rank ${rendezvous.rank} of ${rendezvous.worldSize} could not join the group at ${rendezvous.host}:${rendezvous.port} (${rendezvous.source}): ${String((error as Error).message ?? error)}`, { cause: error });
  }
  return new DataParallel(rendezvous, options.backend ?? 'gloo');
}
