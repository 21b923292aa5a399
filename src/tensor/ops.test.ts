/**
 * Forward and backward parity of the key ops against PyTorch 1.13 (same libtorch), from fixtures
 * written by test/fixtures/tensor/make_tensor_fixtures.py. Tolerance: relative 1e-5 (fp32), with an
 * absolute floor of 1e-5 times the largest reference magnitude.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as T from './index.js';

interface ArrayEntry { offset: number; shape: number[]; dtype: 'float32' | 'int64' }
interface FixtureCase {
  name: string;
  op: string;
  attrs: Record<string, unknown>;
  inputs: Record<string, ArrayEntry>;
  output: ArrayEntry;
  gradOutput: ArrayEntry;
  grads: Record<string, ArrayEntry>;
}

const dir = new URL('../../test/fixtures/tensor/', import.meta.url);
const index = JSON.parse(readFileSync(new URL('tensor_fixtures.json', dir), 'utf8')) as { cases: FixtureCase[] };
const blob = readFileSync(new URL('tensor_fixtures.bin', dir));

function hostArray(entry: ArrayEntry): Float32Array | BigInt64Array {
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const bytes = blob.buffer.slice(blob.byteOffset + entry.offset, blob.byteOffset + entry.offset + count * (entry.dtype === 'int64' ? 8 : 4));
  return entry.dtype === 'int64' ? new BigInt64Array(bytes) : new Float32Array(bytes);
}

function load(entry: ArrayEntry, requiresGrad: boolean): T.Tensor {
  return T.fromArray(hostArray(entry), entry.shape, { requiresGrad });
}

function assertClose(actual: T.Tensor, expected: ArrayEntry, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.toFloat32Array();
  const b = hostArray(expected) as Float32Array;
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < b.length; i++) {
    const excess = Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)) - (1e-5 * Math.abs(b[i] ?? 0) + 1e-5 * scale);
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      worstAt = i;
    }
  }
  assert.ok(worstAt < 0, `${what}: element ${worstAt} is ${a[worstAt]}, PyTorch gives ${b[worstAt]}`);
}

type Runner = (inputs: Record<string, T.Tensor>, attrs: Record<string, any>) => T.Tensor;

const RUNNERS: Record<string, Runner> = {
  conv3d: (i, a) => T.conv3d(i.x!, i.weight!, i.bias ?? null, a),
  convTranspose3d: (i, a) => T.convTranspose3d(i.x!, i.weight!, i.bias ?? null, a),
  instanceNorm: (i, a) => T.instanceNorm(i.x!, i.weight!, i.bias!, a.eps),
  layerNorm: (i, a) => T.layerNorm(i.x!, a.normalizedShape, i.weight!, i.bias!, a.eps),
  leakyRelu: (i, a) => T.leakyRelu(i.x!, a.negativeSlope),
  softmax: (i, a) => T.softmax(i.x!, a.dim),
  logSoftmax: (i, a) => T.logSoftmax(i.x!, a.dim),
  crossEntropy: (i, a) => T.crossEntropy(i.logits!, i.target!, { ignoreIndex: a.ignoreIndex }),
  interpolate: (i, a) => T.interpolate(i.x!, a as { size: number[]; mode: 'trilinear' }),
  gridSample: (i, a) => T.gridSample(i.x!, i.grid!, a as { mode: 'bilinear'; paddingMode: 'zeros'; alignCorners: boolean }),
  pad: (i, a) => T.pad(i.x!, a.pads, a.mode, a.value),
  flip: (i, a) => T.flip(i.x!, a.dims),
  linear: (i) => T.linear(i.x!, i.weight!, i.bias!),
  sum: (i, a) => T.sum(i.x!, a.dims, a.keepDim),
  mean: (i, a) => T.mean(i.x!, a.dims, a.keepDim),
  adaptiveAvgPool3d: (i, a) => T.adaptiveAvgPool3d(i.x!, a.outputSize),
};

test('the fixture covers every op the runners know', () => {
  const ops = new Set(index.cases.map((c) => c.op));
  assert.deepEqual([...ops].sort(), Object.keys(RUNNERS).sort());
  assert.equal(index.cases.length, 24);
});

for (const fixture of index.cases) {
  test(`${fixture.name}: forward and backward match PyTorch`, () => {
    const before = T.liveTensors();
    T.scope(() => {
      const inputs: Record<string, T.Tensor> = {};
      for (const [name, entry] of Object.entries(fixture.inputs)) inputs[name] = load(entry, entry.dtype === 'float32');
      const runner = RUNNERS[fixture.op];
      assert.ok(runner, `no runner for ${fixture.op}`);
      const output = runner(inputs, fixture.attrs);
      assertClose(output, fixture.output, 'output');
      output.backward(load(fixture.gradOutput, false));
      for (const [name, entry] of Object.entries(fixture.grads)) {
        const grad = inputs[name]!.grad;
        assert.ok(grad, `${name} has a gradient`);
        assertClose(grad, entry, `d/d${name}`);
      }
    });
    assert.equal(T.liveTensors(), before, 'the scope released everything');
  });
}
