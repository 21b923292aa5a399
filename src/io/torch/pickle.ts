/**
 * Our own reader of Python's pickle opcodes, for checkpoints that must be read without trusting
 * them. It NEVER executes code: a GLOBAL names a function or class, and only names on the
 * caller's allowlist are accepted, each mapped to a pure TypeScript handler that builds plain data
 * (a tensor description, an ordered dict, a number); any other name is refused by its full dotted
 * name before anything else is read. Instances (INST, OBJ, NEWOBJ), extension codes and
 * out-of-band buffers are refused. The structure read is checked before it is returned: no
 * cycles (a list that holds itself), no nesting deeper than `maxDepth`, and no more than
 * `maxValues` values once shared references are expanded (a "billion laughs" of memo GETs).
 * While reading, the values made (every push but a memo GET or DUP, which reuse one) are at most
 * `maxObjects` and the memo at most `maxMemo` entries: a pickle of a million one-byte EMPTY_DICTs
 * is refused after `maxObjects` of them, so the memory it costs is bounded whatever its length.
 * An nnU-Net checkpoint makes about 20 values per tensor: tens of thousands in all.
 *
 * The values it produces are described in pickle-values.ts.
 * Opcodes: protocols 2 (what torch.save writes) and 3-4's binary ones; protocol 0's text opcodes
 * INT, LONG, FLOAT, PUT, GET and PERSID.
 */
import { CheckpointError } from '../../core/index.js';
import { checkStructure, isKey, PyDict, PyGlobal, pyTypeName, type PyGlobalHandler, type PyKey, type PyValue } from './pickle-values.js';

export { PyDict, PyGlobal, pyGet, pySequence, pyToJson, pyTypeName, type PyExtension, type PyGlobalHandler, type PyKey, type PyValue } from './pickle-values.js';

export interface UnpickleLimits {
  /** Deepest nesting of containers (and of MARKs) accepted (Python's own recursion limit is about 1000). */
  maxDepth: number;
  /** Most memo entries. */
  maxMemo: number;
  /** Most values made while reading (each push but memo GETs and DUP). */
  maxObjects: number;
  /** Most values once shared references are expanded. */
  maxValues: number;
  /** Longest LONG1/LONG4 integer, in bytes. */
  maxIntBytes: number;
}

export const UNPICKLE_DEFAULTS: Readonly<UnpickleLimits> = Object.freeze({ maxDepth: 1000, maxMemo: 1_000_000, maxObjects: 1_000_000, maxValues: 50_000_000, maxIntBytes: 1024 });

export interface UnpickleOptions extends Partial<UnpickleLimits> {
  /** Full dotted name (`collections.OrderedDict`) -> handler. Nothing else may be named. */
  globals: Readonly<Record<string, PyGlobalHandler>>;
  /** BINPERSID / PERSID: turn a persistent id into a value (absent: persistent ids are refused). */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Named in errors. */
  file?: string;
}

/** Python 2 module names that protocol-2 pickles use for Python 3 ones (pickle's fix_imports). */
const PYTHON2_MODULES: Readonly<Record<string, string>> = { __builtin__: 'builtins', copy_reg: 'copyreg' };


