import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../core/index.js';
import { checkMaskPair, checkSpacing, maskOfLabel } from './mask.js';

test('maskOfLabel picks one label of a label map', () => {
  assert.deepEqual(Array.from(maskOfLabel(Uint8Array.from([0, 1, 2, 3, 2]), 2)), [0, 0, 1, 0, 1]);
  assert.deepEqual(Array.from(maskOfLabel(Int16Array.from([-1, 1, 1]), 1)), [0, 1, 1]);
});

test('checks: shape, data length and spacing give InputErrors that say what is wrong', () => {
  const ok = { data: new Uint8Array(6), shape: [1, 2, 3] as const };
  checkMaskPair(ok, ok);
  assert.throws(() => checkMaskPair(ok, { data: new Uint8Array(6), shape: [0, 2, 3] }), /shape must be three positive integers/);
  assert.throws(() => checkMaskPair(ok, { data: new Uint8Array(6), shape: [1, 3, 2] }, 'case_1'), /case_1: pred shape \[1, 2, 3\] differs/);
  assert.deepEqual(checkSpacing([1, 2, 3]), [1, 2, 3]);
  assert.throws(() => checkSpacing([1, Infinity, 3]), InputError);
  assert.throws(() => checkSpacing([1, 2]), InputError);
});
