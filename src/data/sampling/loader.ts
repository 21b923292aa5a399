/**
 * createBatchLoader: nnU-Net-style training (or validation) batches, in order, batch k a pure
 * function of (seed, k). With `workers: 0` each batch is made inside next(); with N workers the
 * next `prefetch` batches (default 2N) are made in the background by worker threads and handed out
 * in order, so at most `prefetch` batches are in flight or waiting. `waitSeconds` adds up the time
 * the caller spent blocked in next(). Each thread keeps the cases it has read in memory
 * (CaseStore, LRU under `cacheBytes`). Batches handed back by release() are refilled: in this
 * thread, or (worker threads) their shared slot takes a later batch of the worker that made it.
 */
import * as fs from 'node:fs';
import { InputError } from '../../core/index.js';
import { casePaths } from '../preprocess_case_io.js';
import { previousStageFile } from '../previous_stage.js';
import { batchSpecFromOptions, fitsBatch, makeBatch, type BatchBuffers } from './batch.js';
import type { BatchLoader, BatchSpec, HostBatch, LoaderOptions } from './batch_types.js';
import { CaseStore, DEFAULT_CACHE_BYTES } from './case_store.js';
import { LoaderPool } from './loader_pool.js';

/** Every case file the loader will read must exist; report all missing ones at once. */
function checkCasesExist(spec: BatchSpec): void {
  const missing: string[] = [];
  spec.preprocessedDirs.forEach((dir, task) => {
    for (const id of spec.caseIds[task]!) {
      const paths = casePaths(dir, id);
      const previous = spec.previousStage !== null ? [previousStageFile(spec.previousStage.dir, id)] : [];
      for (const file of [paths.data, paths.seg, paths.properties, ...previous]) if (!fs.existsSync(file)) missing.push(file);
    }
  });
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '');
    throw new InputError(`${missing.length} preprocessed case file(s) missing: ${shown} (run lesionseg preprocess first)`, {
      file: missing[0]!,
      code: 'missing-preprocessed',
    });
  }
}

class PrefetchingLoader implements BatchLoader {
  private index = 0;
  private waited = 0;
  private readonly inFlight = new Map<number, Promise<HostBatch>>();
  private closed = false;
  /** Released batches' arrays, refilled by the next batch made in this thread (no workers). */
  private readonly spare: BatchBuffers[] = [];

  constructor(
    private readonly spec: BatchSpec,
    private readonly pool: LoaderPool | null,
    private readonly store: CaseStore,
    private readonly prefetch: number,
  ) {}

  get position(): number {
    return this.index;
  }

  get waitSeconds(): number {
    return this.waited;
  }

  private fill(): void {
    if (this.pool === null) return;
    for (let k = this.index; k < this.index + this.prefetch; k++) {
      if (this.inFlight.has(k)) continue;
      const promise = this.pool.request(k);
      // A batch that is dropped by seek() or close() must not become an unhandled rejection.
      promise.catch(() => undefined);
      this.inFlight.set(k, promise);
    }
  }

  async next(): Promise<HostBatch> {
    if (this.closed) throw new Error('the batch loader is closed');
    const started = performance.now();
    const batchIndex = this.index;
    this.index += 1;
    try {
      if (this.pool === null) return makeBatch(this.spec, batchIndex, this.store, this.spare.pop()).batch;
      this.fill();
      const promise = this.inFlight.get(batchIndex) ?? this.pool.request(batchIndex);
      this.inFlight.delete(batchIndex);
      this.fill();
      return await promise;
    } finally {
      this.waited += (performance.now() - started) / 1000;
    }
  }

  seek(batchIndex: number): void {
    if (!Number.isInteger(batchIndex) || batchIndex < 0) throw new RangeError(`seek: batch index must be an integer >= 0, got ${batchIndex}`);
    this.index = batchIndex;
    for (const [k, promise] of [...this.inFlight]) {
      if (k >= batchIndex && k < batchIndex + this.prefetch) continue;
      this.inFlight.delete(k);
      // Nobody will read a dropped batch: its arrays are free once it is made.
      promise.then((batch) => this.release(batch), () => undefined);
    }
    this.fill();
  }

  release(batch: HostBatch): void {
    if (this.closed || !fitsBatch(this.spec, batch.shape[0], batch)) return;
    if (this.pool !== null) this.pool.giveBack(batch);
    else if (!this.spare.some((buffers) => buffers.image === batch.image)) this.spare.push({ image: batch.image, seg: batch.seg });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.spare.length = 0;
    this.inFlight.clear();
    if (this.pool !== null) await this.pool.close();
  }
}

export function createBatchLoader(options: LoaderOptions): BatchLoader {
  const spec = batchSpecFromOptions(options);
  checkCasesExist(spec);
  const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
  const prefetch = options.prefetch ?? 2 * Math.max(options.workers, 1);
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new InputError(`prefetch must be a positive integer, got ${prefetch}`, { code: 'bad-arguments' });
  const pool = options.workers > 0 ? new LoaderPool(spec, options.workers, cacheBytes) : null;
  const loader = new PrefetchingLoader(spec, pool, new CaseStore(cacheBytes), prefetch);
  loader.seek(0); // starts the workers on the first batches right away
  return loader;
}
