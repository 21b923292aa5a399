/**
 * The one door to the addon refuses a malformed addon variable before it loads anything: C++ reads
 * LESIONSEG_CPU_BLOCK_CACHE* with getenv, so a value it would misread must never reach it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { InputError } from '../core/index.js';
import { loadBinding } from './binding.js';

test('loadBinding checks the addon variables before it loads anything', () => {
  const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'env-binding-')), 'broken.node');
  fs.writeFileSync(broken, 'not a shared object');
  const saved = process.env.LESIONSEG_CPU_BLOCK_CACHE;
  process.env.LESIONSEG_CPU_BLOCK_CACHE = 'off';
  try {
    // Without the check this file would be dlopen'ed and refused as 'addon-unloadable'.
    assert.throws(() => loadBinding(broken), (error: unknown) => error instanceof InputError && error.code === 'bad-environment' && /LESIONSEG_CPU_BLOCK_CACHE="off"/.test(error.message));
  } finally {
    if (saved === undefined) delete process.env.LESIONSEG_CPU_BLOCK_CACHE;
    else process.env.LESIONSEG_CPU_BLOCK_CACHE = saved;
    fs.rmSync(path.dirname(broken), { recursive: true, force: true });
  }
});
