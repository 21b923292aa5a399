/**
 * The Python values our pickle reader (pickle.ts) produces, and the plain-data helpers over them:
 * None null, bool boolean, int number (bigint beyond 2^53), float number, str string, bytes
 * Uint8Array, list array, tuple frozen array, dict / OrderedDict PyDict, and whatever an
 * allowlisted handler returns (an object with a `pyClass`). `checkStructure` is the walk that
 * refuses cycles, deep nesting and structures that expand past a limit through shared references.
 */
import { CheckpointError } from '../../core/index.js';

/** An object made by an allowlisted handler. */
export interface PyExtension {
  readonly pyClass: string;
  /** BUILD (`obj.__setstate__(state)`); objects without it refuse BUILD. */
  setState?(state: PyValue): void;
}

export type PyKey = string | number | bigint | boolean | null;
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyDict | PyExtension;

/** A dict (or OrderedDict: insertion order is kept either way); `attributes` holds BUILD's `__dict__` state. */
export class PyDict extends Map<PyKey, PyValue> {
  attributes: PyDict | null = null;
}

/** What a GLOBAL resolves to: the allowlisted handler under its full name. */
export interface PyGlobalHandler {
  /** REDUCE: the callable applied to its positional arguments. Absent: the name may only be referenced. */
  call?(args: readonly PyValue[]): PyValue;
}

export class PyGlobal implements PyExtension {
  readonly pyClass = 'global';
  constructor(readonly name: string, readonly handler: PyGlobalHandler) {}
}


/** A printable type name of a value, for errors. */
export function pyTypeName(value: PyValue): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int or float' : 'float';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'string') return 'str';
  if (value instanceof Uint8Array) return 'bytes';
  if (Array.isArray(value)) return Object.isFrozen(value) ? 'tuple' : 'list';
  if (value instanceof PyDict) return 'dict';
  return value.pyClass;
}

export function isContainer(value: PyValue): value is PyValue[] | PyDict {
  return Array.isArray(value) || value instanceof PyDict;
}

export function isKey(value: PyValue): value is PyKey {
  return value === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof value);
}


/**
 * Refuse cycles, nesting deeper than maxDepth and more than maxValues values when shared
 * references are expanded: one post-order walk that visits each container once.
 */
export function checkStructure(root: PyValue, limits: { maxDepth: number; maxValues: number }, fail: (message: string) => never): void {
  if (!isContainer(root)) return;
  const size = new Map<object, number>();
  const inProgress = new Set<object>();
  const childrenOf = (node: PyValue[] | PyDict): PyValue[] => {
    if (Array.isArray(node)) return node;
    const values = [...node.values()];
    if (node.attributes !== null) values.push(node.attributes);
    return values;
  };
  interface Frame { node: PyValue[] | PyDict; children: PyValue[]; next: number; total: number }
  const path: Frame[] = [{ node: root, children: childrenOf(root), next: 0, total: 1 }];
  inProgress.add(root);
  while (path.length > 0) {
    const frame = path[path.length - 1]!;
    if (frame.next < frame.children.length) {
      const child = frame.children[frame.next++]!;
      if (!isContainer(child)) {
        frame.total += 1;
      } else if (inProgress.has(child)) {
        fail('recursive structure: a container holds itself (directly or through others)');
      } else if (size.has(child)) {
        frame.total += size.get(child)!;
      } else {
        if (path.length >= limits.maxDepth) fail(`containers nested more than ${limits.maxDepth} deep`);
        inProgress.add(child);
        path.push({ node: child, children: childrenOf(child), next: 0, total: 1 });
      }
      if (frame.total > limits.maxValues) fail(`the structure expands to more than ${limits.maxValues} values (shared references counted each time)`);
      continue;
    }
    path.pop();
    inProgress.delete(frame.node);
    size.set(frame.node, frame.total);
    const parent = path[path.length - 1];
    if (parent !== undefined) {
      parent.total += frame.total;
      if (parent.total > limits.maxValues) fail(`the structure expands to more than ${limits.maxValues} values (shared references counted each time)`);
    }
  }
}


/** Items of a list or tuple, else null. */
export function pySequence(value: PyValue | undefined): readonly PyValue[] | null {
  return Array.isArray(value) ? value : null;
}

/** A dict's value under a string key (undefined when absent or not a dict). */
export function pyGet(value: PyValue | undefined, key: string): PyValue | undefined {
  return value instanceof PyDict ? value.get(key) : undefined;
}

/**
 * A value as plain JSON (dicts with string or int keys become objects; tuples arrays; bytes and
 * extensions are refused). For the JSON-born parts of checkpoints (nnU-Net's init_args).
 */
export function pyToJson(value: PyValue, where: string): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map((item, i) => pyToJson(item, `${where}[${i}]`));
  if (value instanceof PyDict) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of value) {
      if (typeof key !== 'string' && typeof key !== 'number') throw new CheckpointError(`${where}: a dict key of type ${pyTypeName(key)} has no JSON form`);
      out[String(key)] = pyToJson(item, `${where}.${String(key)}`);
    }
    return out;
  }
  throw new CheckpointError(`${where}: a ${pyTypeName(value)} has no JSON form`);
}
