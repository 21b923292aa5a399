/**
 * The CLI's loggers: one line per message on stderr, warnings prefixed. Messages carry values from
 * outside (paths, DICOM descriptions, case ids), so every control character in them is escaped
 * (oneLine): a file name holding a newline cannot split or forge a line of a log that a watcher
 * or an operator reads line by line.
 */
import { oneLine, type Logger } from '../core/index.js';

/** Plain lines (train, predict, experiment). */
export const stderrLogger: Logger = {
  info: (message) => void process.stderr.write(`${oneLine(message)}\n`),
  warn: (message) => void process.stderr.write(`warning: ${oneLine(message)}\n`),
};

/** Lines with an ISO time first (the PACS commands, which run as services). */
export const timestampedStderrLogger: Logger = {
  info: (message) => void process.stderr.write(`${new Date().toISOString()} ${oneLine(message)}\n`),
  warn: (message) => void process.stderr.write(`${new Date().toISOString()} warning: ${oneLine(message)}\n`),
};
