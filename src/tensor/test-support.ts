/**
 * Test support for memory checks: a full garbage collection followed by turns of the event loop, so
 * that pending finalizers (the JS FinalizationRegistry and Node-API's wrapper finalizers) have run
 * before a test reads liveTensors() / finalizedTensors(). Only tests import this file.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** A full collection only (for RSS readings). */
export function collectGarbage(): void {
  gc();
}

/** Two rounds of collect + one event-loop turn: finalizers queued by the first round run in it. */
export async function collectAndFinalize(): Promise<void> {
  for (let round = 0; round < 2; round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
