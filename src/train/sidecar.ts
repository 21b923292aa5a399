/**
 * The trainer's part of a checkpoint sidecar (src/checkpoint writes and reads the set; what only
 * the trainer reads back to resume exactly is typed here): the training settings, the trainer
 * state after the completed epochs and the epoch history.
 */
import type { CheckpointSidecar, SidecarContent } from '../checkpoint/index.js';
import type { RunEnvironment } from './environment.js';
import type { LrSchedule } from './schedule.js';
import type { Precision } from './step.js';
import type { EpochRecord, TrainerState } from './trainer.js';

export interface TrainingSidecar extends CheckpointSidecar {
  training: {
    numEpochs: number;
    iterationsPerEpoch: number;
    validationIterations: number;
    seed: number;
    precision: Precision;
    device: string;
    /** libtorch's intra-op threads (null in runs written before it was always recorded). */
    threads: number | null;
    schedule: LrSchedule;
    optimizer: { kind: 'sgd'; momentum: number; nesterov: boolean; weightDecay: number };
    clipNorm: number;
  };
  /** CPU, thread count and library versions the numbers depend on (train/environment.ts; absent in older runs). */
  environment?: RunEnvironment;
  /** The trainer state after `state.epoch` completed epochs. */
  state: TrainerState;
  history: EpochRecord[];
}

export type TrainingSidecarContent = SidecarContent<TrainingSidecar>;
