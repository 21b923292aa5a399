/**
 * Selective Fusion and HybridUNet against PyTorch (test/fixtures/transfer/make_transfer_fixtures.py):
 * parameter names, the fused output and the attention weights of one unit (a + b = 1 per channel),
 * and the deep-supervision outputs of a hybrid network with fusion at every level and at the
 * bottleneck only; parameter counts by formula and by the PyTorch model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../io/index.js';
import { add, autocast, fromArray, liveTensors, scope, type Tensor } from '../tensor/index.js';
import { hostToFloat32, loadStateDict, type HostTensor } from '../nn/index.js';
import {
  HybridUNet,
  PlainConvUNet,
  SelectiveFusion,
  fusedLevels,
  selectiveFusionParameterCount,
  selectiveFusionWidth,
  type UNetConfig,
} from './index.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/transfer/transfer_fixtures.safetensors');
const { tensors, metadata } = readSafetensors(fixture);
const state = tensors as ReadonlyMap<string, HostTensor>;
const meta = JSON.parse(metadata.meta!) as {
  config: UNetConfig;
  inputShape: number[];
  fusionParameterNames: string[];
  allParameterNames: string[];
  bottleneckParameterNames: string[];
  counts: Record<string, { trainable: number; frozen: number }> & { encoder: number; fusionUnit16: number };
};

function entry(name: string): HostTensor {
  const value = state.get(name);
  assert.ok(value, `fixture has no tensor ${name}`);
  return value;
}

function hostTensor(name: string): Tensor {
  return fromArray(hostToFloat32(entry(name)), entry(name).shape);
}

function assertClose(actual: Tensor, expectedName: string, tolerance = 1e-4): void {
  const expected = hostToFloat32(entry(expectedName));
  assert.deepEqual(actual.shape, entry(expectedName).shape, `${expectedName}: shape`);
  const values = actual.toFloat32Array();
  let maxDiff = 0;
  let maxRef = 1e-5;
  for (let i = 0; i < values.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(values[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  assert.ok(maxDiff / maxRef < tolerance, `${expectedName}: relative error ${(maxDiff / maxRef).toExponential(3)}`);
}

function loadFrom(model: PlainConvUNet | HybridUNet | SelectiveFusion, prefix: string): void {
  const report = loadStateDict(model, state, { rename: (name) => prefix + name });
  assert.equal(report.missing.length, 0, `missing ${report.missing.join(', ')}`);
  assert.equal(report.shapeMismatch.length, 0);
}

test('selective fusion width: d = max(floor(C / r), minWidth)', () => {
  assert.equal(selectiveFusionWidth(320), 20);
  assert.equal(selectiveFusionWidth(32), 8);
  assert.equal(selectiveFusionWidth(4), 8);
  assert.equal(selectiveFusionWidth(64, 4, 2), 16);
  assert.throws(() => selectiveFusionWidth(0), RangeError);
});

test('Selective Fusion matches PyTorch: names, output, attention weights a + b = 1 per channel', () => {
  const before = liveTensors();
  const unit = new SelectiveFusion(16);
  assert.deepEqual([...unit.namedParameters()].map(([n]) => n), meta.fusionParameterNames);
  assert.equal(unit.countParameters().total, meta.counts.fusionUnit16);
  assert.equal(selectiveFusionParameterCount(16), meta.counts.fusionUnit16);
  loadFrom(unit, 'fusion.init.');
  scope(() => {
    const { output, a, b } = unit.forwardWithAttention(hostTensor('fusion.dedicated'), hostTensor('fusion.adapted'));
    assert.deepEqual(output.shape, [2, 16, 2, 4, 4]);
    assertClose(output, 'fusion.output');
    assertClose(a, 'fusion.a');
    assertClose(b, 'fusion.b');
    const sums = add(a, b).toFloat32Array();
    assert.equal(sums.length, 2 * 16);
    for (const value of sums) assert.ok(Math.abs(value - 1) < 1e-6, `a + b = ${value}`);
    // The attention is not trivially one-sided on this input.
    const aValues = a.toFloat32Array();
    assert.ok(Math.min(...aValues) < 0.45 && Math.max(...aValues) > 0.55, 'a varies across channels');
  });
  assert.throws(() => scope(() => unit.forward(hostTensor('fusion.dedicated'), hostTensor('input'))), /selective fusion with 16 channels/);
  unit.dispose();
  assert.equal(liveTensors(), before);
});

for (const fuseLevels of ['all', 'bottleneck'] as const) {
  test(`HybridUNet (fuseLevels ${fuseLevels}) matches PyTorch: names, deep-supervision outputs, counts`, () => {
    const before = liveTensors();
    const model = new HybridUNet(meta.config, { fuseLevels });
    const names = [...model.namedParameters()].map(([n]) => n);
    assert.deepEqual(names, meta[`${fuseLevels}ParameterNames`]);
    assert.deepEqual([...model.fusion.units.keys()], fusedLevels(3, fuseLevels));
    assert.deepEqual(fusedLevels(3, fuseLevels), fuseLevels === 'all' ? [0, 1, 2] : [2]);
    loadFrom(model, `${fuseLevels}.init.`);
    model.freeze(model.keyToAdaptedEncoder);
    const counts = model.countParameters();
    assert.deepEqual({ trainable: counts.trainable, frozen: counts.frozen }, meta.counts[`hybrid-${fuseLevels}`]);
    scope(() => {
      const outputs = model.forward(hostTensor('input'));
      assert.deepEqual(outputs.map((o) => o.shape), [[2, 2, 4, 8, 8], [2, 2, 4, 4, 4]]);
      outputs.forEach((o, i) => assertClose(o, `${fuseLevels}.output.${i}`));
    });
    // Mixed precision (bf16 autocast on CPU) runs through the fusion units and stays near fp32.
    scope(() => {
      const outputs = autocast({ device: { type: 'cpu' }, dtype: 'bfloat16' }, () => model.forward(hostTensor('input')));
      outputs.forEach((o, i) => assertClose(o, `${fuseLevels}.output.${i}`, 0.1));
    });
    model.deepSupervision = false;
    scope(() => assert.deepEqual(model.forward(hostTensor('input')).map((o) => o.shape), [[2, 2, 4, 8, 8]]));
    model.dispose();
    assert.equal(liveTensors(), before);
  });
}

test('PlainConvUNet parameter counts equal the PyTorch model (scratch, frozen encoder)', () => {
  const model = new PlainConvUNet(meta.config);
  assert.equal(model.countParameters().trainable, meta.counts.scratch!.trainable);
  model.freeze(model.keyToEncoder);
  const counts = model.countParameters();
  assert.deepEqual({ trainable: counts.trainable, frozen: counts.frozen }, meta.counts['frozen-encoder']);
  assert.equal(counts.frozen, meta.counts.encoder);
  model.dispose();
});
