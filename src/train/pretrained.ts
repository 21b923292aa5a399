/**
 * The pre-trained model a transfer strategy starts from (`train --pretrained`), of either kind,
 * read through the one model reader (src/checkpoint): our checkpoint set (a checkpoint or a run
 * folder) or an nnU-Net v2 trained model (a model folder with one fold, a fold_K folder, or a
 * fold's .pth). It comes out with its momentum buffers and the length of the poly schedule the
 * pre-training ran (nnU-Net: 1000 epochs for nnUNetTrainer, X for nnUNetTrainer_Xepochs), which
 * continual learning continues.
 */
import { CheckpointError, InputError } from '../core/index.js';
import { assertTrainingRecord, readModelCheckpoint, resolvePretrained, type ModelCheckpoint } from '../checkpoint/index.js';
import { architectureEntry, TRANSFER_SOURCE_ARCHITECTURES, type UNetConfig } from '../models/index.js';

export interface PretrainedSource extends ModelCheckpoint {
  /** The file a refusal names: our sidecar, or nnU-Net's .pth. */
  describedBy: string;
  numEpochs: number;
}

/** An nnU-Net network's config as the transfer strategies compare it (deep supervision as its plan trains). */
function transferConfig(checkpoint: ModelCheckpoint): UNetConfig {
  const c = checkpoint.architecture.config;
  return {
    inputChannels: c.inputChannels,
    numClasses: c.numClasses,
    featuresPerStage: c.featuresPerStage,
    kernelSizes: c.kernelSizes,
    strides: c.strides,
    nConvPerStage: c.nConvPerStage,
    nConvPerStageDecoder: c.nConvPerStageDecoder,
    deepSupervision: checkpoint.plan?.configuration.deepSupervision ?? c.deepSupervision,
  };
}

/** Read the pre-trained model `modelPath` names (ours or nnU-Net's), with its SGD momentum. */
export function loadPretrained(modelPath: string): PretrainedSource {
  const checkpoint = readModelCheckpoint(resolvePretrained(modelPath), { optimizer: true });
  if (checkpoint.kind === 'lesionseg') {
    assertTrainingRecord(checkpoint.sidecar!, checkpoint.sidecarFile);
    return { ...checkpoint, describedBy: checkpoint.sidecarFile, numEpochs: checkpoint.sidecar!.training.numEpochs };
  }
  if (checkpoint.regions != null) {
    throw new InputError(`a region-based nnU-Net model (sigmoid heads for ${checkpoint.regions.names.join(', ')}) cannot be trained from here: predict runs it`, { file: checkpoint.file, code: 'unsupported-regions' });
  }
  const { name } = checkpoint.architecture;
  if (architectureEntry(name)?.transferSource !== true) {
    throw new CheckpointError(`a ${name} cannot be transferred from yet: the transfer strategies start from ${TRANSFER_SOURCE_ARCHITECTURES.join(' or ')} models (predict runs a ${name})`, { file: checkpoint.file });
  }
  const configuration = checkpoint.plan?.configuration;
  if (configuration?.spatialDims === 2 || configuration?.previousStage !== undefined) {
    // Training builds 3D configurations without a previous stage: a 2d or cascade plan would train something else than its model is.
    throw new CheckpointError(`a ${configuration.spatialDims === 2 ? '2d' : 'cascade'} nnU-Net model cannot start training yet (train runs 3d_fullres-like configurations; predict runs this one)`, { file: checkpoint.file });
  }
  if (checkpoint.numEpochs === null) throw new CheckpointError('cannot tell how many epochs this nnU-Net trainer trained (no current_epoch)', { file: checkpoint.file });
  return {
    ...checkpoint,
    architecture: { ...checkpoint.architecture, config: transferConfig(checkpoint) },
    describedBy: checkpoint.file,
    numEpochs: checkpoint.numEpochs,
  };
}
