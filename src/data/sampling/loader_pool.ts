/**
 * A small pool of batch-making worker threads: each request goes to the worker with the fewest
 * outstanding requests; answers are matched to requests by id. Each batch is written into a slot:
 * image and label arrays on SharedArrayBuffers, made here once and shared with one worker, which
 * fills the slot a request names and answers with the rest of the batch. A slot is used again once
 * the consumer hands its batch back (giveBack); until then a request takes another free slot of
 * that worker or a new one. No array is allocated or transferred per batch, so neither thread's
 * garbage collector has large buffers to account for. A crashed worker fails its outstanding
 * requests and every later one (the loader surfaces that error from next()).
 */
import { Worker } from 'node:worker_threads';
import { errorFromData, type WorkerError } from '../preprocess_case_io.js';
import { batchChannels } from './batch.js';
import type { BatchSpec, HostBatch } from './batch_types.js';

/** A batch slot's arrays (views of SharedArrayBuffers): sent once, with the first request that uses the slot. */
export interface SlotArrays {
  image: Float32Array;
  seg: Int8Array;
}

export type WorkerRequest = { kind: 'batch'; id: number; batchIndex: number; slot: number; arrays?: SlotArrays } | { kind: 'close' };

/** The batch without its arrays when it was written into the request's slot (`inSlot`), else the whole batch (arrays transferred). */
export type WorkerResponse =
  | { id: number; ok: true; inSlot: true; batch: Omit<HostBatch, 'image' | 'seg'> }
  | { id: number; ok: true; inSlot: false; batch: HostBatch }
  | { id: number; ok: false; error: WorkerError };

/** How long close() waits for a worker to finish its current batch before terminating it. */
const CLOSE_TIMEOUT_MS = 30_000;

interface Slot extends SlotArrays {
  index: number;
  worker: number;
}

interface Pending {
  resolve: (batch: HostBatch) => void;
  reject: (error: Error) => void;
  worker: number;
  slot: Slot;
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
  /** Every slot, by index; the free ones per worker; the slot of each batch image handed out. */
  private readonly slots: Slot[] = [];
  private readonly free: Slot[][];
  private readonly slotOf = new Map<Float32Array, Slot>();
  private readonly imageLength: number;
  private readonly segLength: number;

  constructor(spec: BatchSpec, count: number, cacheBytes: number) {
    const voxels = spec.finalPatchSize[0] * spec.finalPatchSize[1] * spec.finalPatchSize[2];
    const samples = spec.sampleRange[1] - spec.sampleRange[0];
    this.imageLength = samples * batchChannels(spec) * voxels;
    this.segLength = samples * voxels;
    this.free = Array.from({ length: count }, () => []);
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
    let slot = this.free[target]!.pop();
    let arrays: SlotArrays | undefined;
    if (slot === undefined) {
      arrays = {
        image: new Float32Array(new SharedArrayBuffer(this.imageLength * Float32Array.BYTES_PER_ELEMENT)),
        seg: new Int8Array(new SharedArrayBuffer(this.segLength)),
      };
      slot = { ...arrays, index: this.slots.length, worker: target };
      this.slots.push(slot);
    }
    const taken = slot;
    return new Promise<HostBatch>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: target, slot: taken });
      const request: WorkerRequest = { kind: 'batch', id, batchIndex, slot: taken.index, ...(arrays !== undefined ? { arrays } : {}) };
      this.workers[target]!.postMessage(request);
    });
  }

  private settle(response: WorkerResponse): void {
    const entry = this.pending.get(response.id);
    if (entry === undefined) return;
    this.pending.delete(response.id);
    this.outstanding[entry.worker]! -= 1;
    if (!response.ok) {
      this.free[entry.worker]!.push(entry.slot);
      entry.reject(errorFromData(response.error));
    } else if (response.inSlot) {
      this.slotOf.set(entry.slot.image, entry.slot);
      entry.resolve({ ...response.batch, image: entry.slot.image, seg: entry.slot.seg });
    } else {
      this.free[entry.worker]!.push(entry.slot);
      entry.resolve(response.batch);
    }
  }

  /** A batch from this pool is no longer read: its slot takes a later batch of its worker. */
  giveBack(batch: HostBatch): void {
    const slot = this.slotOf.get(batch.image);
    if (slot === undefined) return;
    this.slotOf.delete(batch.image);
    this.free[slot.worker]!.push(slot);
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
