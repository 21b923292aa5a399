/**
 * Module and Parameter: a tree of named parts whose dotted parameter names are the contract with
 * PyTorch (`encoder.stages.0.0.convs.0.conv.weight`). Registering a name twice throws (tch renames
 * silently; we refuse). Freezing works by name prefix and is visible to the optimizer.
 */
import { type Tensor } from '../tensor/index.js';

/** A trainable tensor owned by a module. The tensor is kept (outside every scope) until disposed. */
export class Parameter {
  value: Tensor;
  private frozenFlag = false;

  constructor(value: Tensor) {
    this.value = value.keep();
    this.value.setRequiresGrad(true);
  }

  get frozen(): boolean {
    return this.frozenFlag;
  }

  /** Frozen parameters get no gradient and are skipped by the optimizer. */
  setFrozen(frozen: boolean): void {
    this.frozenFlag = frozen;
    this.value.setRequiresGrad(!frozen);
    if (frozen) this.value.zeroGrad();
  }

  /** Replace the value (e.g. after loading), keeping the frozen state. The old tensor is disposed. */
  replace(value: Tensor): void {
    if (value === this.value) return;
    this.value.dispose();
    this.value = value.keep();
    this.value.setRequiresGrad(!this.frozenFlag);
  }
}

export abstract class Module {
  private readonly parameterMap = new Map<string, Parameter>();
  private readonly childMap = new Map<string, Module>();

  /** Register a parameter under a local name (no dots). */
  protected addParameter(name: string, value: Tensor): Parameter {
    this.checkName(name);
    const parameter = new Parameter(value);
    this.parameterMap.set(name, parameter);
    return parameter;
  }

  /** Register a child module under a local name (no dots). */
  protected addModule<M extends Module>(name: string, module: M): M {
    this.checkName(name);
    this.childMap.set(name, module);
    return module;
  }

  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`invalid module or parameter name '${name}'`);
    if (this.parameterMap.has(name) || this.childMap.has(name)) {
      throw new Error(`duplicate name '${name}' in ${this.constructor.name}`);
    }
  }

  /** Direct children in registration order. */
  children(): IterableIterator<[string, Module]> {
    return this.childMap.entries();
  }

  /** Every parameter with its full dotted name, in registration order (depth first, as PyTorch). */
  *namedParameters(prefix = ''): Generator<[string, Parameter]> {
    for (const [name, parameter] of this.parameterMap) yield [prefix + name, parameter];
    for (const [name, child] of this.childMap) yield* child.namedParameters(`${prefix}${name}.`);
  }

  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  /** name -> parameter map (a fresh Map each call). */
  parameterDict(): Map<string, Parameter> {
    return new Map(this.namedParameters());
  }

  /** Freeze (or unfreeze) every parameter whose full name starts with one of the prefixes; returns how many. */
  freeze(prefixes: string | readonly string[], frozen = true): number {
    const list = typeof prefixes === 'string' ? [prefixes] : prefixes;
    let count = 0;
    for (const [name, parameter] of this.namedParameters()) {
      if (list.some((prefix) => name.startsWith(prefix))) {
        parameter.setFrozen(frozen);
        count++;
      }
    }
    return count;
  }

  /** Number of scalar weights, split into trainable and frozen. */
  countParameters(): { trainable: number; frozen: number; total: number } {
    let trainable = 0;
    let frozen = 0;
    for (const [, parameter] of this.namedParameters()) {
      if (parameter.frozen) frozen += parameter.value.numel;
      else trainable += parameter.value.numel;
    }
    return { trainable, frozen, total: trainable + frozen };
  }

  /** Drop every accumulated gradient. */
  zeroGrad(): void {
    for (const [, parameter] of this.namedParameters()) parameter.value.zeroGrad();
  }

  /** Release all parameter memory. The module is unusable afterwards. */
  dispose(): void {
    for (const [, parameter] of this.namedParameters()) parameter.value.dispose();
  }
}
