/**
 * Non-finite weights: firstNonFinite on hand-made bit patterns of every float dtype (the largest
 * finite values and subnormals pass; every infinity and NaN, quiet or signalling, is found, also
 * in a view at an odd byte offset), and both checkpoint readers refusing a model with one NaN or
 * infinity, naming the file, the tensor, the element and the value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError } from '../core/index.js';
import { fixtureUNet, tinyInferencePlan, TINY_CONFIG, writeTestCheckpoint } from '../infer/test-support.js';
import { loadStateDict, stateDict, type HostDType, type HostTensor } from '../nn/index.js';
import { readModelCheckpoint } from './model.js';
import { plainFixtureWeights, poison, writeNnunetModelCopy } from './test-support.js';
import { assertFiniteWeights, firstNonFinite } from './weights.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'finite-weights-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A tensor of 16-bit patterns (F16, BF16) or of values (F32, F64), at byte offset 1 of its buffer. */
function tensor(dtype: HostDType, items: readonly number[]): HostTensor {
  const width = { F64: 8, F32: 4, F16: 2, BF16: 2 }[dtype as 'F64' | 'F32' | 'F16' | 'BF16'];
  const buffer = Buffer.alloc(1 + items.length * width);
  items.forEach((item, i) => {
    const at = 1 + i * width;
    if (dtype === 'F64') buffer.writeDoubleLE(item, at);
    else if (dtype === 'F32') buffer.writeFloatLE(item, at);
    else buffer.writeUInt16LE(item, at);
  });
  return { dtype, shape: [items.length], data: buffer.subarray(1) };
}

test('firstNonFinite: the first NaN or infinity of F32, F64, F16 and BF16, from the exponent bits', () => {
  const f32Max = 3.4028234663852886e38;
  assert.equal(firstNonFinite(tensor('F32', [0, -0, 1, -f32Max, f32Max, 1e-45, 1.2e-38])), -1);
  assert.equal(firstNonFinite(tensor('F32', [1, 2, Number.NaN, Infinity])), 2);
  assert.equal(firstNonFinite(tensor('F32', [-Infinity])), 0);
  const aligned = (values: number[]): HostTensor => ({ dtype: 'F32', shape: [values.length], data: new Uint8Array(Float32Array.from(values).buffer) });
  assert.equal(firstNonFinite(aligned([f32Max, -f32Max, 1e-45, 0])), -1, 'aligned F32 (word by word)');
  assert.equal(firstNonFinite(aligned([1, -Infinity, Number.NaN])), 1, 'aligned F32 (word by word)');
  assert.equal(firstNonFinite(tensor('F64', [1e308, -1e308, 5e-324, 0])), -1);
  assert.equal(firstNonFinite(tensor('F64', [0, 0, 0, -Infinity])), 3);
  assert.equal(firstNonFinite(tensor('F64', [Number.NaN])), 0);
  // F16: 0x7bff is 65504 (the largest finite), 0x0001 the smallest subnormal; 0x7c00 +inf, 0xfc00 -inf, 0x7e00 NaN, 0x7c01 a signalling NaN.
  assert.equal(firstNonFinite(tensor('F16', [0x7bff, 0xfbff, 0x0001, 0x3c00])), -1);
  for (const bits of [0x7c00, 0xfc00, 0x7e00, 0x7c01]) assert.equal(firstNonFinite(tensor('F16', [0x3c00, bits])), 1, bits.toString(16));
  // BF16: 0x7f7f is the largest finite, 0x7f80 +inf, 0xff80 -inf, 0x7fc0 NaN, 0x7f81 a signalling NaN.
  assert.equal(firstNonFinite(tensor('BF16', [0x7f7f, 0xff7f, 0x0001, 0x3f80])), -1);
  for (const bits of [0x7f80, 0xff80, 0x7fc0, 0x7f81]) assert.equal(firstNonFinite(tensor('BF16', [0x3f80, 0x3f80, bits])), 2, bits.toString(16));
  assert.equal(firstNonFinite({ dtype: 'I32', shape: [1], data: new Uint8Array([0xff, 0xff, 0xff, 0x7f]) }), -1, 'integers are finite');
});

test('assertFiniteWeights names the tensor, the element and the value', () => {
  const weights = new Map([['a', tensor('F32', [1, 2])], ['b.weight', tensor('F16', [0x3c00, 0x3c00, 0x3c00, 0xfc00])]]);
  assert.throws(() => assertFiniteWeights(weights, '/m.safetensors'), (error: unknown) => {
    assert.ok(error instanceof CheckpointError);
    assert.equal(error.message, "/m.safetensors: weight 'b.weight' holds -Infinity at element 3 of [4]: a model with non-finite values (a diverged run or a damaged file) is not used");
    return true;
  });
  assert.doesNotThrow(() => assertFiniteWeights(new Map([['a', tensor('BF16', [0x7f7f])]]), '/m'));
});

test('our checkpoint with one NaN weight is refused when read, naming its weights file', () => {
  const model = fixtureUNet();
  const state = stateDict(model);
  const name = [...state.keys()].find((key) => key.endsWith('.weight'))!;
  new DataView(state.get(name)!.data.buffer, state.get(name)!.data.byteOffset).setFloat32(4 * 5, Number.NaN, true);
  loadStateDict(model, state);
  const weights = writeTestCheckpoint(path.join(tmp, 'run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  assert.throws(() => readModelCheckpoint(path.join(tmp, 'run', 'checkpoint_final')), (error: unknown) => {
    assert.ok(error instanceof CheckpointError);
    assert.equal(error.file, weights);
    assert.match(error.message, new RegExp(`weight '${name.replace(/\./g, '\\.')}' holds NaN at element 5 of \\[`));
    return true;
  });
});

test('an nnU-Net checkpoint with one infinite weight is refused when read, naming the .pth', () => {
  const weights = plainFixtureWeights();
  const fine = writeNnunetModelCopy(path.join(tmp, 'fine'), weights);
  assert.equal(readModelCheckpoint(fine).weights.size, weights.size, 'the copy reads as the fixture');
  const name = [...weights.keys()][3]!;
  poison(weights.get(name)!, 0, Infinity);
  const file = writeNnunetModelCopy(path.join(tmp, 'inf'), weights);
  assert.throws(() => readModelCheckpoint(file), (error: unknown) => {
    assert.ok(error instanceof CheckpointError);
    assert.equal(error.file, file);
    assert.match(error.message, new RegExp(`weight '${name.replace(/\./g, '\\.')}' holds Infinity at element 0 of \\[`));
    return true;
  });
});
