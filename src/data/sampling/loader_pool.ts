/**
 * A small pool of batch-making worker threads: each request goes to the worker with the fewest
 * outstanding requests; answers are matched to requests by id. A batch's arrays are transferred
 * to this thread, and giveBack() transfers them back to the worker that made them, which fills
 * them with a later batch. A crashed worker fails its outstanding requests and every later one
 * (the loader surfaces that error from next()).
 */
import { Worker } from 'node:worker_threads';
import { errorFromData, type WorkerError } from '../preprocess_case_io.js';
import type { BatchSpec, HostBatch } from './batch_types.js';

export type WorkerRequest = { kind: 'batch'; id: number; batchIndex: number } | { kind: 'buffers'; image: Float32Array; seg: Int8Array } | { kind: 'close' };

/** How long close() waits for a worker to finish its current batch before terminating it. */
const CLOSE_TIMEOUT_MS = 30_000;

export type WorkerResponse = { id: number; ok: true; batch: HostBatch } | { id: number; ok: false; error: WorkerError };

interface Pending {
  resolve: (batch: HostBatch) => void;
  reject: (error: Error) => void;
  worker: number;
}

/**
 * Built code runs loader_worker.js directly. From the TypeScript sources (tsx), Node 20 does not
 * pass tsx's loader to worker threads, so a small bootstrap registers tsx first (as
 * preprocess_dataset does).
 */
function startWorker(spec: BatchSpec, cacheBytes: number, closing: Int32Array): Worker {
  const workerData = { spec, cacheBytes, closing };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./loader_worker.js', import.meta.url), { workerData });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./loader_worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

export class LoaderPool {
  private readonly workers: Worker[];
  private readonly outstanding: number[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | null = null;
  private closed = false;
  /** Shared flag: 1 once closing, so workers skip the requests still queued instead of computing them. */
  private readonly closing = new Int32Array(new SharedArrayBuffer(4));
  private readonly exited: Promise<void>[];
  /** The worker that made each batch image still out (its arrays go back there). */
  private readonly madeBy = new WeakMap<Float32Array, number>();

  constructor(spec: BatchSpec, count: number, cacheBytes: number) {
    this.workers = Array.from({ length: count }, () => startWorker(spec, cacheBytes, this.closing));
    this.exited = this.workers.map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())));
    this.outstanding = this.workers.map(() => 0);
    this.workers.forEach((worker, index) => {
      worker.on('message', (response: WorkerResponse) => this.settle(response));
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`batch loader worker ${index} exited with code ${code}`));
      });
    });
  }

  request(batchIndex: number): Promise<HostBatch> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the batch loader is closed'));
    let target = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.outstanding[i]! < this.outstanding[target]!) target = i;
    const id = this.nextId++;
    this.outstanding[target]! += 1;
    return new Promise<HostBatch>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: target });
      this.workers[target]!.postMessage({ kind: 'batch', id, batchIndex } satisfies WorkerRequest);
    });
  }

  private settle(response: WorkerResponse): void {
    const entry = this.pending.get(response.id);
    if (entry === undefined) return;
    this.pending.delete(response.id);
    this.outstanding[entry.worker]! -= 1;
    if (response.ok) {
      this.madeBy.set(response.batch.image, entry.worker);
      entry.resolve(response.batch);
    }
    else entry.reject(errorFromData(response.error));
  }

  /** Transfer a batch's arrays back to the worker that made it (they are detached here afterwards). */
  giveBack(batch: HostBatch): void {
    const worker = this.madeBy.get(batch.image);
    if (worker === undefined || this.closed || this.failure !== null) return;
    this.madeBy.delete(batch.image);
    const message = { kind: 'buffers', image: batch.image, seg: batch.seg } satisfies WorkerRequest;
    this.workers[worker]!.postMessage(message, [batch.image.buffer as ArrayBuffer, batch.seg.buffer as ArrayBuffer]);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const entry of this.pending.values()) entry.reject(this.failure);
    this.pending.clear();
    this.outstanding.fill(0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.pending.values()) entry.reject(new Error('the batch loader was closed'));
    this.pending.clear();
    // Terminating a worker in the middle of a libtorch call aborts the whole process, so ask each
    // worker to stop after its current batch and wait for it; terminate only as a last resort.
    Atomics.store(this.closing, 0, 1);
    for (const worker of this.workers) worker.postMessage({ kind: 'close' } satisfies WorkerRequest);
    await Promise.all(
      this.workers.map(async (worker, index) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS);
        });
        const outcome = await Promise.race([this.exited[index]!.then(() => 'exited' as const), timeout]);
        clearTimeout(timer);
        if (outcome === 'timeout') await worker.terminate();
      }),
    );
  }
}