function integer(value: bigint): number | bigint {
  return value >= -BigInt(Number.MAX_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** Little-endian two's-complement bytes (LONG1/LONG4) as an integer. */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.length - 1]! & 0x80) value -= 1n << BigInt(8 * bytes.length);
  return integer(value);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A tuple: a frozen array (so that it tells itself apart from a list). */
function tuple(items: PyValue[]): PyValue[] {
  return Object.freeze(items) as PyValue[];
}

/** Unpickle `bytes` under `options`' allowlist; CheckpointError for anything refused or malformed. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PyValue {
  const limits: UnpickleLimits = { ...UNPICKLE_DEFAULTS, ...options };
  const file = options.file;
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let position = 0;
  let opcodePosition = 0;
  const fail = (message: string): never => {
    throw new CheckpointError(`pickle (byte ${opcodePosition}): ${message}`, { file });
  };
  const take = (n: number): Buffer => {
    if (n < 0 || position + n > data.length) fail(`truncated: needs ${n} more bytes, ${data.length - position} left`);
    const out = data.subarray(position, position + n);
    position += n;
    return out;
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, position);
    if (end < 0) fail('truncated: a text opcode lacks its newline');
    const text = data.toString('latin1', position, end);
    position = end + 1;
    return text;
  };
  const text = (raw: Buffer): string => {
    try {
      return utf8.decode(raw);
    } catch {
      return fail('a string is not valid UTF-8');
    }
  };
  const length64 = (): number => {
    const n = take(8).readBigUInt64LE(0);
    if (n > BigInt(data.length)) fail(`a length of ${n} bytes is longer than the pickle`);
    return Number(n);
  };

  let stack: PyValue[] = [];
  const marks: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  let made = 0;
  const push = (value: PyValue): void => {
    if (++made > limits.maxObjects) fail(`makes more than ${limits.maxObjects} values (a checkpoint's pickle makes tens of thousands)`);
    stack.push(value);
  };
  /** A value that is already counted (memo GET, DUP). */
  const pushAgain = (value: PyValue): void => {
    stack.push(value);
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const previous = marks.pop();
    if (previous === undefined) fail('no MARK to pop to');
    stack = previous!;
    return items;
  };
  const put = (key: number): void => {
    if (!memo.has(key) && memo.size >= limits.maxMemo) fail(`more than ${limits.maxMemo} memo entries`);
    memo.set(key, top());
  };
  const get = (key: number): void => {
    if (!memo.has(key)) fail(`memo key ${key} is not defined`);
    pushAgain(memo.get(key)!);
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const full = `${PYTHON2_MODULES[module] ?? module}.${name}`;
    const handler = Object.hasOwn(options.globals, full) ? options.globals[full] : undefined;
    if (handler === undefined) {
      fail(`refuses global ${full}: a checkpoint may name only ${Object.keys(options.globals).join(', ')} (nothing in it was run)`);
    }
    return new PyGlobal(full, handler!);
  };
  const setItem = (dict: PyValue, key: PyValue, value: PyValue): void => {
    if (!(dict instanceof PyDict)) fail(`SETITEM on a ${pyTypeName(dict)}, not a dict`);
    if (!isKey(key)) fail(`a dict key of type ${pyTypeName(key)} is not supported`);
    (dict as PyDict).set(key as PyKey, value);
  };
  const appendTo = (list: PyValue, items: readonly PyValue[]): void => {
    if (!Array.isArray(list) || Object.isFrozen(list)) fail(`APPEND on a ${pyTypeName(list)}, not a list`);
    for (const item of items) (list as PyValue[]).push(item);
  };
  const persistent = (pid: PyValue): void => {
    if (options.persistentLoad === undefined) fail('persistent ids are not accepted here');
    push(options.persistentLoad!(pid));
  };

  for (;;) {
    opcodePosition = position;
    const opcode = take(1)[0]!;
    switch (opcode) {
      case 0x80: { // PROTO
        const version = take(1)[0]!;
        if (version > 5) fail(`pickle protocol ${version} is not supported`);
        break;
      }
      case 0x95: take(8); break; // FRAME: frames are read inline
      case 0x2e: { // STOP
        const result = pop();
        checkStructure(result, limits, fail);
        return result;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxDepth) fail(`MARKs nested more than ${limits.maxDepth} deep`);
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0) popMark();
        else stack.pop();
        break;
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: pushAgain(top()); break; // DUP
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(take(4).readInt32LE(0)); break; // BININT
      case 0x4b: push(take(1)[0]!); break; // BININT1
      case 0x4d: push(take(2).readUInt16LE(0)); break; // BININT2
      case 0x8a: push(decodeLong(take(take(1)[0]!))); break; // LONG1
      case 0x8b: { // LONG4
        const n = take(4).readInt32LE(0);
        if (n < 0 || n > limits.maxIntBytes) fail(`an integer of ${n} bytes (limit ${limits.maxIntBytes})`);
        push(decodeLong(take(n)));
        break;
      }
      case 0x49: { // INT (text; '00' and '01' are False and True)
        const raw = line().trim();
        if (raw === '00' || raw === '01') push(raw === '01');
        else if (/^[-+]?\d{1,400}$/.test(raw)) push(integer(BigInt(raw)));
        else fail(`INT '${raw.slice(0, 20)}' is not an integer`);
        break;
      }
      case 0x4c: { // LONG (text)
        const raw = line().trim().replace(/L$/, '');
        if (!/^[-+]?\d{1,400}$/.test(raw)) fail(`LONG '${raw.slice(0, 20)}' is not an integer`);
        push(integer(BigInt(raw)));
        break;
      }
      case 0x47: push(take(8).readDoubleBE(0)); break; // BINFLOAT
      case 0x46: { // FLOAT (text)
        const raw = line().trim();
        const value = Number(raw);
        if (raw === '' || (Number.isNaN(value) && raw.toLowerCase() !== 'nan')) fail(`FLOAT '${raw.slice(0, 20)}' is not a number`);
        push(value);
        break;
      }
      case 0x58: push(text(take(take(4).readUInt32LE(0)))); break; // BINUNICODE
      case 0x8c: push(text(take(take(1)[0]!))); break; // SHORT_BINUNICODE
      case 0x8d: push(text(take(length64()))); break; // BINUNICODE8
      case 0x54: { // BINSTRING (a Python 2 str; read as Latin-1 text)
        const n = take(4).readInt32LE(0);
        push(take(n).toString('latin1'));
        break;
      }
      case 0x55: push(take(take(1)[0]!).toString('latin1')); break; // SHORT_BINSTRING
      case 0x42: push(new Uint8Array(take(take(4).readUInt32LE(0)))); break; // BINBYTES
      case 0x43: push(new Uint8Array(take(take(1)[0]!))); break; // SHORT_BINBYTES
      case 0x8e: push(new Uint8Array(take(length64()))); break; // BINBYTES8
      case 0x96: push(new Uint8Array(take(length64()))); break; // BYTEARRAY8
      case 0x7d: push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { // TUPLE2
        const b = pop();
        push(tuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        push(tuple([pop(), b, c]));
        break;
      }
      case 0x6c: push(popMark()); break; // LIST
      case 0x64: { // DICT
        const items = popMark();
        const dict = new PyDict();
        if (items.length % 2 !== 0) fail('DICT with an odd number of items');
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i]!, items[i + 1]!);
        push(dict);
        break;
      }
      case 0x61: { // APPEND
        const item = pop();
        appendTo(top(), [item]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        setItem(top(), key, value);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
        const dict = top();
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i]!, items[i + 1]!);
        break;
      }
      case 0x71: put(take(1)[0]!); break; // BINPUT
      case 0x72: put(take(4).readUInt32LE(0)); break; // LONG_BINPUT
      case 0x70: { // PUT (text)
        const raw = line();
        if (!/^\d{1,15}$/.test(raw)) fail(`PUT '${raw.slice(0, 20)}' is not a memo index`);
        put(Number(raw));
        break;
      }
      case 0x94: put(memo.size); break; // MEMOIZE
      case 0x68: get(take(1)[0]!); break; // BINGET
      case 0x6a: get(take(4).readUInt32LE(0)); break; // LONG_BINGET
      case 0x67: { // GET (text)
        const raw = line();
        if (!/^\d{1,15}$/.test(raw)) fail(`GET '${raw.slice(0, 20)}' is not a memo index`);
        get(Number(raw));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        if (!(callable instanceof PyGlobal)) fail(`REDUCE on a ${pyTypeName(callable)}, not a global`);
        const global = callable as PyGlobal;
        if (global.handler.call === undefined) fail(`${global.name} may be named but not called`);
        if (!Array.isArray(args)) fail(`REDUCE arguments of ${global.name} are a ${pyTypeName(args)}, not a tuple`);
        push(global.handler.call!(args as PyValue[]));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        if (target instanceof PyDict && state instanceof PyDict) target.attributes = state;
        else if (typeof target === 'object' && target !== null && !Array.isArray(target) && !(target instanceof Uint8Array) && !(target instanceof PyDict) && target.setState !== undefined) target.setState(state);
        else fail(`BUILD (setting the state of an object) on a ${pyTypeName(target)} is not supported`);
        break;
      }
      case 0x51: persistent(pop()); break; // BINPERSID
      case 0x50: persistent(line()); break; // PERSID (text)
      case 0x81: { // NEWOBJ
        pop();
        const cls = pop();
        fail(`refuses NEWOBJ (creating an instance) of ${cls instanceof PyGlobal ? cls.name : pyTypeName(cls)}`);
        break;
      }
      case 0x92: fail('refuses NEWOBJ_EX (creating an instance)'); break;
      case 0x69: { // INST
        const module = line();
        fail(`refuses INST (creating an instance) of ${module}.${line()}`);
        break;
      }
      case 0x6f: fail('refuses OBJ (creating an instance)'); break;
      case 0x82: case 0x83: case 0x84: fail('refuses extension-registry codes (EXT1/EXT2/EXT4)'); break;
      case 0x97: case 0x98: fail('refuses out-of-band buffers (pickle protocol 5)'); break;
      default:
        fail(`opcode 0x${opcode.toString(16).padStart(2, '0')} is not supported ('${String.fromCharCode(opcode)}')`);
    }
  }
}

