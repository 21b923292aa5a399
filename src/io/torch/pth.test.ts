/**
 * PyTorch .pth checkpoints: values of torch.save'd objects (every dtype, strided and offset views,
 * an nnU-Net-style checkpoint dict with numpy scalars), and the refusal of every hostile file of
 * test/fixtures/nnunet/make_nnunet_fixtures.py, with proof that nothing in them ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointError } from '../../core/index.js';
import { PyDict, pyGet, readPth, stateDictEntries, unpickle, type PthFile, type PyValue, type SafetensorsEntry } from '../index.js';

const PTH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/nnunet/pth');
const expected = JSON.parse(fs.readFileSync(path.join(PTH, 'expected.json'), 'utf8')) as {
  state_dict: Record<string, { shape: number[]; dtype: string; values: number[] }>;
  nnunet_like: { weights: Record<string, { shape: number[]; values: number[] }>; momentum: Record<string, number[]>; best_ema: number; current_epoch: number; mean_fg_dice: number[]; numpy_ints: unknown[] };
};

function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function values(entry: SafetensorsEntry): number[] {
  const view = new DataView(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
  const width = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 }[entry.dtype];
  const out: number[] = [];
  for (let at = 0; at < entry.data.byteLength; at += width) {
    switch (entry.dtype) {
      case 'F32': out.push(view.getFloat32(at, true)); break;
      case 'F64': out.push(view.getFloat64(at, true)); break;
      case 'F16': out.push(half(view.getUint16(at, true))); break;
      case 'BF16': { const scratch = new DataView(new ArrayBuffer(4)); scratch.setUint32(0, view.getUint16(at, true) << 16); out.push(scratch.getFloat32(0)); break; }
      case 'I64': out.push(Number(view.getBigInt64(at, true))); break;
      case 'I32': out.push(view.getInt32(at, true)); break;
      case 'U8': case 'BOOL': out.push(view.getUint8(at)); break;
      default: throw new Error(`test does not decode ${entry.dtype}`);
    }
  }
  return out;
}

const DTYPES: Record<string, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64', int64: 'I64', int32: 'I32', bool: 'BOOL', uint8: 'U8' };

for (const name of ['state_dict.pth', 'deflated.pth']) {
  test(`${name}: every tensor's dtype, shape and values as torch.save wrote them (strided views copied)`, () => {
    readPth(path.join(PTH, name), (pth) => {
      const tensors = stateDictEntries(pth.root, 'the state dict', pth.file);
      assert.deepEqual([...tensors.keys()], Object.keys(expected.state_dict));
      for (const [key, reference] of Object.entries(expected.state_dict)) {
        const entry = pth.tensor(tensors.get(key)!);
        assert.equal(entry.dtype, DTYPES[reference.dtype], key);
        assert.deepEqual(entry.shape, reference.shape, key);
        // Exact: the reference values are the stored ones, widened to float64 by Python.
        assert.deepEqual(values(entry), reference.values, key);
      }
      // The shared storage is one storage entry, referenced by both views.
      assert.equal(tensors.get('shared_a')!.storage, tensors.get('shared_b')!.storage);
    });
  });
}

test('nnU-Net-like checkpoint dict: weights, SGD momentum, numpy scalars, torch.device, the mirroring tuple', () => {
  readPth(path.join(PTH, 'nnunet_like.pth'), (pth: PthFile) => {
    const root = pth.root;
    const weights = stateDictEntries(pyGet(root, 'network_weights'), 'network_weights', pth.file);
    for (const [key, reference] of Object.entries(expected.nnunet_like.weights)) {
      const entry = pth.tensor(weights.get(key)!);
      assert.deepEqual(entry.shape, reference.shape);
      assert.deepEqual(values(entry), reference.values.map(Math.fround));
    }
    const state = pyGet(pyGet(root, 'optimizer_state'), 'state') as PyDict;
    for (const [index, reference] of Object.entries(expected.nnunet_like.momentum)) {
      const buffer = pyGet(state.get(Number(index)) ?? null, 'momentum_buffer');
      assert.ok(buffer !== undefined && buffer !== null && typeof buffer === 'object' && 'pyClass' in buffer);
      assert.deepEqual(values(pth.tensor(buffer as never)), reference.map(Math.fround));
    }
    const groups = pyGet(pyGet(root, 'optimizer_state'), 'param_groups') as PyValue[];
    assert.equal(pyGet(groups[0], 'nesterov'), true);
    assert.equal(pyGet(groups[0], 'momentum'), 0.99);
    assert.equal(pyGet(root, '_best_ema'), expected.nnunet_like.best_ema);
    assert.equal(pyGet(root, 'current_epoch'), expected.nnunet_like.current_epoch);
    assert.equal(pyGet(root, 'grad_scaler_state'), null);
    assert.deepEqual(pyGet(pyGet(root, 'logging'), 'mean_fg_dice'), expected.nnunet_like.mean_fg_dice);
    assert.deepEqual(pyGet(root, 'numpy_ints'), expected.nnunet_like.numpy_ints);
    assert.deepEqual(pyGet(root, 'inference_allowed_mirroring_axes'), [0, 1, 2]);
    assert.ok(Object.isFrozen(pyGet(root, 'inference_allowed_mirroring_axes')), 'a tuple is a frozen array');
    const initArgs = pyGet(root, 'init_args');
    assert.equal(pyGet(initArgs, 'configuration'), '3d_fullres');
    assert.deepEqual(pyGet(initArgs, 'device'), { pyClass: 'torch.device', type: 'cuda', index: 0 });
    assert.equal(pyGet(root, 'trainer_name'), 'nnUNetTrainer');
  });
});

function refused(file: string, pattern: RegExp, use: (pth: PthFile) => void = () => {}): void {
  assert.throws(() => readPth(path.join(PTH, file), use), (error: unknown) => {
    assert.ok(error instanceof CheckpointError, `${file}: ${String(error)}`);
    assert.match(error.message, pattern);
    assert.ok(error.message.includes(file), `the message names the file: ${error.message}`);
    return true;
  });
}

test('a pickle naming os.system (by __reduce__ or by hand) or builtins.eval is refused by name, and its payload never runs', () => {
  const markers = ['/tmp/lesionseg-pwned-os-system', '/tmp/lesionseg-pwned-eval'];
  for (const marker of markers) fs.rmSync(marker, { force: true });
  // torch.save of an object reducing to os.system names its real module, posix.
  refused('malicious_os_system.pth', /refuses global posix\.system/);
  refused('malicious_os_system_raw.pth', /refuses global os\.system/);
  // Protocol 2 writes builtins as Python 2's __builtin__; the message gives the Python 3 name.
  refused('malicious_eval.pth', /refuses global builtins\.eval/);
  for (const marker of markers) assert.equal(fs.existsSync(marker), false, `${marker} was created: a payload ran`);
});

test('a truncated zip, a bzip2 entry and zip bombs are refused before anything is inflated', () => {
  refused('truncated.pth', /not a zip archive.*truncated/);
  refused('bzip2.pth', /compression method 12; only stored \(0\) and deflate \(8\)/);
  refused('bomb_claim.pth', /declares 4294967280 bytes, more than the 2147483647-byte limit/);
  // The liar declares 1 KiB and would inflate to 16 MiB: refused when its storage is read.
  refused('bomb_liar.pth', /does not inflate to its declared 1024 bytes/, (pth) => {
    pth.tensor(stateDictEntries(pth.root, 'w', pth.file).get('w')!);
  });
  // The same pickle with an honest storage reads.
  readPth(path.join(PTH, 'tensor_ok.pth'), (pth) => {
    const entry = pth.tensor(stateDictEntries(pth.root, 'w', pth.file).get('w')!);
    assert.deepEqual(values(entry).slice(0, 4), [0, 1, 2, 3]);
  });
});

test('a list that holds itself, nesting 5000 deep and 2^101 values by shared references are refused', () => {
  refused('recursive_list.pth', /recursive structure/);
  refused('deep_nesting.pth', /nested more than 1000 deep/);
  refused('laughs.pth', /expands to more than 50000000 values/);
});

test('unpickle: instances, extension codes and unknown opcodes are refused; the allowlist is exact', () => {
  const run = (bytes: number[] | string, globals = {}): PyValue => unpickle(Buffer.from(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes)), { globals });
  assert.throws(() => run('\x80\x02cos\nsystem\n)\x81.', { 'os.system': {} }), /refuses NEWOBJ \(creating an instance\) of os\.system/);
  assert.throws(() => run('(ios\nsystem\n.'), /refuses INST \(creating an instance\) of os\.system/);
  assert.throws(() => run('\x80\x02\x82\x01.'), /extension-registry/);
  assert.throws(() => run('\x80\x02ccollections\nOrderedDictX\n.'), /refuses global collections\.OrderedDictX/);
  assert.throws(() => run('\x80\x02}K\x01'), /truncated/);
  assert.throws(() => run('\x80\x02h\x05.'), /memo key 5 is not defined/);
  // Text opcodes of protocol 0 and a big LONG1.
  assert.deepEqual(run('(I01\nI-12\nF2.5\nL123456789012345678901L\nl.'), [true, -12, 2.5, 123456789012345678901n]);
  assert.equal(run([0x80, 0x02, 0x8a, 0x02, 0xff, 0x7f, 0x2e]), 32767);
  assert.equal(run([0x80, 0x02, 0x8a, 0x01, 0xff, 0x2e]), -1);
});
