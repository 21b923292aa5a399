/**
 * Test support for memory checks: a full garbage collection followed by turns of the event loop, so
 * that pending finalizers (the JS FinalizationRegistry and Node-API's wrapper finalizers) have run
 * before a test reads liveTensors() / finalizedTensors(); and the scaled error tests compare
 * tensors with. Only tests import this file.
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

/**
 * Largest |actual - expected| over the reference's largest magnitude (the absolute difference when
 * the reference is all zeros): the scaled bound STYLE rule 17 asks tests to compare against.
 */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new RangeError(`relativeError: ${actual.length} values against ${expected.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < actual.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}
