/**
 * SIGTERM and SIGUSR1 for the training commands: the first asks the run to stop after its current
 * epoch (its checkpoint written) and the command to exit with EXIT_INTERRUPTED (75, "run me again"),
 * which is how Slurm's time-limit signal (`--signal=B:USR1@s`), scancel and a preemption reach a
 * study's job; a second one removes the temporary files in progress and ends the process at once,
 * as the signal would by default (cleanupSignals.ts does the same for SIGINT and other commands).
 */
import { removeTemporaryPaths } from '../core/index.js';
import { EXIT_INTERRUPTED } from '../experiments/index.js';

const SIGNALS = ['SIGTERM', 'SIGUSR1'] as const;

/** `stopping` says what the command does on the first signal (pacs watch: after its current step). */
export function interruptSignal(stopping = 'stopping after this epoch (its checkpoint is saved; --resume continues)'): AbortSignal {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      for (const s of SIGNALS) process.removeAllListeners(s);
      removeTemporaryPaths();
      process.kill(process.pid, signal);
      return;
    }
    process.stderr.write(`lesionseg: ${signal}: ${stopping}\n`);
    controller.abort(signal);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return controller.signal;
}

/** After a training command: a run stopped by a signal exits 75. */
export function exitIfInterrupted(signal: AbortSignal, finished: boolean): void {
  if (signal.aborted && !finished) process.exitCode = EXIT_INTERRUPTED;
}
