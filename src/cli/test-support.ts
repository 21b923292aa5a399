/**
 * Test support for the command line: run `lesionseg` as a child process, as a user would, and
 * collect its exit code and output. Only tests import this file.
 *
 * The command is the compiled dist/ (what `bin/lesionseg.js` runs, and half the start-up CPU of
 * the sources through tsx) when dist/ is up to date with src/, and the sources through tsx when
 * it is not (a test run right after editing a file, before `npm run build`): never stale code.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN = path.join(ROOT, 'src', 'cli', 'main.ts');

/** The build's own rule (scripts/build.sh, tsconfig.build.json): no built source newer than dist/.tsbuildinfo. */
function distIsCurrent(): boolean {
  const stamp = path.join(ROOT, 'dist', '.tsbuildinfo');
  if (!fs.existsSync(stamp) || !fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) return false;
  const built = fs.statSync(stamp).mtimeMs;
  if (['tsconfig.json', 'tsconfig.build.json'].some((name) => fs.statSync(path.join(ROOT, name)).mtimeMs > built)) return false;
  const sources = fs.readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' });
  return sources.every((file) => {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts') || file.endsWith('test-support.ts') || file.split(path.sep).includes('test-helpers')) return true;
    return fs.statSync(path.join(ROOT, 'src', file)).mtimeMs <= built;
  });
}

/** Node's arguments that start the command line, before the command's own: `node ...CLI predict ...`. */
export const CLI: readonly string[] = distIsCurrent() ? [path.join(ROOT, 'bin', 'lesionseg.js')] : ['--import', 'tsx', MAIN];
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
    execFile(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}
