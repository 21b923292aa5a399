/**
 * Worker thread of preprocessDataset: receives the plan once (workerData), then one case task per
 * message; answers { id, ok: true } or { id, ok: false, error } with the error as plain data.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorAsData, processCaseTask, type CaseTask, type WorkerReply } from './preprocess_case_io.js';
import type { Plan } from './planning_schema.js';

const plan = (workerData as { plan: Plan }).plan;
const port = parentPort;
if (port !== null) {
  port.on('message', (task: CaseTask) => {
    processCaseTask(task, plan).then(
      () => port.postMessage({ id: task.id, ok: true } satisfies WorkerReply),
      (error: unknown) => port.postMessage({ id: task.id, ok: false, error: errorAsData(error) } satisfies WorkerReply),
    );
  });
}
