/** .npy: reading files written by np.save, byte-identical writing, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, type TypedArray } from '../../core/index.js';
import { readNpy, writeNpy } from '../index.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/io/npy');
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as Record<
  string,
  { dtype: string; shape: number[]; values: number[] }
>;

const ARRAY_OF: Record<string, string> = {
  '<f4': 'Float32Array', '>f8': 'Float64Array', '<i2': 'Int16Array', '|u1': 'Uint8Array', '<i8': 'BigInt64Array', '|b1': 'Uint8Array',
};

for (const [name, want] of Object.entries(expected)) {
  test(`readNpy ${name} matches numpy`, () => {
    const array = readNpy(path.join(FIXTURES, `${name}.npy`));
    assert.equal(array.dtype, want.dtype);
    assert.deepEqual(array.shape, want.shape);
    assert.equal(array.data.constructor.name, ARRAY_OF[want.dtype]);
    assert.deepEqual(Array.from(array.data as ArrayLike<number | bigint>, Number), want.values);
  });
}

test('writeNpy reproduces np.save byte for byte', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npy-'));
  try {
    for (const name of ['f4_2x3x4', 'i2_5', 'u1_3x1', 'i8_2x2', 'f4_scalar', 'f4_long_axis']) {
      const reference = path.join(FIXTURES, `${name}.npy`);
      const { data, shape } = readNpy(reference);
      const file = path.join(dir, `${name}.npy`);
      writeNpy(file, data, shape);
      assert.ok(fs.readFileSync(file).equals(fs.readFileSync(reference)), name);
    }
    assert.throws(() => writeNpy(path.join(dir, 'bad.npy'), new Float32Array(5), [2, 3]), /shape \(2, 3\) holds 6 values, data has 5/);
    const truncated = path.join(dir, 'truncated.npy');
    fs.writeFileSync(truncated, fs.readFileSync(path.join(FIXTURES, 'f4_2x3x4.npy')).subarray(0, 100));
    assert.throws(() => readNpy(truncated), (error: unknown) => error instanceof InputError && error.file === truncated && /truncated/.test(error.message));
    const garbage = path.join(dir, 'garbage.npy');
    fs.writeFileSync(garbage, 'hello world, not numpy');
    assert.throws(() => readNpy(garbage), /not a .npy file/);
    // A fresh array is aligned for 8-byte types.
    const data: TypedArray = readNpy(path.join(FIXTURES, 'i8_2x2.npy')).data;
    assert.equal(data.byteOffset % 8, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
