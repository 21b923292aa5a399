/**
 * Output paths checked before any work (STYLE rule 18): a file or folder a command will write must
 * be one it can create or replace (no ancestor is a regular file, the nearest existing ancestor is
 * a folder this process may write in), and must not be one of the command's inputs. Every command
 * that writes results calls these first, so a bad `-o` or `--out` is refused in a second, not
 * after the whole computation.
 *
 * The one rule of outputs and inputs is checkOutputs: an output that is an input, lies inside an
 * input folder, or is a folder written into that holds an input is refused (code
 * 'output-is-input', exit 2). Paths are compared as the file system resolves them (symbolic links
 * followed, up to the nearest existing ancestor of a path not created yet) and by device and inode
 * (hard links). `-` is refused as a path: no command writes its results to standard output.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from './errors.js';

export interface OutputPathOptions {
  /** The option that named the path, as the user typed it: '-o', '--out', '--json'. */
  option: string;
  /** What will be written there: a file (replaced atomically) or a folder (created, then written in). */
  kind: 'file' | 'folder';
}

function lstatOrUndefined(target: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(target);
  } catch {
    return undefined;
  }
}

/** Throws InputError with code 'bad-output' unless this process may write in the existing folder `folder`. */
function requireWritableFolder(folder: string, target: string, option: string): void {
  try {
    fs.accessSync(folder, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    const where = path.resolve(folder) === path.resolve(target) ? 'the folder' : `${folder}`;
    throw new InputError(`${option}: cannot write in ${where} (permission denied)`, { file: target, code: 'bad-output' });
  }
}

/**
 * Throws InputError (code 'bad-output', naming `target` and the option) unless `target` can be
 * written as `kind`: an existing one is of that kind (a folder to write in, or a file whose folder
 * is writable, since files are replaced by rename), or a missing one can be created because its
 * nearest existing ancestor is a writable folder. Nothing is created.
 */
export function assertWritableOutput(target: string, options: OutputPathOptions): void {
  const { option, kind } = options;
  if (target === '-') {
    throw new InputError(`${option} -: results are not written to standard output; name a ${kind}`, { file: target, code: 'bad-output' });
  }
  const existing = lstatOrUndefined(target);
  if (existing !== undefined) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(target);
    } catch {
      throw new InputError(`${option}: is a dangling symbolic link`, { file: target, code: 'bad-output' });
    }
    if (kind === 'folder' && !stat.isDirectory()) throw new InputError(`${option}: is a file, not a folder`, { file: target, code: 'bad-output' });
    if (kind === 'file' && stat.isDirectory()) throw new InputError(`${option}: is a folder, not a file`, { file: target, code: 'bad-output' });
    requireWritableFolder(kind === 'folder' ? target : path.dirname(path.resolve(target)), target, option);
    return;
  }
  // Walk up to the nearest path that exists: it must be a folder we may create entries in.
  let ancestor = path.dirname(path.resolve(target));
  for (;;) {
    const stat = lstatOrUndefined(ancestor);
    if (stat !== undefined) {
      let resolved: fs.Stats;
      try {
        resolved = fs.statSync(ancestor);
      } catch {
        throw new InputError(`${option}: cannot be created: ${ancestor} is a dangling symbolic link`, { file: target, code: 'bad-output' });
      }
      if (!resolved.isDirectory()) throw new InputError(`${option}: cannot be created: ${ancestor} is a file, not a folder`, { file: target, code: 'bad-output' });
      requireWritableFolder(ancestor, target, option);
      return;
    }
    const parent = path.dirname(ancestor);
    if (parent === ancestor) throw new InputError(`${option}: cannot be created (no existing folder above it)`, { file: target, code: 'bad-output' });
    ancestor = parent;
  }
}

/** dev:ino of an existing path (following links), or undefined when it does not exist. */
function identity(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    return `${stat.dev}:${stat.ino}`;
  } catch {
    return undefined;
  }
}

/** Throws InputError (code 'duplicate-output') when two outputs are the same path. */
export function assertDistinctOutputs(outputs: readonly string[], option: string): void {
  const seen = new Set<string>();
  for (const output of outputs) {
    const resolved = path.resolve(output);
    if (seen.has(resolved)) throw new InputError(`${option}: two results would be written to this file`, { file: output, code: 'duplicate-output' });
    seen.add(resolved);
  }
}

/** The real path of `target`: symbolic links resolved up to its nearest existing ancestor, the rest appended. */
export function realPathOf(target: string): string {
  const resolved = path.resolve(target);
  const rest: string[] = [];
  let current = resolved;
  for (;;) {
    try {
      return path.join(fs.realpathSync(current), ...rest);
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return resolved;
      rest.unshift(path.basename(current));
      current = parent;
    }
  }
}

/** True when `inner` is `outer` or lies inside it (both real paths). */
function within(outer: string, inner: string): boolean {
  const relative = path.relative(outer, inner);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** True when `target` is a folder (links followed); false when it is anything else or nothing. */
export function isFolder(target: string): boolean {
  try {
    return fs.statSync(target).isDirectory();
  } catch {
    return false;
  }
}

/** An output path a command will write, with the option that named it. */
export interface OutputTarget extends OutputPathOptions {
  path: string;
}

/**
 * The one check of every command that writes (see the file comment), before any work: each output
 * can be written (assertWritableOutput), no two outputs are one path, and no output is an input,
 * lies inside an input folder, or (a folder written into) holds an input. `inputs` are every file
 * and folder the command reads; a folder input covers what lies inside it. Throws InputError naming
 * the output, its option and the input.
 */
export function checkOutputs(outputs: readonly OutputTarget[], inputs: readonly string[]): void {
  for (const output of outputs) if (output.path === '-') assertWritableOutput(output.path, output);
  const realInputs = inputs.map((input) => ({ input, real: realPathOf(input), folder: isFolder(input), id: identity(input) }));
  for (const output of outputs) {
    const real = realPathOf(output.path);
    const id = identity(output.path);
    for (const input of realInputs) {
      const same = real === input.real || (id !== undefined && id === input.id);
      if (same) throw new InputError(`${output.option} would overwrite the input ${input.input}: choose another output`, { file: output.path, code: 'output-is-input' });
      if (input.folder && within(input.real, real)) {
        throw new InputError(`${output.option} lies inside the input folder ${input.input}: write it elsewhere`, { file: output.path, code: 'output-is-input' });
      }
      if (output.kind === 'folder' && within(real, input.real)) {
        throw new InputError(`${output.option} holds the input ${input.input}, which writing this folder could replace: choose another folder`, { file: output.path, code: 'output-is-input' });
      }
    }
  }
  assertDistinctOutputs(outputs.map((output) => output.path), outputs[0]?.option ?? 'the output');
  for (const output of outputs) assertWritableOutput(output.path, output);
}
