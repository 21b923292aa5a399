/**
 * Temporary files and folders in progress (an atomic write's `.NAME.tmp-*`, a DICOM conversion's
 * work folder): registered while they exist, so that the CLI's SIGINT/SIGTERM handler
 * (cli/signals.ts) removes them before the process ends, and Ctrl-C leaves nothing half written.
 */
import * as fs from 'node:fs';

const inProgress = new Set<string>();

export function registerTemporaryPath(file: string): void {
  inProgress.add(file);
}

export function unregisterTemporaryPath(file: string): void {
  inProgress.delete(file);
}

/** The temporary paths that exist now (registered and not yet renamed or removed). */
export function temporaryPathsInProgress(): string[] {
  return [...inProgress];
}

/** Remove every registered temporary path (synchronously: a signal handler calls it); returns how many were there. */
export function removeTemporaryPaths(): number {
  let removed = 0;
  for (const file of inProgress) {
    try {
      if (fs.existsSync(file)) removed++;
      fs.rmSync(file, { recursive: true, force: true });
    } catch {
      // Best effort: the process is ending.
    }
  }
  inProgress.clear();
  return removed;
}
