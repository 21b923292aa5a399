/** Element-wise ops: arithmetic (tensor or number operands, as in PyTorch), comparisons, activations, in-place ops. */
import { binding, type NativeHandle } from './binding.js';
import { call, h, invoke, Tensor } from './tensor.js';

type Operand = Tensor | number;

function binary(op: string, a: Tensor, b: Operand, run: (x: NativeHandle, y: NativeHandle | number) => NativeHandle): Tensor {
  if (b instanceof Tensor) return call(op, [a, b], (hs) => run(h(hs, 0), h(hs, 1)));
  if (typeof b !== 'number') throw new TypeError(`${op}: the second operand must be a Tensor or a number`);
  return call(op, [a], (hs) => run(h(hs, 0), b));
}

function unary(op: string, x: Tensor, run: (x: NativeHandle) => NativeHandle): Tensor {
  return call(op, [x], (hs) => run(h(hs, 0)));
}

export const add = (a: Tensor, b: Operand, alpha?: number): Tensor => binary('add', a, b, (x, y) => binding.add(x, y, alpha ?? null));
export const sub = (a: Tensor, b: Operand, alpha?: number): Tensor => binary('sub', a, b, (x, y) => binding.sub(x, y, alpha ?? null));
export const mul = (a: Tensor, b: Operand): Tensor => binary('mul', a, b, (x, y) => binding.mul(x, y));
export const div = (a: Tensor, b: Operand): Tensor => binary('div', a, b, (x, y) => binding.div(x, y));
/** x ** exponent (a number, or a tensor broadcast against x). */
export const pow = (x: Tensor, exponent: Operand): Tensor => binary('pow', x, exponent, (a, b) => binding.pow(a, b));
/** Element-wise maximum with a tensor or a number (clamp_min). */
export const maximum = (a: Tensor, b: Operand): Tensor => binary('maximum', a, b, (x, y) => binding.maximum(x, y));
export const minimum = (a: Tensor, b: Operand): Tensor => binary('minimum', a, b, (x, y) => binding.minimum(x, y));

export const eq = (a: Tensor, b: Operand): Tensor => binary('eq', a, b, (x, y) => binding.eq(x, y));
export const ne = (a: Tensor, b: Operand): Tensor => binary('ne', a, b, (x, y) => binding.ne(x, y));
export const gt = (a: Tensor, b: Operand): Tensor => binary('gt', a, b, (x, y) => binding.gt(x, y));
export const ge = (a: Tensor, b: Operand): Tensor => binary('ge', a, b, (x, y) => binding.ge(x, y));
export const lt = (a: Tensor, b: Operand): Tensor => binary('lt', a, b, (x, y) => binding.lt(x, y));
export const le = (a: Tensor, b: Operand): Tensor => binary('le', a, b, (x, y) => binding.le(x, y));

export const logicalAnd = (a: Tensor, b: Tensor): Tensor => call('logicalAnd', [a, b], (hs) => binding.logicalAnd(h(hs, 0), h(hs, 1)));
export const logicalOr = (a: Tensor, b: Tensor): Tensor => call('logicalOr', [a, b], (hs) => binding.logicalOr(h(hs, 0), h(hs, 1)));
export const logicalNot = (x: Tensor): Tensor => unary('logicalNot', x, binding.logicalNot);

export const neg = (x: Tensor): Tensor => unary('neg', x, binding.neg);
export const exp = (x: Tensor): Tensor => unary('exp', x, binding.exp);
export const log = (x: Tensor): Tensor => unary('log', x, binding.log);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x, binding.sqrt);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x, binding.rsqrt);
export const abs = (x: Tensor): Tensor => unary('abs', x, binding.abs);
export const square = (x: Tensor): Tensor => unary('square', x, binding.square);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x, binding.sigmoid);
export const relu = (x: Tensor): Tensor => unary('relu', x, binding.relu);
export const tanh = (x: Tensor): Tensor => unary('tanh', x, binding.tanh);
export const sign = (x: Tensor): Tensor => unary('sign', x, binding.sign);
export const floor = (x: Tensor): Tensor => unary('floor', x, binding.floor);
export const round = (x: Tensor): Tensor => unary('round', x, binding.round);

export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return call('leakyRelu', [x], (hs) => binding.leakyRelu(h(hs, 0), negativeSlope));
}

/**
 * Leaky ReLU applied in place to an activation (not a leaf that requires grad), returning the same
 * handle: PyTorch's LeakyReLU(inplace=True), which nnU-Net's blocks use.
 */
export function leakyReluInPlace(x: Tensor, negativeSlope = 0.01): Tensor {
  invoke('leakyReluInPlace', [x], (hs) => binding.leakyReluInPlace(h(hs, 0), negativeSlope));
  return x;
}

export function clamp(x: Tensor, bounds: { min?: number; max?: number }): Tensor {
  return call('clamp', [x], (hs) => binding.clamp(h(hs, 0), bounds.min ?? null, bounds.max ?? null));
}

/** condition ? a : b, element-wise with broadcasting; a and b may be numbers. */
export function where(condition: Tensor, a: Operand, b: Operand): Tensor {
  const inputs: Tensor[] = [condition];
  const aIndex = a instanceof Tensor ? inputs.push(a) - 1 : -1;
  const bIndex = b instanceof Tensor ? inputs.push(b) - 1 : -1;
  return call('where', inputs, (hs) =>
    binding.where(h(hs, 0), aIndex >= 0 ? h(hs, aIndex) : (a as number), bIndex >= 0 ? h(hs, bIndex) : (b as number)));
}

// ---------------------------------------------------------------- in place (return the same tensor)

function inPlace(op: string, target: Tensor, other: Operand | undefined, run: (t: NativeHandle, o: NativeHandle | number) => void): Tensor {
  if (other instanceof Tensor) {
    invoke(op, [target, other], (hs) => run(h(hs, 0), h(hs, 1)));
  } else {
    invoke(op, [target], (hs) => run(h(hs, 0), other ?? 0));
  }
  return target;
}

/** target += alpha * other. Throws on a leaf that requires grad outside noGrad (like torch). */
export function addInPlace(target: Tensor, other: Operand, alpha = 1): Tensor {
  return inPlace('addInPlace', target, other, (t, o) => binding.addInPlace(t, o, alpha));
}

export function mulInPlace(target: Tensor, other: Operand): Tensor {
  return inPlace('mulInPlace', target, other, (t, o) => binding.mulInPlace(t, o));
}

/** target += value * a * b (optimizer moment updates). */
export function addcmulInPlace(target: Tensor, a: Tensor, b: Tensor, value = 1): Tensor {
  invoke('addcmulInPlace', [target, a, b], (hs) => binding.addcmulInPlace(h(hs, 0), h(hs, 1), h(hs, 2), value));
  return target;
}

/** Copies source into target (broadcasting, converting dtype/device). */
export function copyInPlace(target: Tensor, source: Tensor): Tensor {
  invoke('copyInPlace', [target, source], (hs) => binding.copyInPlace(h(hs, 0), h(hs, 1)));
  return target;
}

export function zeroInPlace(target: Tensor): Tensor {
  invoke('zeroInPlace', [target], (hs) => binding.zeroInPlace(h(hs, 0)));
  return target;
}

export function fillInPlace(target: Tensor, value: number): Tensor {
  invoke('fillInPlace', [target], (hs) => binding.fillInPlace(h(hs, 0), value));
  return target;
}
