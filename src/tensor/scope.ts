/**
 * Deterministic memory: `scope(fn)` disposes every tensor created inside `fn` except those reachable
 * from its return value, which move to the enclosing scope (like tfjs `tidy`). Scopes are synchronous.
 * Also the live-tensor counter (a FinalizationRegistry counts GC-collected tensors as disposed, and
 * separately as finalized, so tests can require that nothing relies on the GC).
 */

/** What a scope tracks: tensor.ts's Tensor implements it. */
export interface Tracked {
  readonly isDisposed: boolean;
  dispose(): void;
  /** The scope frame that will dispose it, or null when the caller owns it. */
  owner: ScopeFrame | null;
}

export interface ScopeFrame {
  readonly parent: ScopeFrame | null;
  readonly members: Tracked[];
}

/** Brand for values the scope walker treats as tensors. */
export const TRACKED: unique symbol = Symbol('lesionseg.tracked');

let current: ScopeFrame | null = null;
let liveCount = 0;
let finalizedCount = 0;
const collected = new FinalizationRegistry<undefined>(() => {
  liveCount -= 1;
  finalizedCount += 1;
});

/** Called once for every new tensor. */
export function trackNew(tensor: Tracked & object): void {
  liveCount += 1;
  collected.register(tensor, undefined, tensor);
  if (current !== null) {
    tensor.owner = current;
    current.members.push(tensor);
  }
}

/** Called once when a tensor is disposed. */
export function trackDisposed(tensor: Tracked & object): void {
  liveCount -= 1;
  collected.unregister(tensor);
  tensor.owner = null;
}

/** Removes a tensor from every scope: the caller owns it now. */
export function untrack(tensor: Tracked): void {
  tensor.owner = null;
}

/** Handles created and not yet disposed (collected by the GC counts as disposed). */
export function liveTensors(): number {
  return liveCount;
}

/**
 * Tensors that were never disposed and were released by the garbage collector's finalizer instead
 * (since start-up). Deterministic code keeps this at 0: a rise means a tensor escaped every scope.
 */
export function finalizedTensors(): number {
  return finalizedCount;
}

function isTracked(value: unknown): value is Tracked {
  return typeof value === 'object' && value !== null && (value as { [TRACKED]?: boolean })[TRACKED] === true;
}

/** Tensors reachable from a scope's result: through arrays, plain objects and Maps. */
function collectReachable(value: unknown, found: Set<Tracked>, seen: Set<object>): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  if (isTracked(value)) {
    found.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) collectReachable(item, found, seen);
  } else if (value instanceof Map) {
    for (const [key, item] of value) {
      collectReachable(key, found, seen);
      collectReachable(item, found, seen);
    }
  } else {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto === Object.prototype || proto === null) {
      for (const item of Object.values(value)) collectReachable(item, found, seen);
    }
  }
}

function disposeMembers(frame: ScopeFrame, keep: Set<Tracked> | null): void {
  const parent = frame.parent;
  for (const tensor of frame.members) {
    if (tensor.owner !== frame) continue; // kept, moved or disposed already
    if (keep !== null && keep.has(tensor)) {
      tensor.owner = parent;
      if (parent !== null) parent.members.push(tensor);
    } else {
      tensor.dispose();
    }
  }
  frame.members.length = 0;
}

/**
 * Runs `fn` and disposes the tensors it created, except those reachable from the result (Tensor,
 * arrays, plain objects, Maps), which move to the enclosing scope. On a throw everything created
 * inside is disposed. `fn` must not be async.
 */
export function scope<T>(fn: () => T): T {
  const frame: ScopeFrame = { parent: current, members: [] };
  current = frame;
  let result: T;
  try {
    result = fn();
  } catch (error) {
    current = frame.parent;
    disposeMembers(frame, null);
    throw error;
  }
  current = frame.parent;
  if (result instanceof Promise) {
    disposeMembers(frame, null);
    throw new TypeError('scope(fn): fn returned a Promise; scopes are synchronous, never await inside one');
  }
  const keep = new Set<Tracked>();
  collectReachable(result, keep, new Set());
  disposeMembers(frame, keep);
  return result;
}
