/**
 * Parity with PyTorch: a small PlainConvUNet built by test/fixtures/nn/make_unet_fixtures.py (the
 * same module names as dynamic-network-architectures), its deep-supervision outputs, nnU-Net's
 * Dice+CE loss, gradients after clipping, and parameters after two SGD (nesterov) steps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../io/index.js';
import { fromArray, reshape, scope, liveTensors, type Tensor } from '../tensor/index.js';
import {
  SGD,
  clipGradNorm,
  deepSupervisionLoss,
  deepSupervisionTargets,
  diceCeLoss,
  hostToFloat32,
  loadStateDict,
  type HostTensor,
} from '../nn/index.js';
import { PlainConvUNet, type UNetConfig } from './index.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/nn/unet_step.safetensors');
const { tensors, metadata } = readSafetensors(fixture);
const config = JSON.parse(metadata.config!) as UNetConfig & {
  inputShape: number[];
  batchDice: boolean;
  lr: number;
  clipNorm: number;
  parameterNames: string[];
};

function entry(name: string): HostTensor {
  const value = tensors.get(name);
  assert.ok(value, `fixture has no tensor ${name}`);
  return value as HostTensor;
}

function hostTensor(name: string): Tensor {
  const e = entry(name);
  if (e.dtype === 'I64') {
    const bytes = e.data;
    const copy = new BigInt64Array(bytes.byteLength / 8);
    new Uint8Array(copy.buffer).set(bytes);
    return fromArray(copy, e.shape);
  }
  return fromArray(hostToFloat32(e), e.shape);
}

/**
 * max |a - b| / max(max |b|, 1e-5). The floor matters only for the conv biases in front of an
 * instance norm: their exact gradient is 0 (the norm removes the mean), so PyTorch's values are
 * rounding noise around 1e-10 and only an absolute comparison makes sense for them.
 */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let maxDiff = 0;
  let maxRef = 1e-5;
  for (let i = 0; i < actual.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxDiff / maxRef;
}

function assertClose(actual: Tensor, expectedName: string, tolerance = 1e-4): void {
  const expected = hostToFloat32(entry(expectedName));
  assert.deepEqual(actual.shape, entry(expectedName).shape, `${expectedName}: shape`);
  const error = relativeError(actual.toFloat32Array(), expected);
  assert.ok(error < tolerance, `${expectedName}: relative error ${error.toExponential(3)} >= ${tolerance}`);
}

test('PlainConvUNet matches PyTorch: names, outputs, loss, clipped gradients and two SGD steps', () => {
  const before = liveTensors();
  const model = new PlainConvUNet({ ...config, deepSupervision: true });
  const names = [...model.namedParameters()].map(([name]) => name);
  assert.deepEqual(names, config.parameterNames, 'parameter names and order equal PyTorch state_dict (aliases excluded)');

  const report = loadStateDict(model, tensors as ReadonlyMap<string, HostTensor>, { rename: (name) => `init.${name}` });
  assert.equal(report.loaded.length, names.length);
  assert.deepEqual(report.missing, []);
  assert.deepEqual(report.shapeMismatch, []);

  const optimizer = new SGD(model.parameterDict(), { lr: config.lr, momentum: 0.99, nesterov: true, weightDecay: 3e-5 });
  scope(() => {
    const x = hostTensor('input');
    const target = hostTensor('target');
    const targets = deepSupervisionTargets(target, config.strides, config.featuresPerStage.length - 1);
    targets.forEach((t, i) => assert.deepEqual(Array.from(t.toFloat32Array()), Array.from(hostToFloat32(entry(`ds_target.${i}`))), `ds target ${i}`));

    for (let step = 0; step < 2; step++) {
      scope(() => {
        model.zeroGrad();
        const outputs = model.forward(x);
        if (step === 0) outputs.forEach((o, i) => assertClose(o, `step0.output.${i}`));
        const loss = deepSupervisionLoss(outputs, targets, (o, t) => diceCeLoss(o, t, { batchDice: config.batchDice }));
        assertClose(reshape(loss, [1]), `step${step}.loss`, 1e-5);
        loss.backward();
        const gradNorm = clipGradNorm(model.parameters(), config.clipNorm);
        const expectedNorm = hostToFloat32(entry(`step${step}.grad_norm`))[0]!;
        assert.ok(Math.abs(gradNorm - expectedNorm) / expectedNorm < 1e-4, `grad norm ${gradNorm} vs ${expectedNorm}`);
        if (step === 0) {
          for (const [name, parameter] of model.namedParameters()) {
            const grad = parameter.value.grad;
            if (!tensors.has(`step0.grad_clipped.${name}`)) {
              assert.equal(grad, null, `${name} has weight 0 in deep supervision: no gradient`);
              continue;
            }
            assert.ok(grad, `${name} has a gradient`);
            assertClose(grad, `step0.grad_clipped.${name}`);
          }
        }
        optimizer.step();
        for (const [name, parameter] of model.namedParameters()) assertClose(parameter.value, `step${step}.after.${name}`);
      });
    }
  });
  optimizer.dispose();
  model.dispose();
  assert.equal(liveTensors(), before, 'every tensor of the test was released');
});
