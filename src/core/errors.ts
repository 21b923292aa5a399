/**
 * Domain errors. Every error lesionseg raises on purpose is a LesionsegError with a stable `code`;
 * the CLI prints InputError (and its subclasses) without a stack trace and exits with status 2.
 */
import type { ErrorCode, InputErrorCode } from './error-codes.js';

export { ERROR_CODES, type ErrorCode, type InputErrorCode } from './error-codes.js';

/** One problem found while validating a file or a config; validators collect all of them. */
export interface Issue {
  /** The file the problem is in (or the dataset folder), as the user named it. */
  file: string;
  /** Where inside the file: a JSON path like `labels.background`, or '' for the file itself. */
  path: string;
  /** A short machine-readable code such as `missing-field`, `shape-mismatch` (README "Error codes"). */
  code: InputErrorCode;
  message: string;
}

export class LesionsegError extends Error {
  readonly code: ErrorCode;
  /** The message's first line; `message` adds one `  - item` line per item. */
  readonly headline: string;
  /** The problems a message lists (every problem of a validation, every mismatch of a checkpoint), one line each. */
  readonly items: readonly string[];
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; items?: readonly string[] }) {
    const items = options?.items ?? [];
    super(items.length === 0 ? message : `${message}:\n${items.map((item) => `  - ${item}`).join('\n')}`, options);
    this.code = code;
    this.headline = message;
    this.items = items;
    this.name = new.target.name;
  }
}

/** Bad input from the user: a file, an argument, a config. The message names the file. */
export class InputError extends LesionsegError {
  declare readonly code: InputErrorCode;
  readonly file: string | undefined;
  constructor(message: string, options?: { file?: string; code?: InputErrorCode; cause?: unknown; items?: readonly string[] }) {
    const file = options?.file;
    super(options?.code ?? 'input', file !== undefined ? `${file}: ${message}` : message, options);
    this.file = file;
  }
}

/** A validation that found one or more problems; `issues` lists every one of them. */
export class ValidationError extends InputError {
  readonly issues: Issue[];
  constructor(issues: Issue[], options?: { file?: string; cause?: unknown }) {
    super(`${issues.length} problem${issues.length === 1 ? '' : 's'} found`, {
      ...options,
      code: 'validation',
      items: issues.map((i) => `${i.file}${i.path ? ` [${i.path}]` : ''}: ${i.message}`),
    });
    this.issues = issues;
  }
}

/** A checkpoint that cannot be read or does not fit the model it is loaded into. */
export class CheckpointError extends InputError {
  constructor(message: string, options?: { file?: string; cause?: unknown; items?: readonly string[] }) {
    super(message, { ...options, code: 'checkpoint' });
  }
}

/** C0 controls, DEL and C1 controls (a newline in a file name among them): the one definition, quote.ts refuses the same. */
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_CHARACTERS = new RegExp(CONTROL_CHARACTER.source, 'g');

/**
 * `text` on one line: every control character written as an escape (\n, \r, \t, else \u00XX),
 * so that a value from outside (a path holding a newline) cannot break or forge a line of output.
 */
export function oneLine(text: string): string {
  return text.replace(CONTROL_CHARACTERS, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** The lines the CLI prints for `error` (its message, line for line): the headline, then one `  - item` line per item, each one line whatever the values hold. */
export function errorLines(error: LesionsegError): string[] {
  return [`${oneLine(error.headline)}${error.items.length > 0 ? ':' : ''}`, ...error.items.map((item) => `  - ${oneLine(item)}`)];
}

/** An error raised inside libtorch (or the addon), with the op name and the input shapes. */
export class TorchError extends LesionsegError {
  readonly op: string;
  readonly shapes: readonly (readonly number[])[];
  constructor(op: string, shapes: readonly (readonly number[])[], message: string, options?: { cause?: unknown }) {
    const shapeText = shapes.map((s) => `[${s.join(', ')}]`).join(', ');
    super('torch', `${op}(${shapeText}): ${message}`, options);
    this.op = op;
    this.shapes = shapes;
  }
}

/** True for errors that are the user's to fix (printed without a stack trace). */
export function isUserError(error: unknown): error is InputError {
  return error instanceof InputError;
}
