/**
 * Progress for the command line: a bar on a terminal (cli-progress), plain lines when stderr is
 * not a TTY (logs, CI), at most one line every few seconds and one at the end.
 */
import cliProgress from 'cli-progress';
import type { ProgressReporter } from '../core/index.js';

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (stream.isTTY) {
    let bar: cliProgress.SingleBar | null = null;
    return {
      start(label, total) {
        bar = new cliProgress.SingleBar(
          { format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted} {status}`, stream, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0, { status: '' });
      },
      tick(steps = 1, status = '') {
        bar?.increment(steps, { status });
      },
      stop() {
        bar?.stop();
        bar = null;
      },
    };
  }
  let label = '';
  let total = 0;
  let done = 0;
  let lastPrint = 0;
  return {
    start(name, count) {
      label = name;
      total = count;
      done = 0;
      lastPrint = Date.now();
      stream.write(`${label}: 0/${total}\n`);
    },
    tick(steps = 1, status = '') {
      done += steps;
      const now = Date.now();
      if (now - lastPrint > 5000 || done === total) {
        lastPrint = now;
        stream.write(`${label}: ${done}/${total}${status ? ` ${status}` : ''}\n`);
      }
    },
    stop() {},
  };
}
