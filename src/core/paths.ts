/**
 * Output paths checked before any work (STYLE rule 18): a file or folder a command will write must
 * be one it can create or replace (no ancestor is a regular file, the nearest existing ancestor is
 * a folder this process may write in), and must not be one of the command's inputs. Every command
 * that writes results calls these first, so a bad `-o` or `--out` is refused in a second, not
 * after the whole computation.
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

/**
 * Throws InputError (code 'output-is-input') when any of `outputs` is one of `inputs`: the same
 * path, or the same file reached through a link (compared by device and inode, so hard and
 * symbolic links count). An output that does not exist yet cannot be an input.
 */
export function assertNotOverwritingInputs(outputs: readonly string[], inputs: readonly string[], option: string): void {
  const byIdentity = new Map<string, string>();
  for (const input of inputs) {
    const id = identity(input);
    if (id !== undefined) byIdentity.set(id, input);
  }
  const resolvedInputs = new Map(inputs.map((input) => [path.resolve(input), input]));
  for (const output of outputs) {
    const id = identity(output);
    const input = resolvedInputs.get(path.resolve(output)) ?? (id !== undefined ? byIdentity.get(id) : undefined);
    if (input !== undefined) {
      throw new InputError(`${option} would overwrite the input ${input}: choose another output`, { file: output, code: 'output-is-input' });
    }
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
