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
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad input from the user: a file, an argument, a config. The message names the file. */
export class InputError extends LesionsegError {
  declare readonly code: InputErrorCode;
  readonly file: string | undefined;
  constructor(message: string, options?: { file?: string; code?: InputErrorCode; cause?: unknown }) {
    const file = options?.file;
    super(options?.code ?? 'input', file !== undefined ? `${file}: ${message}` : message, options);
    this.file = file;
  }
}

/** A validation that found one or more problems; `issues` lists every one of them. */
export class ValidationError extends InputError {
  readonly issues: Issue[];
  constructor(issues: Issue[], options?: { file?: string; cause?: unknown }) {
    const lines = issues.map((i) => `  - ${i.file}${i.path ? ` [${i.path}]` : ''}: ${i.message}`);
    super(`${issues.length} problem${issues.length === 1 ? '' : 's'} found:\n${lines.join('\n')}`, {
      ...options,
      code: 'validation',
    });
    this.issues = issues;
  }
}

/** A checkpoint that cannot be read or does not fit the model it is loaded into. */
export class CheckpointError extends InputError {
  constructor(message: string, options?: { file?: string; cause?: unknown }) {
    super(message, { ...options, code: 'checkpoint' });
  }
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
