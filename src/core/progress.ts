/**
 * Progress and logging as small interfaces: library code reports through them, the CLI decides how
 * to show it (a bar on a terminal, plain lines in logs). The silent default keeps tests quiet.
 */

export interface ProgressReporter {
  /** Begin a task of `total` steps. */
  start(label: string, total: number): void;
  /** Advance by `steps` (default 1), optionally with a short status text. */
  tick(steps?: number, status?: string): void;
  /** The task ended. */
  stop(): void;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

export const SILENT_PROGRESS: ProgressReporter = { start() {}, tick() {}, stop() {} };
export const SILENT_LOGGER: Logger = { info() {}, warn() {} };
