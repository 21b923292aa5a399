/** The run environment recorded in results.json and sidecars: this CPU, the thread count libtorch runs with, the libraries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuInfo } from '../core/index.js';
import { getNumThreads, runtimeLibraries, setNumThreads } from '../tensor/index.js';
import { runEnvironment } from './environment.js';

test("the environment names this CPU, libtorch's current thread count (or the one given) and the libraries", () => {
  const before = getNumThreads();
  try {
    setNumThreads(1);
    const environment = runEnvironment();
    assert.equal(environment.threads, 1);
    assert.equal(runEnvironment(3).threads, 3);
    assert.deepEqual(environment.cpu, cpuInfo());
    assert.deepEqual(environment.libraries, runtimeLibraries());
  } finally {
    setNumThreads(before);
  }
});
