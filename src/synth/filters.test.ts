/**
 * Array operations against scipy / numpy references (test/fixtures/synth/make_synth_fixtures.py):
 * the z / in-plane blur against scipy.ndimage.gaussian_filter1d(mode='nearest'), and the
 * Radiopaedia window/rescale; plus the noise's standard deviation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Rng, type Shape3 } from '../core/index.js';
import { addNoise, blurAxis, huToRadiopaedia, radiopaediaToHu, ValueNoise } from './filters.js';

interface BlurReference {
  shape: Shape3;
  input: number[];
  cases: { axis: 0 | 1 | 2; sigma: number; truncate: number; output: number[] }[];
}
const reference = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/synth/synth_reference.json', import.meta.url), 'utf8')) as {
  blur: BlurReference;
  radiopaedia: { hu: number[]; value: number[]; backHu: number[] };
};

test('blurAxis matches scipy.ndimage.gaussian_filter1d (mode nearest) along each axis', () => {
  const { shape, input, cases } = reference.blur;
  assert.equal(input.length, shape[0] * shape[1] * shape[2]);
  assert.equal(cases.length, 3);
  for (const c of cases) {
    const data = Float32Array.from(input);
    blurAxis(data, shape, c.axis, c.sigma, c.truncate);
    assert.equal(c.output.length, data.length);
    for (let n = 0; n < data.length; n++) {
      assert.ok(Math.abs(data[n]! - c.output[n]!) < 1e-3, `axis ${c.axis} voxel ${n}: ${data[n]} vs scipy ${c.output[n]}`);
    }
  }
});

test('Radiopaedia mapping matches numpy', () => {
  const { hu, value, backHu } = reference.radiopaedia;
  assert.equal(hu.length, 13);
  hu.forEach((h, n) => {
    assert.equal(huToRadiopaedia(h), value[n], `HU ${h}`);
    assert.ok(Math.abs(radiopaediaToHu(value[n]!) - backHu[n]!) < 1e-9);
  });
});

test('addNoise has the requested standard deviation and zero mean', () => {
  const data = new Float32Array(200_000);
  addNoise(data, 15, new Rng(1));
  let sum = 0;
  let sumSquares = 0;
  for (const v of data) {
    sum += v;
    sumSquares += v * v;
  }
  const mean = sum / data.length;
  const std = Math.sqrt(sumSquares / data.length - mean * mean);
  assert.ok(Math.abs(mean) < 0.2, `mean ${mean}`);
  assert.ok(Math.abs(std - 15) < 0.2, `std ${std}`);
});

test('ValueNoise stays in [0, 1] and is smooth', () => {
  const noise = new ValueNoise(new Rng(2), [0, 0, 0], [50, 50, 50], 10);
  let previous = noise.at(0, 25, 25);
  for (let x = 0.5; x <= 50; x += 0.5) {
    const v = noise.at(x, 25, 25);
    assert.ok(v >= 0 && v <= 1);
    assert.ok(Math.abs(v - previous) < 0.2, 'no jumps between 0.5 mm steps');
    previous = v;
  }
});
