/**
 * Test support for the command line: run `lesionseg` from the source (through tsx) as a child
 * process, as a user would, and collect its exit code and output. Only tests import this file.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN = path.join(ROOT, 'src', 'cli', 'main.ts');
/** What a stack frame looks like in stderr: user errors must never print one. */
export const STACK_LINE = '    at ';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `lesionseg ...args` in the repository root; resolves (never rejects) with the exit code and output. */
export function lesionseg(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}
