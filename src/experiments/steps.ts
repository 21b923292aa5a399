/**
 * Running one heavy step (pre-training, training) of a study as its own `lesionseg` process: each
 * step gets a fresh libtorch (memory freed at exit, its own threads), its output goes to a log file
 * in the study folder, and the command's own resumability (`--resume`) makes an interrupted study
 * continue where it stopped. The CLI supplies how to start `lesionseg` (this layer reads no argv).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { LesionsegError } from '../core/index.js';

/** How to start the `lesionseg` command: e.g. node with [--import tsx, src/cli/main.ts] or [bin/lesionseg.js]. */
export interface CommandLauncher {
  executable: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** Runs `lesionseg <args>` writing its output to `logFile`; rejects when it fails. */
export type StepRunner = (args: readonly string[], logFile: string) => Promise<void>;

/** The last `lines` lines of a log (for error messages). */
export function logTail(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    // Progress bars redraw with carriage returns: keep the last state of each line.
    return text
      .split('\n')
      .map((line) => line.split('\r').at(-1) ?? '')
      .filter((line) => line.trim() !== '')
      .slice(-lines)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

export function spawnStepRunner(launcher: CommandLauncher): StepRunner {
  return (args, logFile) =>
    new Promise<void>((resolve, reject) => {
      fs.mkdirSync(path.dirname(logFile), { recursive: true });
      const fd = fs.openSync(logFile, 'a');
      fs.writeSync(fd, `\n$ lesionseg ${args.join(' ')}\n`);
      const child = spawn(launcher.executable, [...launcher.args, ...args], { stdio: ['ignore', fd, fd], env: launcher.env ?? process.env });
      let settled = false;
      const done = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        fs.closeSync(fd);
        if (error) reject(error);
        else resolve();
      };
      child.on('error', (error) => done(new LesionsegError('step-failed', `cannot start lesionseg ${args[0] ?? ''}: ${error.message}`, { cause: error })));
      child.on('exit', (code, signal) => {
        if (code === 0) return done(null);
        const why = signal !== null ? `was killed (${signal})` : `exited with status ${code}`;
        done(new LesionsegError('step-failed', `lesionseg ${args.join(' ')} ${why}; its log (${logFile}) ends:\n${logTail(logFile)}`));
      });
    });
}
