/**
 * JSON inputs are validated with zod schemas (STYLE rule 7): a schema declares a file's shape, its
 * TypeScript type is inferred from it, and one parse reports every problem at once. This module
 * maps zod's issues to ours, `{ file, path, code, message }` with codes from the closed table
 * (src/core/error-codes.ts):
 * - a key that is missing -> 'missing-field'; a value of another type -> 'wrong-type';
 * - a key the schema does not know (strict objects) -> 'unknown-key', one issue per key, listing
 *   the valid ones;
 * - a value out of range or not among the options -> 'bad-value';
 * - a rule the schema states itself (refinements) carries its own code: add it with `addIssue`.
 * Paths are written as each file's messages always named them: `a.b.0` (dots) or `a.b[0]` (brackets).
 */
import { z } from 'zod';
import type { InputErrorCode, Issue } from './errors.js';

export { z };

/** How a JSON path is written: `labels.ignore`, `strategies[4].options`. */
export type PathStyle = 'dots' | 'brackets';

export function formatPath(path: readonly PropertyKey[], style: PathStyle = 'dots'): string {
  let text = '';
  for (const key of path) {
    if (typeof key === 'number' && style === 'brackets') text += `[${key}]`;
    else text += text === '' ? String(key) : `.${String(key)}`;
  }
  return text;
}

/**
 * An integer. zod's own z.int() aborts the whole parse on a fractional number (its issue is not
 * continuable: the refinements of the objects around it, unknown keys included, would not run),
 * so a fraction is reported here as one problem among the others.
 */
export function integer(params?: Parameters<typeof z.number>[0]) {
  return z.number(params).superRefine((value, ctx) => {
    if (!Number.isInteger(value)) addIssue(ctx, 'wrong-type', `must be an integer, got ${JSON.stringify(value)}`);
  });
}

/** The refinement context zod hands to superRefine. */
type RefinementContext = z.RefinementCtx;

