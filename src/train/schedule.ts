/**
 * Learning-rate schedules as data. nnU-Net's poly schedule is set at the start of each epoch;
 * `startEpoch`/`totalEpochs` let a strategy run one schedule over two phases (continual learning
 * continues the pre-training schedule into its tail).
 */
import { polyLr, POLY_DEFAULTS } from '../nn/index.js';

export interface PolySchedule {
  kind: 'poly';
  initialLr: number;
  exponent: number;
  /** The schedule's length in epochs (the lr reaches 0 at this epoch). */
  totalEpochs: number;
  /** Epoch of the schedule at which this run's epoch 0 sits (0 for a fresh schedule). */
  startEpoch: number;
}

export type LrSchedule = PolySchedule;

export function polySchedule(numEpochs: number, options: Partial<Omit<PolySchedule, 'kind'>> = {}): PolySchedule {
  return {
    kind: 'poly',
    initialLr: options.initialLr ?? POLY_DEFAULTS.initialLr,
    exponent: options.exponent ?? POLY_DEFAULTS.exponent,
    totalEpochs: options.totalEpochs ?? numEpochs,
    startEpoch: options.startEpoch ?? 0,
  };
}

/** Learning rate for this run's epoch `epoch` (0-based). */
export function learningRate(schedule: LrSchedule, epoch: number): number {
  return polyLr(schedule.startEpoch + epoch, schedule.totalEpochs, schedule.initialLr, schedule.exponent);
}
