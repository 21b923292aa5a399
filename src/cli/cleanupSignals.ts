/**
 * Every command: SIGINT (Ctrl-C), SIGHUP, and SIGTERM where no training run handles it (signals.ts),
 * remove the temporary files in progress (core/temporary.ts: an atomic write's `.NAME.tmp-*`, a
 * DICOM work folder), then end the process by the same signal, so the shell sees what it always
 * saw (status 130 for Ctrl-C, 143 for SIGTERM) and no half-written file is left behind. Imports
 * core only: main.ts installs it before any command (and the addon) is loaded.
 */
import { removeTemporaryPaths } from '../core/index.js';

const CLEANUP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Install once, first (main.ts): the handler that removes temporary files on a signal and re-raises it. */
export function removeTemporaryFilesOnSignals(): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    // A training run's own SIGTERM handler (interruptSignal) stops it gracefully: leave that signal to it.
    if (signal === 'SIGTERM' && process.listenerCount('SIGTERM') > 1) return;
    const removed = removeTemporaryPaths();
    process.stderr.write(`lesionseg: ${signal}: stopped${removed > 0 ? `; removed ${removed} temporary file(s)` : ''}\n`);
    for (const s of CLEANUP_SIGNALS) process.removeListener(s, onSignal);
    process.kill(process.pid, signal);
  };
  for (const s of CLEANUP_SIGNALS) process.on(s, onSignal);
}