/** Report a problem with our code from a refinement; `path` is relative to the refined value. */
export function addIssue(ctx: RefinementContext, code: InputErrorCode, message: string, path: readonly PropertyKey[] = []): void {
  ctx.addIssue({ code: 'custom', message, path: [...path], params: { code } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The parent of `path` in `input` and whether it lacks the last key (a missing field). */
function isMissing(input: unknown, path: readonly PropertyKey[]): boolean {
  let at: unknown = input;
  for (const key of path.slice(0, -1)) {
    if (!isRecord(at) && !Array.isArray(at)) return false;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  const last = path[path.length - 1];
  return last !== undefined && isRecord(at) && !Object.hasOwn(at, last as string);
}

/** The value at `path` in `input` (undefined where the path leaves it). */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let at: unknown = input;
  for (const key of path) {
    if (!isRecord(at) && !Array.isArray(at)) return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

const ARTICLE: Record<string, string> = { object: 'an object', array: 'a list', int: 'an integer', number: 'a number', string: 'a string', boolean: 'true or false' };

/**
 * zod's own message for a built-in check, rewritten in our words ("must be an integer, got 1.5");
 * a message the schema gave itself is kept.
 */
function messageOf(issue: z.core.$ZodIssue, input: unknown, missing: boolean): string {
  if (!/^(Invalid input|Too small|Too big|Invalid option)/.test(issue.message)) return issue.message;
  const got = JSON.stringify(valueAt(input, issue.path)) ?? 'nothing';
  const last = issue.path[issue.path.length - 1];
  if (missing) return `'${String(last)}' is required`;
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${ARTICLE[issue.expected] ?? issue.expected}, got ${got}`;
    case 'too_small':
    case 'too_big': {
      const bound = String(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      const op = issue.code === 'too_small' ? (issue.inclusive === false ? '>' : '>=') : issue.inclusive === false ? '<' : '<=';
      if (issue.origin === 'array') return `must have ${issue.exact === true ? '' : `${op} `}${bound} entries, got ${got}`;
      if (issue.origin === 'string') return `must have ${op} ${bound} characters, got ${got}`;
      return `must be ${op} ${bound}, got ${got}`;
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${got}`;
    default:
      return `${issue.message}, got ${got}`;
  }
}

/**
 * The issues of the one alternative of a union whose outer type the value has (a string among
 * string | object, an object among string | object), with the union's path in front; null when no
 * alternative or several fit (then the union's own message says what the value may be).
 */
function fittingAlternative(issue: z.core.$ZodIssueInvalidUnion, input: unknown): z.core.$ZodIssue[] | null {
  const value = valueAt(input, issue.path);
  const atRoot = (alternative: readonly z.core.$ZodIssue[]) => alternative.filter((inner) => inner.path.length === 0);
  // The value has this alternative's type: no problem at its root, or only a value of its type outside a set.
  const fitsType = (alternative: readonly z.core.$ZodIssue[]) =>
    atRoot(alternative).every((inner) => inner.code === 'invalid_value' && inner.values.every((v) => typeof v === typeof value));
  const clean = issue.errors.filter((alternative) => atRoot(alternative).length === 0);
  const fitting = clean.length > 0 ? clean : issue.errors.filter(fitsType);
  if (fitting.length !== 1) return null;
  return fitting[0]!.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }));
}

/** Our issues for zod's, against `file` (see the file comment for the codes). */
export function issuesFromZod(error: z.ZodError | { issues: readonly z.core.$ZodIssue[] }, input: unknown, file: string, style: PathStyle = 'dots'): Issue[] {
  const issues: Issue[] = [];
  for (const issue of error.issues) {
    const at = (extra: readonly PropertyKey[] = []): string => formatPath([...issue.path, ...extra], style);
    switch (issue.code) {
      case 'custom': {
        const code = (issue.params as { code?: InputErrorCode } | undefined)?.code ?? 'bad-value';
        issues.push({ file, path: at(), code, message: issue.message });
        break;
      }
      case 'unrecognized_keys': {
        const valid = (issue as { valid?: readonly string[] }).valid;
        for (const key of issue.keys) {
          issues.push({ file, path: at([key]), code: 'unknown-key', message: `unknown key '${key}'${valid ? ` (valid: ${valid.join(', ')})` : ''}` });
        }
        break;
      }
      case 'invalid_union': {
        const inner = fittingAlternative(issue, input);
        if (inner !== null) {
          issues.push(...issuesFromZod({ issues: inner }, input, file, style));
          break;
        }
        const missing = isMissing(input, issue.path);
        issues.push({ file, path: at(), code: missing ? 'missing-field' : 'wrong-type', message: messageOf(issue, input, missing) });
        break;
      }
      case 'invalid_value': {
        if (isMissing(input, issue.path)) {
          issues.push({ file, path: at(), code: 'missing-field', message: `'${String(issue.path[issue.path.length - 1])}' is required` });
          break;
        }
        // A value outside a list of names is an unknown name (listing the valid ones), a number outside its set a bad value.
        const names = issue.values.every((v) => typeof v === 'string');
        const got = JSON.stringify(valueAt(input, issue.path)) ?? 'nothing';
        const message = /^Invalid option|^Invalid input/.test(issue.message) && names ? `unknown value ${got} (valid: ${issue.values.join(', ')})` : messageOf(issue, input, false);
        issues.push({ file, path: at(), code: names ? 'unknown-name' : 'bad-value', message });
        break;
      }
      case 'invalid_type': {
        const missing = isMissing(input, issue.path);
        issues.push({ file, path: at(), code: missing ? 'missing-field' : 'wrong-type', message: messageOf(issue, input, missing) });
        break;
      }
      default:
        issues.push({ file, path: at(), code: 'bad-value', message: messageOf(issue, input, false) });
    }
  }
  return issues;
}

/**
 * A strict object: each unknown key is an 'unknown-key' issue listing the valid keys (zod's own
 * strict objects report them without the valid ones), reported together with the other problems.
 */
export function strictObject<Shape extends z.ZodRawShape>(shape: Shape) {
  const valid = Object.keys(shape);
  return z
    .looseObject(shape)
    .superRefine((value, ctx) => {
      if (!isRecord(value)) return;
      for (const key of Object.keys(value)) {
        if (!valid.includes(key)) addIssue(ctx, 'unknown-key', `unknown key '${key}' (valid: ${valid.join(', ')})`, [key]);
      }
    }, ALWAYS) as unknown as z.ZodType<z.output<z.ZodObject<Shape>>, z.input<z.ZodObject<Shape>>>;
  // (typed as the plain object: the keys it lets through are refused above, so none is left)
}

/**
 * Refinement option: run even when a part of the value already failed, so that a rule across
 * fields (and unknown keys) is reported together with the parts' problems, not on the next run.
 * The refinement must then check the types it relies on itself.
 */
export const ALWAYS = { when: (): boolean => true };

/** Parse `input` with `schema`: the typed value, or every problem as our issues. */
export function parseJson<S extends z.ZodType>(
  schema: S,
  input: unknown,
  file: string,
  style: PathStyle = 'dots',
): { ok: true; value: z.output<S> } | { ok: false; issues: Issue[] } {
  const result = schema.safeParse(input);
  return result.success ? { ok: true, value: result.data } : { ok: false, issues: issuesFromZod(result.error, input, file, style) };
}
