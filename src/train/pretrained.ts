/**
 * The pre-trained model a transfer strategy starts from (`train --pretrained`), of either kind:
 * our checkpoint set (checkpoint.ts loadCheckpoint) or an nnU-Net v2 trained model (a model folder
 * with one fold, a fold_K folder, or a fold's .pth: io reads the checkpoint dict and its SGD state,
 * data's planFromNnunet turns plans.json into our plan). Both come out as one PretrainedSource:
 * weights under PyTorch's names, momentum buffers, the architecture and plan, and the length of
 * the poly schedule the pre-training ran (nnU-Net: 1000 epochs for nnUNetTrainer, X for
 * nnUNetTrainer_Xepochs), which continual learning continues.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, InputError } from '../core/index.js';
import { planFromNnunet, type Plan } from '../data/index.js';
import { nnunetCheckpointFile, nnunetModelFolderOf, readNnunetCheckpoint, readNnunetModelFolder } from '../io/index.js';
import type { UNetConfig } from '../models/index.js';
import type { HostTensor } from '../nn/index.js';
import { loadCheckpoint, type CheckpointName } from './checkpoint.js';

export interface PretrainedSource {
  kind: 'lesionseg' | 'nnunet';
  /** The weights file read. */
  file: string;
  /** The file a refusal names: our sidecar, or nnU-Net's .pth. */
  describedBy: string;
  name: CheckpointName;
  architecture: { name: string; config: UNetConfig; taskClasses: number[] | null };
  plan: Plan | null;
  /** The length (epochs) of the poly schedule the pre-training ran. */
  numEpochs: number;
  weights: Map<string, HostTensor>;
  /** SGD momentum buffers by parameter name; null when the checkpoint has none. */
  optimizer: Map<string, HostTensor> | null;
}

/** nnU-Net's num_epochs of a trainer: nnUNetTrainer 1000, nnUNetTrainer_Xepochs X; null when the name does not say. */
export function nnunetTrainerEpochs(trainerName: string): number | null {
  if (trainerName === 'nnUNetTrainer') return 1000;
  const match = /^nnUNetTrainer_(\d+)epochs$/.exec(trainerName);
  return match === null ? null : Number(match[1]);
}

function loadNnunetPretrained(modelPath: string): PretrainedSource {
  const where = nnunetModelFolderOf(modelPath)!;
  let file = where.file;
  if (file === null && where.fold !== null) file = nnunetCheckpointFile(where.fold, 'final');
  if (file === null) {
    const folds = readNnunetModelFolder(where.folder).folds.filter((f) => fs.existsSync(nnunetCheckpointFile(f.dir, 'final')));
    if (folds.length !== 1) {
      throw new InputError(`--pretrained needs one fold of this nnU-Net model: name it as ${path.join(modelPath, 'fold_K')} (found ${folds.map((f) => `fold_${f.fold}`).join(', ') || 'no fold with checkpoint_final.pth'})`, { file: modelPath, code: 'bad-pretrained' });
    }
    file = nnunetCheckpointFile(folds[0]!.dir, 'final');
  }
  if (!fs.existsSync(file)) throw new CheckpointError(`no ${path.basename(file)} here`, { file: path.dirname(file) });
  const checkpoint = readNnunetCheckpoint(file, { optimizer: true });
  const folder = readNnunetModelFolder(where.folder);
  const { plan, network } = planFromNnunet(folder.plans, folder.datasetJson, { plansFile: folder.plansFile, configuration: checkpoint.configuration });
  if (network.name !== 'PlainConvUNet') {
    throw new CheckpointError(`a ${network.name} cannot be transferred from yet: the transfer strategies build PlainConvUNet models (predict runs a ${network.name})`, { file });
  }
  const numEpochs = nnunetTrainerEpochs(checkpoint.trainerName) ?? checkpoint.currentEpoch;
  if (numEpochs === null) throw new CheckpointError(`cannot tell how many epochs ${checkpoint.trainerName} trained (no current_epoch)`, { file });
  const c = network.config;
  const config: UNetConfig = {
    inputChannels: c.inputChannels,
    numClasses: c.numClasses,
    featuresPerStage: c.featuresPerStage,
    kernelSizes: c.kernelSizes,
    strides: c.strides,
    nConvPerStage: c.nConvPerStage,
    nConvPerStageDecoder: c.nConvPerStageDecoder,
    deepSupervision: plan.configuration.deepSupervision,
  };
  return {
    kind: 'nnunet',
    file,
    describedBy: file,
    name: path.basename(file) === 'checkpoint_best.pth' ? 'best' : path.basename(file) === 'checkpoint_latest.pth' ? 'latest' : 'final',
    architecture: { name: network.name, config, taskClasses: null },
    plan,
    numEpochs,
    weights: checkpoint.weights,
    optimizer: checkpoint.optimizer?.momentum ?? null,
  };
}

/** Read the pre-trained model `modelPath` names (ours or nnU-Net's). */
export function loadPretrained(modelPath: string): PretrainedSource {
  if (nnunetModelFolderOf(modelPath) !== null) return loadNnunetPretrained(modelPath);
  const checkpoint = loadCheckpoint(modelPath);
  const { architecture, training, plan, name } = checkpoint.sidecar;
  return {
    kind: 'lesionseg',
    file: `${checkpoint.base}.safetensors`,
    describedBy: `${checkpoint.base}.json`,
    name,
    architecture,
    plan,
    numEpochs: training.numEpochs,
    weights: checkpoint.weights,
    optimizer: checkpoint.optimizer,
  };
}
