/** Unit tests of the nn layer's pure parts and module bookkeeping, against hand-computed values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { liveTensors, scope } from '../tensor/index.js';
import {
  Conv3d,
  Module,
  deepSupervisionShapes,
  deepSupervisionWeights,
  fanIn,
  hostToFloat32,
  kaimingStd,
  loadStateDict,
  polyLr,
  stateDict,
  type HostTensor,
} from './index.js';
import { PlainConvUNet } from '../models/index.js';

test('deep supervision weights as nnU-Net (6 stages -> 5 outputs)', () => {
  const w = deepSupervisionWeights(5);
  const expected = [8 / 15, 4 / 15, 2 / 15, 1 / 15, 0];
  w.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-12));
  assert.deepEqual(deepSupervisionWeights(1), [1]);
});

test('deep supervision shapes divide by cumulative strides', () => {
  const shapes = deepSupervisionShapes([50, 160, 192], [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]], 4);
  assert.deepEqual(shapes, [[50, 160, 192], [50, 80, 96], [25, 40, 48], [13, 20, 24]]);
});

test('poly learning rate (1 - e/E)^0.9', () => {
  assert.equal(polyLr(0, 1000), 0.01);
  assert.ok(Math.abs(polyLr(999, 1000) - 0.01 * 0.001 ** 0.9) < 1e-15);
  assert.ok(Math.abs(polyLr(500, 1000) - 0.01 * 0.5 ** 0.9) < 1e-15);
  assert.equal(polyLr(1000, 1000), 0);
  assert.throws(() => polyLr(0, 0), /maxEpochs/);
});

test('kaiming std uses PyTorch fan_in (dim 1 x receptive field) and the leaky-ReLU gain', () => {
  assert.equal(fanIn([32, 16, 3, 3, 3]), 16 * 27);
  assert.equal(fanIn([64, 32, 2, 2, 2]), 32 * 8); // transposed conv [in, out, k]: PyTorch uses dim 1 too
  assert.ok(Math.abs(kaimingStd([32, 16, 3, 3, 3]) - Math.sqrt(2 / (1 + 1e-4)) / Math.sqrt(432)) < 1e-15);
});

test('host decoding of F16 and BF16', () => {
  const f16: HostTensor = { dtype: 'F16', shape: [4], data: new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001]).buffer) };
  const values = hostToFloat32(f16);
  assert.equal(values[0], 1);
  assert.equal(values[1], -2);
  assert.ok(Math.abs(values[2]! - 0.333251953125) < 1e-9);
  assert.ok(Math.abs(values[3]! - 2 ** -24) < 1e-12);
  const bf16: HostTensor = { dtype: 'BF16', shape: [2], data: new Uint8Array(new Uint16Array([0x3f80, 0x4049]).buffer) };
  const b = hostToFloat32(bf16);
  assert.equal(b[0], 1);
  assert.equal(b[1], 3.140625);
  assert.throws(() => hostToFloat32({ dtype: 'F32', shape: [3], data: new Uint8Array(8) }), /needs 12 bytes/);
});

class Twice extends Module {
  constructor() {
    super();
    this.addModule('a', new Conv3d(1, 2, 3));
    this.addModule('a', new Conv3d(1, 2, 3));
  }
}

test('registering a name twice throws', () => {
  assert.throws(() => new Twice(), /duplicate name 'a'/);
});

const tiny = { inputChannels: 1, numClasses: 2, featuresPerStage: [2, 4], kernelSizes: [[3, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [2, 2, 2]], deepSupervision: true };

test('freeze by prefix; counts split into trainable and frozen', () => {
  const model = new PlainConvUNet(tiny);
  const total = model.countParameters().total;
  // encoder: (1*2*27+2 + 2+2) + (2*2*27+2 + 4) + (2*4*27+4 + 4+4) + (4*4*27+4 + 8)
  const encoder = 1 * 2 * 27 + 2 + 4 + 2 * 2 * 27 + 2 + 4 + 2 * 4 * 27 + 4 + 8 + 4 * 4 * 27 + 4 + 8;
  assert.equal(model.freeze('encoder.'), 16);
  assert.deepEqual(model.countParameters(), { trainable: total - encoder, frozen: encoder, total });
  for (const [name, p] of model.namedParameters()) assert.equal(p.value.requiresGrad, !name.startsWith('encoder.'));
  model.dispose();
});

test('partial loading reports loaded, missing, unexpected and shape mismatches', () => {
  const before = liveTensors();
  const source = new PlainConvUNet(tiny);
  const state = stateDict(source);
  const target = new PlainConvUNet({ ...tiny, numClasses: 3 });
  const extra = new Map(state);
  extra.set('decoder.extra.weight', state.get('decoder.seg_layers.0.bias')!);
  extra.delete('encoder.stages.0.0.convs.0.conv.bias');
  const report = loadStateDict(target, extra);
  assert.deepEqual(report.missing, ['encoder.stages.0.0.convs.0.conv.bias']);
  assert.deepEqual(report.unexpected, ['decoder.extra.weight']);
  assert.deepEqual(report.shapeMismatch.map((m) => m.name), ['decoder.seg_layers.0.weight', 'decoder.seg_layers.0.bias']);
  assert.deepEqual(report.shapeMismatch[0]!.expected, [3, 2, 1, 1, 1]);
  const skipping = loadStateDict(target, state, { skip: ['decoder.seg_layers.'] });
  assert.equal(skipping.shapeMismatch.length, 0);
  assert.equal(skipping.loaded.length, [...target.namedParameters()].length - 2);
  // loaded values are equal to the source
  const a = scope(() => source.encoder.stages.at(1).at(0).convs.at(0).conv.weight.value.toFloat32Array());
  const b = scope(() => target.encoder.stages.at(1).at(0).convs.at(0).conv.weight.value.toFloat32Array());
  assert.deepEqual(Array.from(a), Array.from(b));
  source.dispose();
  target.dispose();
  assert.equal(liveTensors(), before);
});
