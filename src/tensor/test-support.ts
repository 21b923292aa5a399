/**
 * Test support for memory checks: a full garbage collection followed by turns of the event loop, so
 * that pending finalizers (the JS FinalizationRegistry and Node-API's wrapper finalizers) have run
 * before a test reads liveTensors() / finalizedTensors(); and the scaled error tests compare
 * tensors with; a free port and a child-process runner for the data-parallel tests. Only tests
 * import this file.
 */
import { spawn } from 'node:child_process';
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

export { freePort } from '../core/index.js';

export interface ScriptRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** performance.now() when the process exited. */
  exitedAt: number;
}

/** Runs a TypeScript file in a child node (the ranks of the data-parallel tests) and collects its output. */
export function runTsxScript(script: string, args: readonly string[]): Promise<ScriptRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr, exitedAt: performance.now() }));
  });
}
