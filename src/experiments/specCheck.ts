/**
 * The spec validator's tool (STYLE rule 7): a Checker collects every problem of a JSON document
 * as `{ file, path, code, message }` issues (unknown keys listed with the valid ones, bad values
 * with what was given) and returns a fallback, so one pass reports everything at once.
 */
import type { InputErrorCode, Issue } from '../core/index.js';

export type Json = Record<string, unknown>;

export class Checker {
  readonly issues: Issue[] = [];
  constructor(readonly file: string) {}

  add(at: string, code: InputErrorCode, message: string): void {
    this.issues.push({ file: this.file, path: at, code, message });
  }

  object(value: unknown, at: string): Json | null {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
    this.add(at, 'wrong-type', 'must be an object');
    return null;
  }

  /** Unknown keys are problems: list each with the valid ones. */
  keys(record: Json, at: string, allowed: readonly string[], required: readonly string[] = []): void {
    for (const key of Object.keys(record)) {
      if (!allowed.includes(key)) this.add(join(at, key), 'unknown-key', `unknown key '${key}' (valid: ${allowed.join(', ')})`);
    }
    for (const key of required) if (!(key in record)) this.add(join(at, key), 'missing-field', `'${key}' is required`);
  }

  integer(record: Json, key: string, at: string, minimum: number, fallback: number): number {
    const value = record[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
      this.add(join(at, key), 'bad-value', `must be an integer >= ${minimum}, got ${JSON.stringify(value)}`);
      return fallback;
    }
    return value;
  }

  string(record: Json, key: string, at: string, fallback: string): string {
    const value = record[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || value.length === 0) {
      this.add(join(at, key), 'bad-value', `must be a non-empty string, got ${JSON.stringify(value)}`);
      return fallback;
    }
    return value;
  }

  choice<T extends string>(record: Json, key: string, at: string, valid: readonly T[], fallback: T): T {
    const value = record[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !(valid as readonly string[]).includes(value)) {
      this.add(join(at, key), 'unknown-name', `unknown value ${JSON.stringify(value)} (valid: ${valid.join(', ')})`);
      return fallback;
    }
    return value as T;
  }

  stringList(record: Json, key: string, at: string): string[] {
    const value = record[key];
    if (value === undefined) return [];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
      this.add(join(at, key), 'bad-value', 'must be a list of strings');
      return [];
    }
    return value as string[];
  }
}

export function join(at: string, key: string | number): string {
  if (typeof key === 'number') return `${at}[${key}]`;
  return at === '' ? key : `${at}.${key}`;
}
