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
import { relativeError } from '../tensor/test-support.js';

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
 * max |a - b| / max |b|: the error scaled to the magnitude of the reference tensor. fp32 kernels
 * differ between CPUs (oneDNN picks AVX2, AVX-512 or AMX code, which sums in other orders), so one
 * op moves values by ~1e-7 relative; the 1e-4 bound leaves room for the ~30 ops a gradient passes.
 */
function maxAbs(values: Float32Array): number {
  let worst = 0;
  for (const v of values) worst = Math.max(worst, Math.abs(v));
  return worst;
}

function assertClose(actual: Tensor, expectedName: string, tolerance = 1e-4): void {
  const expected = hostToFloat32(entry(expectedName));
  assert.deepEqual(actual.shape, entry(expectedName).shape, `${expectedName}: shape`);
  const error = relativeError(actual.toFloat32Array(), expected);
  assert.ok(error < tolerance, `${expectedName}: relative error ${error.toExponential(3)} >= ${tolerance}`);
}

/**
 * The bias of a conv followed by an instance norm has an exact gradient of 0 (the norm subtracts
 * each channel's mean, so a constant shift changes nothing), and it stays 0 through SGD (it starts
 * at 0, and weight decay of 0 is 0). Its computed value is summation noise, different on every CPU,
 * so comparing it with PyTorch's relatively measures nothing. Instead both ours and PyTorch's must
 * be below an absolute bound scaled to the layer: the sum of N per-voxel gradients in fp32 carries
 * an error of about u * sqrt(N) times their size (u = 6e-8, N = 2 x 8 x 16 x 16 = 4096 voxels per
 * channel at full resolution: ~4e-6), and the voxel gradients are of the size of the weight
 * gradient of the same conv. Bound: 1e-5 x max |weight gradient| (PyTorch's fixture reaches 9e-7).
 */
const ZERO_GRADIENT_BOUND = 1e-5;

function analyticallyZeroBias(name: string, parameterNames: ReadonlySet<string>): boolean {
  return name.endsWith('.conv.bias') && parameterNames.has(name.replace(/\.conv\.bias$/, '.norm.weight'));
}

/** |values| <= bound, for ours and for the reference, with a message naming the tensor. */
function assertBelow(values: Float32Array, bound: number, label: string): void {
  const worst = maxAbs(values);
  assert.ok(worst <= bound, `${label}: max |value| ${worst.toExponential(3)} > ${bound.toExponential(3)} (analytically 0)`);
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

  const momentum = 0.99;
  const optimizer = new SGD(model.parameterDict(), { lr: config.lr, momentum, nesterov: true, weightDecay: 3e-5 });
  const nameSet = new Set(names);
  const zeroBiases = names.filter((name) => analyticallyZeroBias(name, nameSet));
  assert.equal(zeroBiases.length, 2 * (config.featuresPerStage.length * 2 - 1), 'two convs per encoder and decoder stage are followed by a norm');
  // The bound per zero-gradient bias, from PyTorch's gradient of the same conv's weight at step 0.
  const gradientBound = new Map(zeroBiases.map((name) => {
    const weight = `step0.grad_clipped.${name.replace(/\.bias$/, '.weight')}`;
    return [name, ZERO_GRADIENT_BOUND * maxAbs(hostToFloat32(entry(weight)))];
  }));
  // After step k the bias is lr times a sum of at most (k + 1) gradients, each weighted by at most
  // (1 + momentum)^2 by nesterov momentum: analytically 0, bounded by that many gradient bounds.
  const valueBound = (name: string, step: number) => config.lr * (step + 1) * (1 + momentum) ** 2 * gradientBound.get(name)!;
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
            if (gradientBound.has(name)) {
              assertBelow(grad.toFloat32Array(), gradientBound.get(name)!, `ours: gradient of ${name}`);
              assertBelow(hostToFloat32(entry(`step0.grad_clipped.${name}`)), gradientBound.get(name)!, `PyTorch: gradient of ${name}`);
            } else {
              assertClose(grad, `step0.grad_clipped.${name}`);
            }
          }
        }
        optimizer.step();
        for (const [name, parameter] of model.namedParameters()) {
          if (gradientBound.has(name)) {
            assertBelow(parameter.value.toFloat32Array(), valueBound(name, step), `ours: ${name} after step ${step}`);
            assertBelow(hostToFloat32(entry(`step${step}.after.${name}`)), valueBound(name, step), `PyTorch: ${name} after step ${step}`);
          } else {
            assertClose(parameter.value, `step${step}.after.${name}`);
          }
        }
      });
    }
  });
  optimizer.dispose();
  model.dispose();
  assert.equal(liveTensors(), before, 'every tensor of the test was released');
});
