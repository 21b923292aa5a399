/**
 * The network settings a model builder needs, read from a plan: `unetConfigFromPlan` returns a
 * plain object (the models layer turns it into its own UNetConfig); the registry says which plan
 * architectures training builds.
 * A dataset's ignore label has no output channel (nnU-Net's num_segmentation_heads).
 */
import { InputError } from '../core/index.js';
import { segmentationClassCount } from '../io/index.js';
import { assertTrainable } from '../models/index.js';
import type { Plan } from './planning_schema.js';
import { previousStageChannelCount } from './previous_stage.js';
import type { Triple } from './planning_topology.js';

export interface UNetConfigFromPlan {
  inputChannels: number;
  /** Output classes of the chosen dataset, background included, the ignore label not. */
  numClasses: number;
  /** Every dataset's class count (background included): one head each for multi-dataset training. */
  numClassesPerDataset: Record<string, number>;
  featuresPerStage: number[];
  kernelSizes: Triple[];
  strides: Triple[];
  nConvPerStage: number;
  nConvPerStageDecoder: number;
  deepSupervision: boolean;
}

/** The U-Net settings of a plan, with the class count of `datasetName` (default: the first dataset). */
export function unetConfigFromPlan(plan: Plan, datasetName?: string): UNetConfigFromPlan {
  const network = plan.configuration.network;
  assertTrainable(network.architecture);
  const numClassesPerDataset: Record<string, number> = {};
  for (const dataset of plan.datasets) numClassesPerDataset[dataset.name] = segmentationClassCount(dataset.labels);
  const chosen = datasetName ?? plan.datasets[0]?.name;
  if (chosen === undefined || numClassesPerDataset[chosen] === undefined) {
    throw new InputError(
      `the plan has no dataset '${String(chosen)}': it covers ${plan.datasets.map((d) => d.name).join(', ')}`,
      { code: 'unknown-dataset' },
    );
  }
  return {
    // A cascade stage also takes the previous stage's one-hot segmentation (nnU-Net's determine_num_input_channels).
    inputChannels: plan.configuration.normalization.length + previousStageChannelCount(plan.configuration.previousStage, numClassesPerDataset[chosen]!),
    numClasses: numClassesPerDataset[chosen]!,
    numClassesPerDataset,
    featuresPerStage: [...network.featuresPerStage],
    kernelSizes: network.kernelSizes.map((k) => [...k] as Triple),
    strides: network.strides.map((s) => [...s] as Triple),
    nConvPerStage: network.nConvPerStage,
    nConvPerStageDecoder: network.nConvPerStageDecoder,
    deepSupervision: plan.configuration.deepSupervision,
  };
}
