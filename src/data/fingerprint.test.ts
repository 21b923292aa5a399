/** Fingerprint statistics against numpy, and the per-case analysis on an in-memory case. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { identityAffine, type Shape3, type Volume } from '../core/index.js';
import { FingerprintPool, fingerprintCase } from './fingerprint.js';
import { intensityProperties, median, percentile, percentilesInPlace } from './fingerprint_stats.js';

const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/data/data_fixtures.json', import.meta.url), 'utf8'));

test('intensity statistics equal numpy mean, std, median, min, max and percentiles', () => {
  const s = fixtures.stats;
  const props = intensityProperties(Float64Array.from(s.values as number[]));
  for (const key of ['mean', 'std', 'median', 'min', 'max', 'percentile_00_5', 'percentile_99_5'] as const) {
    assert.ok(Math.abs(props[key] - s[key]) < 1e-9, `${key}: ${props[key]} vs ${s[key]}`);
  }
  assert.equal(percentile(s.values, 99.5), s.percentile_99_5);
  assert.equal(median([3, 1, 2, 10]), 2.5);
  assert.deepEqual(percentilesInPlace(Float32Array.from([5, 5, 5, 5]), [0.5, 50]), [5, 5]);
});

function volume<T extends Float32Array | Uint8Array>(data: T, shape: Shape3): Volume<T> {
  return { data, shape, spacing: [2, 0.5, 0.5], affine: identityAffine([0.5, 0.5, 2]) };
}

test('fingerprintCase: crop shape, relative size and foreground samples drawn from label > 0', () => {
  const shape: Shape3 = [4, 6, 5];
  const image = new Float32Array(120);
  const label = new Uint8Array(120);
  for (let z = 1; z < 3; z++) for (let y = 1; y < 5; y++) for (let x = 1; x < 4; x++) image[z * 30 + y * 5 + x] = 10 + z;
  label[1 * 30 + 2 * 5 + 2] = 1;
  label[2 * 30 + 2 * 5 + 2] = 2;
  const result = fingerprintCase([volume(image, shape)], volume(label, shape), 1000);
  assert.deepEqual(result.shapeAfterCrop, [2, 4, 3]);
  assert.equal(result.relativeSizeAfterCrop, 24 / 120);
  const samples = result.samples[0]!;
  assert.equal(samples.length, 1000);
  assert.ok(samples.every((v) => v === 11 || v === 12));
  const elevens = samples.filter((v) => v === 11).length;
  assert.ok(elevens > 400 && elevens < 600, `with replacement, about half: ${elevens}`);
  // Same seed, same draws; no foreground gives no samples.
  assert.deepEqual(fingerprintCase([volume(image, shape)], volume(label, shape), 1000).samples[0], samples);
  assert.equal(fingerprintCase([volume(image, shape)], volume(new Uint8Array(120), shape), 1000).samples[0]!.length, 0);

  const pool = new FingerprintPool(1, 2, 1000);
  pool.add(result, 'A', 'a');
  pool.add(fingerprintCase([volume(image, shape)], volume(new Uint8Array(120), shape), 1000), 'A', 'b');
  const summary = pool.summary();
  assert.equal(summary.numCases, 2);
  assert.deepEqual(summary.medianSpacing, [2, 0.5, 0.5]);
  assert.ok(summary.foregroundIntensityPropertiesPerChannel[0]!.min === 11);
});
