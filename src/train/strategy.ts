/**
 * How a training run starts: a strategy builds the model (default PlainConvUNet), copies weights
 * from a pre-trained checkpoint, freezes parameters by prefix, and decides whether the optimizer's
 * momentum and the learning-rate schedule carry over. The trainer knows only this interface;
 * src/transfer supplies the transfer strategies, and `SCRATCH` (random initialisation) lives here.
 * What a strategy did is recorded in the checkpoint sidecar (load report, frozen prefixes, details).
 */
import type { Device } from '../tensor/index.js';
import type { HostTensor, LoadReport, Module } from '../nn/index.js';
import { buildArchitecture, DEFAULT_ARCHITECTURE, type MultiHeadUNet, type NetworkKeys, type PlainConvUNet, type UNetConfig } from '../models/index.js';
import type { PretrainedSource } from './pretrained.js';
import { polySchedule, type LrSchedule } from './schedule.js';
import type { TrainableModel } from './trainer.js';

export type StrategyModel = Module & TrainableModel & NetworkKeys;

export interface StrategyContext {
  model: StrategyModel;
  /** The validated pre-trained model (ours or nnU-Net's), or null when none was given. */
  pretrained: PretrainedSource | null;
  /** This run's epochs (a fresh poly schedule spans them). */
  numEpochs: number;
  device: Device;
}

export interface StrategySetup {
  loadReport: LoadReport | null;
  /** Parameter-name prefixes to freeze (no gradient, no update). */
  frozenPrefixes: string[];
  /** Momentum buffers to start from (continual learning), or null for a fresh optimizer. */
  optimizerState: Map<string, HostTensor> | null;
  schedule: LrSchedule;
  /** Facts for the sidecar, e.g. `{ decoderInit: 'pretrained' }`. */
  details: Record<string, unknown>;
}

export interface TrainingStrategy {
  name: string;
  requiresPretrained: boolean;
  /** Build the network for this strategy (default: PlainConvUNet of the plan). */
  buildModel?(config: UNetConfig, device: Device): StrategyModel;
  /** Name of the architecture `buildModel` makes (recorded in the sidecar; default 'PlainConvUNet'). */
  architecture?: string;
  /** MultiHeadUNet: classes per task head (recorded in the sidecar). */
  taskClasses?: number[];
  /**
   * Refuse a pre-trained checkpoint that cannot serve this strategy for a model of `config` (another
   * architecture, topology or plan, weights whose names or shapes do not fit the model, momentum
   * buffers that do not), before anything is written; throws naming every difference.
   */
  checkPretrained?(pretrained: PretrainedSource, config: UNetConfig): void;
  /** Prepare a freshly initialised model (not called on resume: the checkpoint holds the result). */
  prepare(context: StrategyContext): StrategySetup;
}

/** Train from scratch: He initialisation from the seed, nothing copied or frozen, a fresh poly schedule. */
export const SCRATCH: TrainingStrategy = {
  name: 'scratch',
  requiresPretrained: false,
  prepare(context) {
    return { loadReport: null, frozenPrefixes: [], optimizerState: null, schedule: polySchedule(context.numEpochs), details: { init: 'random (He, seeded)' } };
  },
};

/**
 * Multi-lesion pre-training: a MultiHeadUNet with one set of heads per source dataset (classes of
 * each in `taskClasses`), randomly initialised; every sample trains its own task's heads.
 */
export function multiHeadPretraining(taskClasses: readonly number[]): TrainingStrategy {
  return {
    name: 'multi-lesion',
    requiresPretrained: false,
    architecture: 'MultiHeadUNet',
    taskClasses: [...taskClasses],
    buildModel: (config, device) => buildArchitecture({ name: 'MultiHeadUNet', config, taskClasses: [...taskClasses] }, device) as MultiHeadUNet,
    prepare(context) {
      return { loadReport: null, frozenPrefixes: [], optimizerState: null, schedule: polySchedule(context.numEpochs), details: { init: 'random (He, seeded)', taskClasses: [...taskClasses] } };
    },
  };
}

export function buildStrategyModel(strategy: TrainingStrategy, config: UNetConfig, device: Device): StrategyModel {
  return strategy.buildModel ? strategy.buildModel(config, device) : (buildArchitecture({ name: DEFAULT_ARCHITECTURE, config }, device) as PlainConvUNet);
}

/**
 * The one table of the study's training strategies (src/transfer builds each one's plan): whether
 * it starts from a pre-trained checkpoint, and which strategy options apply to it.
 */
export const STRATEGIES = {
  scratch: { pretrained: false, options: [] },
  continual: { pretrained: true, options: [] },
  finetune: { pretrained: true, options: [] },
  'frozen-encoder': { pretrained: true, options: ['decoderInit'] },
  hybrid: { pretrained: true, options: ['decoderInit', 'fuseLevels'] },
} as const satisfies Record<string, { pretrained: boolean; options: readonly StrategyOption[] }>;

/** The options a strategy may take (`train --decoder-init`, `--fuse-levels`; an experiment arm's `options`). */
export type StrategyOption = 'decoderInit' | 'fuseLevels';
export type StrategyName = keyof typeof STRATEGIES;
/** The names lesionseg knows, in the study's order. */
export const STRATEGY_NAMES = Object.keys(STRATEGIES) as StrategyName[];

export function isStrategyName(value: string): value is StrategyName {
  return Object.hasOwn(STRATEGIES, value);
}

/** The strategies `option` applies to. */
export function strategiesTaking(option: StrategyOption): StrategyName[] {
  return STRATEGY_NAMES.filter((name) => (STRATEGIES[name].options as readonly StrategyOption[]).includes(option));
}
