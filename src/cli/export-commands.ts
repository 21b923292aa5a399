/**
 * `lesionseg export RUN --format nnunet|torch|onnx --out PATH`: a trained model for another tool
 * (src/export). One switch on the format, each branch one entry function: exportNnunet (a model
 * folder for nnU-Net v2), exportTorch (a state dict for PyTorch), exportOnnx (one network as
 * an ONNX model, src/export/onnx.ts).
 * RUN and the output are checked before any weight is read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Command, Option } from '@commander-js/extra-typings';
import { checkOutputs, InputError } from '../core/index.js';
import { checkNnunetOutput, exportNnunet, exportOnnx, exportTorch } from '../export/index.js';
import { integer } from './parse.js';

export const EXPORT_FORMATS = ['nnunet', 'torch', 'onnx'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportCliOptions {
  format: ExportFormat;
  out: string;
  checkpoint: 'final' | 'best';
  task?: string;
  fold?: number;
}

async function exportOnnxBranch(run: string, options: ExportCliOptions): Promise<unknown> {
  if (options.task !== undefined) {
    throw new InputError(`--task ${options.task}: ONNX export takes single-head models; a multi-head pre-training model has no single label space (fine-tune it, then export that run)`, { code: 'not-exportable' });
  }
  return exportOnnx(run, options.out, { checkpoint: options.checkpoint, ...(options.fold !== undefined ? { fold: options.fold } : {}) });
}

/** Run the export; returns the result object the format's entry function gives. */
export async function runExport(run: string, options: ExportCliOptions): Promise<unknown> {
  if (!fs.existsSync(run)) throw new InputError('RUN not found: give a run folder, a checkpoint or a folder of fold_K runs', { file: run, code: 'missing-model' });
  if (options.fold !== undefined && options.format === 'nnunet') throw new InputError('--fold applies to --format torch and onnx; --format nnunet exports every fold', { code: 'bad-arguments' });
  // The run's own files are inputs: a checkpoint's folder holds its sidecar and the other checkpoints.
  const runFolder = fs.statSync(run).isDirectory() ? run : path.dirname(run);
  checkOutputs([{ path: options.out, option: '--out', kind: options.format === 'nnunet' ? 'folder' : 'file' }], [runFolder]);
  switch (options.format) {
    case 'nnunet':
      checkNnunetOutput(options.out);
      return exportNnunet({ run, out: options.out, checkpoint: options.checkpoint, ...(options.task !== undefined ? { task: options.task } : {}) });
    case 'torch':
      return exportTorch({ run, out: options.out, checkpoint: options.checkpoint, ...(options.task !== undefined ? { task: options.task } : {}), ...(options.fold !== undefined ? { fold: options.fold } : {}) });
    case 'onnx':
      return exportOnnxBranch(run, options);
  }
}

export function registerExportCommands(program: Command): void {
  program
    .command('export')
    .description('write a trained model for nnU-Net v2 (a model folder), PyTorch (a state dict) or ONNX runtimes')
    .argument('<run>', 'a run folder (its checkpoint_final), a checkpoint, or a folder of fold_K runs (a study arm: all folds as one model)')
    .addOption(new Option('--format <format>', 'nnunet: plans.json, dataset.json, fold_K/checkpoint_final.pth; torch: one .pth state dict; onnx: one .onnx').choices(EXPORT_FORMATS).makeOptionMandatory())
    .requiredOption('--out <path>', 'nnunet: the model folder to create; torch: FILE.pth; onnx: FILE.onnx')
    .addOption(new Option('--checkpoint <which>', 'checkpoint_final or checkpoint_best of each run or fold').choices(['final', 'best'] as const).default('final' as const))
    .option('--task <name>', 'multi-head (multi-lesion) models: the task whose head is exported (its dataset name)')
    .option('--fold <k>', 'torch and onnx: which fold of a folder of fold_K runs', integer('fold', 0))
    .option('--json', 'print the result as JSON')
    .action(async (run, options) => {
      const result = await runExport(run, {
        format: options.format,
        out: options.out,
        checkpoint: options.checkpoint,
        ...(options.task !== undefined ? { task: options.task } : {}),
        ...(options.fold !== undefined ? { fold: options.fold } : {}),
      });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const r = result as { out?: string; folds?: number[]; fold?: number; architecture?: string; task?: string | null };
      const what = r.folds !== undefined ? `fold${r.folds.length === 1 ? '' : 's'} ${r.folds.join(', ')}` : r.fold !== undefined ? `fold ${r.fold}` : '';
      process.stdout.write(`exported ${r.architecture ?? 'the model'}${r.task ? ` (task ${r.task})` : ''}${what ? ` ${what}` : ''} as ${options.format} to ${r.out ?? options.out}\n`);
    });
}
