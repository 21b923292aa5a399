/**
 * The Tensor class and the single funnel every op goes through (STYLE rule 3): `call(op, inputs,
 * invoke)` rejects disposed inputs, wraps native errors into TorchError (op + input shapes) and
 * registers the output with the current scope.
 */
import { TorchError, formatDevice, type Device } from '../core/index.js';
import { binding, type NativeHandle } from './binding.js';
import { deviceFromNative, dtypeFromCode, type DType } from './dtype.js';
import { TRACKED, trackDisposed, trackNew, untrack, type ScopeFrame, type Tracked } from './scope.js';

export type HostTypedArray =
  | Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;

function shapesOf(inputs: readonly (Tensor | null | undefined)[]): number[][] {
  const shapes: number[][] = [];
  for (const input of inputs) if (input != null && !input.isDisposed) shapes.push([...input.shape]);
  return shapes;
}

interface NativeErrorFields {
  detail?: string;
  shapes?: number[][];
}

function toTorchError(op: string, inputs: readonly (Tensor | null | undefined)[], error: unknown): TorchError {
  if (error instanceof TorchError) return error;
  const fields = (typeof error === 'object' && error !== null ? error : {}) as NativeErrorFields;
  const raw = error instanceof Error ? error.message : String(error);
  // Native type errors read "<op>: <message>"; native torch errors carry the bare message in `detail`.
  const message = fields.detail ?? raw.replace(/^[A-Za-z0-9_]+: /, '');
  return new TorchError(op, fields.shapes ?? shapesOf(inputs), message, { cause: error });
}

/** Runs a native call on the inputs' handles; the result is returned as is (use `call` for tensors). */
export function invoke<R>(op: string, inputs: readonly (Tensor | null | undefined)[], run: (handles: (NativeHandle | null)[]) => R): R {
  const handles: (NativeHandle | null)[] = new Array<NativeHandle | null>(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i];
    if (input == null) {
      handles[i] = null;
      continue;
    }
    if (!(input instanceof Tensor)) {
      throw new TorchError(op, shapesOf(inputs), `input ${i} is not a Tensor (got ${typeof input})`);
    }
    const handle = input.nativeHandleOrNull;
    if (handle === null) {
      throw new TorchError(op, shapesOf(inputs),
        `input ${i} is a disposed tensor (keep() it, or return it from the scope that created it)`);
    }
    handles[i] = handle;
  }
  try {
    return run(handles);
  } catch (error) {
    throw toTorchError(op, inputs, error);
  }
}

/** The op funnel: one native call producing one tensor, registered in the current scope. */
export function call(op: string, inputs: readonly (Tensor | null | undefined)[], run: (handles: (NativeHandle | null)[]) => NativeHandle): Tensor {
  return new Tensor(invoke(op, inputs, run));
}

/** Handle of a tensor known to be live (inside `run` of the funnel the handles array is already checked). */
export function h(handles: readonly (NativeHandle | null)[], index: number): NativeHandle {
  return handles[index] as NativeHandle;
}

export class Tensor implements Tracked {
  readonly [TRACKED] = true;
  owner: ScopeFrame | null = null;
  #handle: NativeHandle | null;
  #shape: number[] | undefined;
  #dtype: DType | undefined;
  #device: Device | undefined;

  /** Internal: ops create tensors through `call`. */
  constructor(handle: NativeHandle) {
    this.#handle = handle;
    trackNew(this);
  }

  /** Internal: the native handle, or null once disposed. */
  get nativeHandleOrNull(): NativeHandle | null {
    return this.#handle;
  }

  #live(what: string): NativeHandle {
    if (this.#handle === null) throw new TorchError(what, [], 'the tensor was disposed');
    return this.#handle;
  }

  get shape(): number[] {
    if (this.#shape === undefined) this.#shape = Object.freeze(binding.shape(this.#live('shape'))) as number[];
    return this.#shape;
  }

  get dtype(): DType {
    if (this.#dtype === undefined) this.#dtype = dtypeFromCode(binding.dtype(this.#live('dtype')));
    return this.#dtype;
  }

  get device(): Device {
    if (this.#device === undefined) this.#device = deviceFromNative(binding.device(this.#live('device')));
    return this.#device;
  }

  get numel(): number {
    let n = 1;
    for (const size of this.shape) n *= size;
    return n;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get requiresGrad(): boolean {
    return invoke('requiresGrad', [this], (hs) => binding.requiresGrad(h(hs, 0)));
  }

  /** In place, for leaf tensors (parameters). */
  setRequiresGrad(flag: boolean): this {
    invoke('setRequiresGrad', [this], (hs) => binding.setRequiresGrad(h(hs, 0), flag));
    return this;
  }

  get isLeaf(): boolean {
    return invoke('isLeaf', [this], (hs) => binding.isLeaf(h(hs, 0)));
  }

  /** A new handle to the accumulated gradient (registered in the current scope), or null. */
  get grad(): Tensor | null {
    const handle = invoke('grad', [this], (hs) => binding.grad(h(hs, 0)));
    return handle === null ? null : new Tensor(handle);
  }

  /** Drops the accumulated gradient (grad becomes null), like PyTorch's set_to_none. */
  zeroGrad(): void {
    invoke('zeroGrad', [this], (hs) => binding.zeroGrad(h(hs, 0)));
  }

  backward(gradient?: Tensor, options?: { retainGraph?: boolean }): void {
    invoke('backward', [this, gradient], (hs) => binding.backward(h(hs, 0), hs[1] ?? null, options?.retainGraph ?? null));
  }

  detach(): Tensor {
    return call('detach', [this], (hs) => binding.detach(h(hs, 0)));
  }

  get isDisposed(): boolean {
    return this.#handle === null;
  }

  /** Releases the native tensor now; idempotent. */
  dispose(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    binding.dispose(handle);
    trackDisposed(this);
  }

  /** Removes the tensor from every scope: the caller owns it (parameters, optimizer state). */
  keep(): this {
    untrack(this);
    return this;
  }

  /** Copy to host: fp16/bf16 -> Float32Array, bool -> Uint8Array, int64 -> BigInt64Array. */
  toTypedArray(): HostTypedArray {
    return invoke('toTypedArray', [this], (hs) => binding.toTypedArray(h(hs, 0)));
  }

  /** Copy to host converting any dtype to float32. */
  toFloat32Array(): Float32Array {
    return invoke('toFloat32Array', [this], (hs) => binding.toFloat32Array(h(hs, 0)));
  }

  /**
   * Copy to host into `target` (as many elements as the tensor, any layout, converted to the
   * array's type: Int8, Uint8, Int16, Int32, Float32, Float64 or BigInt64): no new array.
   */
  copyInto(target: HostTypedArray): void {
    invoke('copyInto', [this], (hs) => binding.copyInto(h(hs, 0), target));
  }

  /** The value of a single-element tensor. */
  item(): number {
    return invoke('item', [this], (hs) => binding.item(h(hs, 0)));
  }

  toString(): string {
    if (this.#handle === null) return 'Tensor[disposed]';
    const dims = this.shape.length === 0 ? 'scalar' : this.shape.join('x');
    return `Tensor[${this.dtype} ${dims} ${formatDevice(this.device)}]`;
  }
}
