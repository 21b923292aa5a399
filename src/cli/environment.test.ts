/**
 * Environment variables at the edge: `lesionseg` refuses a malformed LESIONSEG_* value before any
 * work, as one line naming the variable, exit 2; and a valid value runs the command (the addon's
 * own check, before it loads, is src/tensor/binding.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, ROOT, STACK_LINE, type Run } from './test-support.js';

function lesionsegWith(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const missing = path.join(os.tmpdir(), 'lesionseg-environment-test-none.nii.gz');

test('LESIONSEG_CPU_BLOCK_CACHE_MIB=abc (read by the addon in C++) is refused by name, exit 2, one line', async () => {
  const run = await lesionsegWith({ LESIONSEG_CPU_BLOCK_CACHE_MIB: 'abc' }, 'info', missing);
  assert.equal(run.code, 2);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr.trimEnd().split('\n').length, 1);
  assert.match(run.stderr, /^lesionseg: environment variable LESIONSEG_CPU_BLOCK_CACHE_MIB="abc" is not an integer in 0\.\.16777216 MiB \(default 2048: /);
  assert.ok(!run.stderr.includes(STACK_LINE));
});

test('LESIONSEG_DEBUG=yes is refused before the command runs; valid values let it run', async () => {
  const bad = await lesionsegWith({ LESIONSEG_DEBUG: 'yes' }, 'info', missing);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^lesionseg: environment variable LESIONSEG_DEBUG="yes" is not 0 or 1 /);
  // Accepted: the command itself runs and reports the missing file.
  const good = await lesionsegWith({ LESIONSEG_DEBUG: '0', LESIONSEG_CPU_BLOCK_CACHE_MIB: '512', LESIONSEG_MALLOC_TUNING: '1' }, 'info', missing);
  assert.equal(good.code, 2);
  assert.match(good.stderr, /file not found/);
  assert.ok(!good.stderr.includes('environment variable'));
});
