/**
 * Tensor handles, scopes, errors, dtype round trips and the global switches (noGrad, autocast,
 * manualSeed, threads). Seeded values come from test/fixtures/tensor/make_tensor_fixtures.py.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { TorchError } from '../core/index.js';
import * as T from './index.js';
import { binding } from './binding.js';
import { collectAndFinalize } from './test-support.js';

const CPU = { type: 'cpu' } as const;

test('scope disposes intermediates and keeps returned tensors (nested, objects, Maps)', () => {
  const before = T.liveTensors();
  const nativeBefore = T.nativeLiveTensors();
  const result = T.scope(() => {
    const a = T.ones([2, 3]);
    const b = T.mul(a, 3);
    const inner = T.scope(() => {
      const c = T.add(b, 1);
      return { c, list: [T.neg(c)], map: new Map([['d', T.exp(c)]]) };
    });
    return [inner.c, inner.map];
  });
  assert.equal(T.liveTensors() - before, 2);
  assert.equal(T.nativeLiveTensors() - nativeBefore, 2);
  const [c, map] = result as [T.Tensor, Map<string, T.Tensor>];
  assert.deepEqual([...c.toTypedArray()], [4, 4, 4, 4, 4, 4]);
  assert.equal(map.get('d')!.isDisposed, false);
  c.dispose();
  map.get('d')!.dispose();
  assert.equal(T.liveTensors(), before);
  assert.equal(T.nativeLiveTensors(), nativeBefore);
});

test('a tensor dropped without dispose() is counted as finalized (JS and native); a disposed one is not', async () => {
  await collectAndFinalize();
  const finalized = T.finalizedTensors();
  const nativeFinalized = T.nativeFinalizedTensors();
  const live = T.liveTensors();
  T.ones([4]).dispose();
  await collectAndFinalize();
  assert.equal(T.finalizedTensors(), finalized, 'a disposed tensor is not a finalizer release');
  assert.equal(T.nativeFinalizedTensors(), nativeFinalized);
  (() => {
    T.ones([1000]); // dropped on purpose: only the garbage collector can release it
  })();
  await collectAndFinalize();
  assert.equal(T.finalizedTensors() - finalized, 1, 'the dropped tensor was released by the JS finalizer');
  assert.equal(T.nativeFinalizedTensors() - nativeFinalized, 1, 'and its native handle by the Node-API finalizer');
  assert.equal(T.liveTensors(), live);
});

test('scope disposes everything when its callback throws, and keep() escapes every scope', () => {
  const before = T.liveTensors();
  let kept: T.Tensor | undefined;
  assert.throws(() =>
    T.scope(() => {
      T.zeros([4]);
      kept = T.ones([2]).keep();
      throw new Error('boom');
    }), /boom/);
  assert.equal(T.liveTensors(), before + 1);
  assert.equal(kept!.isDisposed, false);
  kept!.dispose();
  assert.throws(() => T.scope(() => Promise.resolve(1)), /synchronous/);
  assert.equal(T.liveTensors(), before);
});

test('dispose is idempotent and a disposed tensor gives a clear TorchError', () => {
  const x = T.ones([2]);
  x.dispose();
  x.dispose();
  assert.equal(x.isDisposed, true);
  assert.equal(String(x), 'Tensor[disposed]');
  assert.throws(() => T.add(x, 1), (e: unknown) => e instanceof TorchError && e.op === 'add' && /disposed/.test(e.message));
  assert.throws(() => x.toTypedArray(), /disposed/);
});

test('a shape error in conv3d is a catchable TorchError naming the op and the shapes', () => {
  T.scope(() => {
    const x = T.zeros([1, 5, 4, 4, 4]);
    const w = T.zeros([3, 2, 3, 3, 3]);
    assert.throws(() => T.conv3d(x, w, null), (e: unknown) => {
      assert.ok(e instanceof TorchError);
      assert.equal(e.op, 'conv3d');
      assert.deepEqual(e.shapes, [[1, 5, 4, 4, 4], [3, 2, 3, 3, 3]]);
      assert.match(e.message, /^conv3d\(\[1, 5, 4, 4, 4\], \[3, 2, 3, 3, 3\]\): .*channels/);
      return true;
    });
    // The process survives and keeps working.
    assert.deepEqual(T.conv3d(T.zeros([1, 2, 3, 3, 3]), w, null).shape, [1, 3, 1, 1, 1]);
    assert.throws(() => T.reshape(x, [7]), TorchError);
    assert.throws(() => T.cat([x, T.zeros([2])], 0), TorchError);
    assert.throws(() => T.zeros([2], { device: { type: 'cuda', index: 3 } }), TorchError);
    assert.throws(() => T.fromArray(new Float32Array(5), [2, 3]), /5 elements/);
  });
});

test('dtype round trips for every host array type', () => {
  T.scope(() => {
    const cases: [T.HostArray, T.DType, string][] = [
      [new Float32Array([1.5, -2, 3.25]), 'float32', 'Float32Array'],
      [new Float64Array([1e-300, -2, 3.125]), 'float64', 'Float64Array'],
      [new Int32Array([-7, 0, 2147483647]), 'int32', 'Int32Array'],
      [new Int16Array([-32768, 5, 32767]), 'int16', 'Int16Array'],
      [new Int8Array([-128, 1, 127]), 'int8', 'Int8Array'],
      [new Uint8Array([0, 128, 255]), 'uint8', 'Uint8Array'],
      [new BigInt64Array([-(2n ** 62n), 0n, 2n ** 62n]), 'int64', 'BigInt64Array'],
    ];
    for (const [data, dtype, kind] of cases) {
      const t = T.fromArray(data, [3]);
      assert.equal(t.dtype, dtype);
      const back = t.toTypedArray();
      assert.equal(back.constructor.name, kind);
      assert.deepEqual([...back], [...data]);
    }
    const bool = T.fromArray(new Uint8Array([1, 0, 1]), [3], { dtype: 'bool' });
    assert.equal(bool.dtype, 'bool');
    assert.deepEqual([...bool.toTypedArray()], [1, 0, 1]);
    const half = T.fromArray(new Float32Array([0.5, 1.25, -3]), [3], { dtype: 'float16' });
    assert.deepEqual([...half.toTypedArray()], [0.5, 1.25, -3]);
    const bf16 = T.fromArray([1, 2.5, -4], [3], { dtype: 'bfloat16' });
    assert.equal(bf16.toTypedArray().constructor.name, 'Float32Array');
    assert.deepEqual([...bf16.toFloat32Array()], [1, 2.5, -4]);
    assert.deepEqual([...T.fromArray(new Uint16Array([65535, 1]), [2]).toTypedArray()], [65535, 1]);
    assert.equal(T.fromArray([1, 2, 3, 4, 5, 6], [2, 3]).toString(), 'Tensor[float32 2x3 cpu]');
    assert.equal(T.full([], 7).item(), 7);
  });
});

test('copyInto writes the values into a given array: every host type, a view at an offset, a strided tensor, dtype conversion', () => {
  T.scope(() => {
    const cases: T.HostTypedArray[] = [
      new Float32Array([1.5, -2, 3.25]),
      new Float64Array([1e-300, -2, 3.125]),
      new Int32Array([-7, 0, 2147483647]),
      new Int16Array([-32768, 5, 32767]),
      new Int8Array([-128, 1, 127]),
      new Uint8Array([0, 128, 255]),
      new BigInt64Array([-(2n ** 62n), 0n, 2n ** 62n]),
    ];
    for (const data of cases) {
      const target = new (data.constructor as new (length: number) => T.HostTypedArray)(5);
      T.fromArray(data, [3]).copyInto(target.subarray(1, 4));
      assert.deepEqual([...target.subarray(1, 4)], [...data], data.constructor.name);
      assert.deepEqual([target[0], target[4]], typeof data[0] === 'bigint' ? [0n, 0n] : [0, 0], `${data.constructor.name}: nothing written beside the view`);
    }
    // A transposed (non-contiguous) tensor lands in row-major order, as toFloat32Array gives it.
    const transposed = T.transpose(T.fromArray([1, 2, 3, 4, 5, 6], [2, 3]), 0, 1);
    const out = new Float32Array(6);
    transposed.copyInto(out);
    assert.deepEqual([...out], [1, 4, 2, 5, 3, 6]);
    // float32 -> int8 truncates toward zero and bf16 -> float32 widens, as torch's copy_ does.
    const bytes = new Int8Array(3);
    T.fromArray([1.9, -2.7, 3], [3]).copyInto(bytes);
    assert.deepEqual([...bytes], [1, -2, 3]);
    const widened = new Float32Array(3);
    T.fromArray([1, 2.5, -4], [3], { dtype: 'bfloat16' }).copyInto(widened);
    assert.deepEqual([...widened], [1, 2.5, -4]);
    assert.throws(() => T.fromArray([1, 2, 3], [3]).copyInto(new Float32Array(4)), /target has 4 elements, the tensor 3/);
    // Arrays on a SharedArrayBuffer (the batch loader's slots), at an offset: read and written alike.
    const shared = new Float32Array(new SharedArrayBuffer(6 * 4), 8, 3);
    shared.set([0.5, -1, 7]);
    const fromShared = T.fromArray(shared, [3]);
    assert.deepEqual([...fromShared.toFloat32Array()], [0.5, -1, 7]);
    T.mul(fromShared, 2).copyInto(shared);
    assert.deepEqual([...shared], [1, -2, 14]);
    assert.deepEqual([...new Float32Array(shared.buffer, 0, 2)], [0, 0], 'nothing written before the view');
  });
});

test('autograd: grad, zeroGrad, detach and noGrad', () => {
  T.scope(() => {
    const w = T.fromArray([1, 2, 3], [3], { requiresGrad: true });
    T.sum(T.square(w)).backward();
    assert.deepEqual([...w.grad!.toTypedArray()], [2, 4, 6]);
    T.sum(w).backward();
    assert.deepEqual([...w.grad!.toTypedArray()], [3, 5, 7]);
    w.zeroGrad();
    assert.equal(w.grad, null);
    assert.equal(w.detach().requiresGrad, false);
    const y = T.noGrad(() => T.mul(w, 2));
    assert.equal(y.requiresGrad, false);
    assert.equal(T.isGradEnabled(), true);
    assert.equal(T.mul(w, 2).requiresGrad, true);
  });
});

test('in-place ops return the same tensor and refuse a leaf that requires grad outside noGrad', () => {
  T.scope(() => {
    const p = T.fromArray([1, 2, 3], [3], { requiresGrad: true });
    assert.throws(() => T.addInPlace(p, 1), (e: unknown) => e instanceof TorchError && /leaf/.test(e.message));
    T.noGrad(() => {
      assert.equal(T.addInPlace(p, T.ones([3]), -0.5), p);
      T.mulInPlace(p, 2);
    });
    assert.deepEqual([...p.toTypedArray()], [1, 3, 5]);
    const b = T.zeros([3]);
    T.copyInPlace(b, T.fromArray([4, 5, 6], [3]));
    T.addcmulInPlace(b, b, b, 0.5);
    assert.deepEqual([...b.toTypedArray()], [12, 17.5, 24]);
    T.fillInPlace(b, 2);
    assert.deepEqual([...b.toTypedArray()], [2, 2, 2]);
    T.zeroInPlace(b);
    assert.equal(T.sum(b).item(), 0);
  });
});

test('autocast bf16 on CPU gives a bf16 conv output and restores the previous state', () => {
  T.scope(() => {
    const x = T.randn([1, 2, 4, 4, 4]);
    const w = T.randn([3, 2, 3, 3, 3], { requiresGrad: true });
    const y = T.autocast({ device: CPU, dtype: 'bfloat16' }, () => T.conv3d(x, w, null, { padding: 1 }));
    assert.equal(y.dtype, 'bfloat16');
    T.sum(y).backward();
    assert.equal(w.grad!.dtype, 'float32');
    assert.equal(T.conv3d(x, w, null).dtype, 'float32');
    const off = T.autocast({ device: CPU, dtype: 'bfloat16', enabled: false }, () => T.conv3d(x, w, null));
    assert.equal(off.dtype, 'float32');
    assert.throws(() => T.autocast({ device: CPU, dtype: 'float16' }, () => 0), /bfloat16/);
  });
});

test('manualSeed reproduces torch.manual_seed + randn/rand', () => {
  const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/tensor/tensor_fixtures.json', import.meta.url), 'utf8')) as {
    seeded: { seed: number; randn5: number[]; rand3: number[] };
  };
  T.scope(() => {
    T.manualSeed(fixture.seeded.seed);
    assert.deepEqual([...T.randn([5]).toTypedArray()], fixture.seeded.randn5.map(Math.fround));
    assert.deepEqual([...T.rand([3]).toTypedArray()], fixture.seeded.rand3.map(Math.fround));
  });
});

test('threads and CUDA queries', () => {
  const threads = T.getNumThreads();
  T.setNumThreads(1);
  assert.equal(T.getNumThreads(), 1);
  T.setNumThreads(threads);
  assert.equal(typeof T.cudaIsAvailable(), 'boolean');
  assert.equal(T.cudaDeviceCount() >= 0, true);
  if (!T.cudaIsAvailable()) assert.equal(T.cudaDeviceCount(), 0);
});

test('the addon loads and works in a worker thread (context-aware)', async () => {
  const addon = fileURLToPath(new URL('../../native/build/Release/lesionseg_native.node', import.meta.url));
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const b = require(workerData);
    const x = b.ones([2, 2], 6, 'cpu');
    parentPort.postMessage(b.item(b.sum(b.mul(x, 3), null, false)));`;
  const worker = new Worker(source, { eval: true, workerData: addon });
  const value = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  assert.equal(value, 12);
  await worker.terminate();
});

test('an op holds its own reference to each tensor argument: JS code it runs while reading the others may dispose the handle', () => {
  // Reading an array argument runs its getters: this one disposes the tensor the op already holds.
  // The op must still sum [[1, 2, 3], [4, 5, 6]] over dim 1, not run on an emptied handle.
  const x = binding.fromTypedArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], 6, 'cpu');
  const dims: number[] = [0];
  Object.defineProperty(dims, 0, { get: () => (binding.dispose(x), 1) });
  const y = binding.sum(x, dims, false);
  assert.deepEqual([...binding.toFloat32Array(y)], [6, 15]);
  binding.dispose(y);
  assert.throws(() => binding.shape(x), /argument 0 must be a live tensor, but it was disposed/);
});
