/**
 * Worker thread of the batch loader: receives the BatchSpec once (workerData), then one request
 * { id, batchIndex, slot } per message, writes the batch into that slot's shared arrays (sent with
 * the first request that names the slot) and answers { id, ok: true, inSlot: true, batch } with the
 * rest of the batch, or { id, ok: false, error } with the error as plain data. libtorch runs with
 * one intra-op thread here (the setting is per thread), so N workers use N cores. Message
 * { kind: 'close' } (after the shared `closing` flag is set) ends the thread once its current batch is done.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setNumThreads } from '../../tensor/index.js';
import { errorAsData } from '../preprocess_case_io.js';
import { makeBatch } from './batch.js';
import type { BatchSpec } from './batch_types.js';
import { CaseStore } from './case_store.js';
import type { SlotArrays, WorkerRequest, WorkerResponse } from './loader_pool.js';

const { spec, cacheBytes, closing } = workerData as { spec: BatchSpec; cacheBytes: number; closing: Int32Array };
const store = new CaseStore(cacheBytes);
const slots = new Map<number, SlotArrays>();
setNumThreads(1);
const port = parentPort;
if (port !== null) {
  port.on('message', (request: WorkerRequest) => {
    // On close the loader sets the shared flag, then sends 'close': skip what is still queued and
    // let the thread end on its own (terminate() during a libtorch call would abort the process).
    if (request.kind === 'close') {
      port.close();
      return;
    }
    if (request.arrays !== undefined) slots.set(request.slot, request.arrays);
    if (Atomics.load(closing, 0) === 1) return;
    let response: WorkerResponse;
    try {
      const slot = slots.get(request.slot);
      const { batch } = makeBatch(spec, request.batchIndex, store, slot);
      if (slot !== undefined && batch.image === slot.image && batch.seg === slot.seg) {
        const { image: _image, seg: _seg, ...rest } = batch;
        response = { id: request.id, ok: true, inSlot: true, batch: rest };
        port.postMessage(response);
      } else {
        response = { id: request.id, ok: true, inSlot: false, batch };
        port.postMessage(response, [batch.image.buffer as ArrayBuffer, batch.seg.buffer as ArrayBuffer]);
      }
    } catch (error) {
      response = { id: request.id, ok: false, error: errorAsData(error) };
      port.postMessage(response);
    }
  });
}
