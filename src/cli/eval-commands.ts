/** `lesionseg evaluate`: metrics of a prediction folder against a ground-truth folder (src/eval). */
import type { Command } from '@commander-js/extra-typings';
import { checkOutputs, InputError } from '../core/index.js';
import { evaluateFolder, readSplit, writeEvaluation } from '../eval/index.js';

function number(name: string, check: (n: number) => boolean, what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !check(n)) throw new InputError(`--${name} must be ${what}, got '${value}'`);
    return n;
  };
}

function formatStat(stat: unknown): string {
  const s = stat as { mean: number | null; std: number | null };
  return s.mean === null ? 'n/a' : `${s.mean.toFixed(4)} +/- ${(s.std ?? NaN).toFixed(4)}`;
}

export function registerEvalCommands(program: Command): void {
  program
    .command('evaluate')
    .description('per-case DSC, NSD, HD95, sensitivity, precision, specificity, F1, accuracy of predictions against ground truth')
    .requiredOption('--gt <dir>', 'ground-truth label maps (case.nii.gz)')
    .requiredOption('--pred <dir>', 'predicted label maps, same file names (with --split: fold_K/ subfolders if present)')
    .requiredOption('--json <file>', 'JSON report to write')
    .option('--csv <file>', 'CSV with one row per case')
    .option('--label <n>', 'label to evaluate', number('label', (n) => Number.isInteger(n) && n >= 1, 'a positive integer'), 1)
    .option('--tolerance <mm>', 'NSD tolerance in mm', number('tolerance', (n) => Number.isFinite(n) && n >= 0, 'a number of mm >= 0'), 3)
    .option('--ignore-label <n>', "voxels with this value in the ground truth count in no metric (nnU-Net's dataset.json 'ignore' label)", number('ignore-label', (n) => Number.isInteger(n) && n >= 1, 'a positive integer'))
    .option('--lungs <dir>', 'lung masks (left 1, right 2) named like the ground truth: adds lung involvement')
    .option('--split <file>', 'cross-validation split JSON: evaluate each fold\'s test cases')
    .option('--allow-missing', 'evaluate the cases that have a prediction and list the missing ones')
    .action(async (options) => {
      // The reports are written after every case is evaluated: their paths are checked first.
      // One rule for outputs (core checkOutputs): neither report may replace or land among the masks read.
      checkOutputs(
        [{ path: options.json, option: '--json', kind: 'file' }, ...(options.csv !== undefined ? [{ path: options.csv, option: '--csv', kind: 'file' as const }] : [])],
        [options.gt, options.pred, ...(options.lungs !== undefined ? [options.lungs] : []), ...(options.split !== undefined ? [options.split] : [])],
      );
      const result = await evaluateFolder({
        gtDir: options.gt,
        predDir: options.pred,
        label: options.label,
        toleranceMm: options.tolerance,
        ignoreLabel: options.ignoreLabel ?? null,
        ...(options.lungs !== undefined ? { lungsDir: options.lungs } : {}),
        ...(options.split !== undefined ? { split: readSplit(options.split) } : {}),
        allowMissing: options.allowMissing === true,
      });
      const report = writeEvaluation(result, { jsonPath: options.json, ...(options.csv !== undefined ? { csvPath: options.csv } : {}) });
      const summary = report.summary as Record<string, unknown>;
      const lines = [
        `evaluated ${result.cases.length} case(s), label ${result.label}, NSD at ${result.toleranceMm} mm` +
          (result.missing.length > 0 ? `; ${result.missing.length} prediction(s) missing: ${result.missing.map((m) => m.caseId).join(', ')}` : ''),
        `  DSC ${formatStat(summary.dsc)}  NSD ${formatStat(summary.nsd)}  HD95 ${formatStat(summary.hd95)} mm`,
        `  wrote ${options.json}${options.csv !== undefined ? ` and ${options.csv}` : ''}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
