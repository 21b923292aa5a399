/** Normalisation schemes against numpy (float32 arithmetic as nnU-Net's in-place ops). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ctNormalize, normalizationForChannel, rescaleTo01, zscoreNormalize } from './normalize.js';

const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/data/data_fixtures.json', import.meta.url), 'utf8'));

function maxDifference(actual: ArrayLike<number>, expected: number[]): number {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  return worst;
}

test('ctNormalize clips to the percentiles then standardises with the dataset statistics', () => {
  const n = fixtures.normalize;
  const result = ctNormalize(Float32Array.from(n.data as number[]), n.ctProperties);
  assert.ok(maxDifference(result, n.ct) <= 1e-6);
});

test('zscoreNormalize over the whole image and inside the mask only', () => {
  const n = fixtures.normalize;
  assert.ok(maxDifference(zscoreNormalize(Float32Array.from(n.data as number[])), n.zscore) <= 1e-4);
  const seg = Int8Array.from((n.mask as number[]).map((m) => (m ? 0 : -1)));
  assert.ok(maxDifference(zscoreNormalize(Float32Array.from(n.data as number[]), seg), n.zscoreMasked) <= 1e-4);
});

test('scheme from the channel name, as nnU-Net maps it', () => {
  assert.equal(normalizationForChannel('CT'), 'ct');
  assert.equal(normalizationForChannel('noNorm'), 'none');
  assert.equal(normalizationForChannel('T2'), 'zscore');
  assert.deepEqual(Array.from(rescaleTo01(Float32Array.from([2, 4, 6]))), [0, 0.5, 1]);
});
