/**
 * `export --format torch`: one network's weights as a plain PyTorch state dict (an OrderedDict of
 * tensors, canonical and alias keys, in a torch.save zip), which dynamic-network-architectures'
 * PlainConvUNet or ResidualEncoderUNet, built with the plan's arch_kwargs, loads with
 * `load_state_dict(torch.load(FILE, weights_only=True), strict=True)`. It holds tensors only, so
 * every torch's weights-only loader opens it, 1.13's included. A folder of folds needs `fold` (a
 * state dict is one network).
 */
import { assertWritableOutput, checkOutputs, InputError } from '../core/index.js';
import type { CheckpointChoice } from '../checkpoint/index.js';
import { PthBuilder, pyOrderedDict } from '../io/index.js';
import { readExportModel, type ExportModel } from './model.js';
import { withNnunetAliases } from './state-dict.js';

export interface TorchExportOptions {
  run: string;
  /** The .pth file to write. */
  out: string;
  checkpoint?: CheckpointChoice;
  task?: string;
  /** Which fold of a folder of folds. */
  fold?: number;
}

export interface TorchExportResult {
  out: string;
  fold: number;
  architecture: string;
  task: string | null;
  parameters: number;
  stateDictKeys: number;
}

/** Write fold `fold` of `model` (the only one when null) as a state dict to `out`. */
export function writeTorchStateDict(model: ExportModel, out: string, fold: number | null): TorchExportResult {
  const chosen = fold === null ? model.folds[0]! : model.folds.find((f) => f.fold === fold);
  if (chosen === undefined) throw new InputError(`--fold ${fold}: the model has folds ${model.folds.map((f) => f.fold).join(', ')}`, { code: 'bad-fold' });
  if (fold === null && model.folds.length > 1) {
    throw new InputError(`the model has ${model.folds.length} folds (${model.folds.map((f) => f.fold).join(', ')}) and a state dict holds one network: choose one with --fold K (or --format nnunet for all)`, { code: 'bad-fold' });
  }
  const stateDict = withNnunetAliases(chosen.weights);
  const builder = new PthBuilder();
  const tensors = new Map([...chosen.weights.values()].map((value) => [value, builder.tensor(value)] as const));
  builder.write(out, pyOrderedDict([...stateDict].map(([name, value]) => [name, tensors.get(value)!] as const)));
  return { out, fold: chosen.fold, architecture: model.architecture, task: model.task, parameters: chosen.weights.size, stateDictKeys: stateDict.size };
}

/** `lesionseg export RUN --format torch --out FILE.pth`. */
export function exportTorch(options: TorchExportOptions): TorchExportResult {
  assertWritableOutput(options.out, { option: '--out', kind: 'file' });
  if (!options.out.endsWith('.pth') && !options.out.endsWith('.pt')) throw new InputError('--out: a PyTorch state dict is a .pth (or .pt) file', { file: options.out, code: 'bad-output' });
  const model = readExportModel(options.run, {
    ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}),
    ...(options.task !== undefined ? { task: options.task } : {}),
  });
  checkOutputs([{ path: options.out, option: '--out', kind: 'file' }], model.folds.map((f) => f.file));
  return writeTorchStateDict(model, options.out, options.fold ?? null);
}
