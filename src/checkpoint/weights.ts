/**
 * Loading a checkpoint's weights into a network all or nothing: every name present, none left
 * over, every shape equal; otherwise a CheckpointError listing the first problems, naming the file.
 */
import { CheckpointError } from '../core/index.js';
import { loadStateDict, type HostTensor, type LoadReport, type Module } from '../nn/index.js';

/** Every weight of the checkpoint that does not fit the model, as readable lines (none: they fit exactly). */
export function weightProblems(report: LoadReport): string[] {
  return [
    ...report.missing.map((n) => `missing ${n}`),
    ...report.unexpected.map((n) => `unexpected ${n}`),
    ...report.shapeMismatch.map((m) => `${m.name} has shape [${m.found.join(', ')}], the model [${m.expected.join(', ')}]`),
  ];
}

/** Load `weights` into `model`, all or nothing fitting; CheckpointError naming `file` lists the first problems. */
export function loadWeightsStrict(model: Module, weights: ReadonlyMap<string, HostTensor>, file: string, what: string): LoadReport {
  const report = loadStateDict(model, weights);
  const problems = weightProblems(report);
  if (problems.length > 0) {
    const shown = problems.slice(0, 8).join('; ');
    throw new CheckpointError(`the weights do not fit ${what}: ${shown}${problems.length > 8 ? `; and ${problems.length - 8} more` : ''}`, { file });
  }
  return report;
}

