/**
 * The trainer: a loop over epochs of N iterations with injected parts (model, optimizer, schedule,
 * loaders) and hooks (logging, checkpoints, progress). Each epoch sets the poly learning rate,
 * re-seeds libtorch from the trainer's own Rng, seeks the loaders to the epoch's first batch, runs
 * the training steps, then validates on held-out patches (loss and nnU-Net's pseudo Dice with its
 * EMA). Everything that decides the next epoch lives in `TrainerState`, so a checkpoint of the
 * state plus weights and momentum buffers continues a run exactly. The constructor does no I/O.
 */
import { argmax, manualSeed, noGrad, scope, tuneAllocatorForTraining, type Device } from '../tensor/index.js';
import { deepSupervisionLoss, deepSupervisionWeights, diceCeLoss, type DiceCeOptions, type SGD } from '../nn/index.js';
import { Rng, type RngState } from '../core/index.js';
import { batchTensors, type BatchLoader } from './batches.js';
import { accumulateCounts, diceFromCounts, emptyCounts, nanMean, updateEma } from './pseudoDice.js';
import { learningRate, type LrSchedule } from './schedule.js';
import { applyGradients, backwardPass, globalTasks, trainStep, withPrecision, type GradScalerState, type Precision, type StepResult, type TrainStepParts } from './step.js';
import type { DataParallel } from './distributed.js';
import { accumulateTaskCounts, emptyTaskCounts, isTaskRouted, multiTaskLoss, taskPseudoDice } from './multiTask.js';

/**
 * The model the trainer drives: deep-supervision outputs, full resolution first. A multi-head
 * model (forwardTasks) trains each sample on its task's heads; its validation pseudo Dice lists
 * the foreground classes of every task, task by task.
 */
export type TrainableModel = TrainStepParts['model'] & {
  readonly config: { strides: number[][]; numClasses: number };
  /** False: one output (full resolution only). */
  deepSupervision?: boolean;
};

/** Everything besides weights and momentum that the next epoch depends on (plain JSON). */
export interface TrainerState {
  /** Epochs completed so far (= the next epoch to run, 0-based). */
  epoch: number;
  ema: number | null;
  bestEma: number | null;
  scaler: GradScalerState | null;
  /** The trainer's Rng, which seeds libtorch at the start of each epoch. */
  rng: RngState;
  /** Training seconds of every epoch completed so far. */
  epochSeconds: number[];
}

/** One line of log.jsonl. */
export interface EpochRecord {
  epoch: number;
  train_loss: number;
  val_loss: number | null;
  pseudo_dice: number | null;
  pseudo_dice_per_class: (number | null)[];
  ema_pseudo_dice: number | null;
  is_best: boolean;
  lr: number;
  epoch_seconds: number;
  loader_wait_seconds: number;
  /** Steps skipped by fp16 loss scaling (inf/NaN gradients). */
  skipped_steps: number;
}

export interface TrainerHook {
  onTrainStart?(trainer: Trainer): void | Promise<void>;
  onEpochStart?(trainer: Trainer, epoch: number, lr: number): void | Promise<void>;
  onIteration?(trainer: Trainer, iteration: number, loss: number): void;
  /** Called after the state is updated for the epoch (state.epoch is already epoch + 1). */
  onEpochEnd?(trainer: Trainer, record: EpochRecord): void | Promise<void>;
  onTrainEnd?(trainer: Trainer, records: EpochRecord[]): void | Promise<void>;
}

export interface TrainerOptions {
  model: TrainableModel;
  optimizer: SGD;
  schedule: LrSchedule;
  loader: BatchLoader;
  /** Patches of held-out training cases; null skips validation (no pseudo Dice, no best checkpoint). */
  validationLoader: BatchLoader | null;
  numEpochs: number;
  iterationsPerEpoch: number;
  validationIterations: number;
  device: Device;
  precision: Precision;
  seed: number;
  /** Dice+CE settings; runTraining passes the plan's (batch Dice, the dataset's ignore label). */
  lossOptions?: DiceCeOptions;
  /** Per task of a multi-head model (default lossOptions). */
  taskLossOptions?: readonly DiceCeOptions[];
  clipNorm?: number;
  hooks?: TrainerHook[];
  /** A restored state (resume); default a fresh one from `seed`. */
  state?: TrainerState;
  /**
   * This process is one rank of a data-parallel run (distributed.ts): the loaders give the rank's
   * part of each batch, losses are the global batch's, gradients are summed over the ranks before
   * clipping, pseudo-Dice counts are summed, and the ranks agree on stopping.
   */
  dataParallel?: DataParallel;
}

export function initialTrainerState(seed: number): TrainerState {
  return { epoch: 0, ema: null, bestEma: null, scaler: null, rng: new Rng(seed).fork('trainer').getState(), epochSeconds: [] };
}

const nullIfNaN = (value: number): number | null => (Number.isNaN(value) ? null : value);

export class Trainer {
  readonly options: Readonly<TrainerOptions>;
  private current: TrainerState;
  private stopRequested = false;

  constructor(options: TrainerOptions) {
    tuneAllocatorForTraining();
    for (const key of ['numEpochs', 'iterationsPerEpoch'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) throw new RangeError(`Trainer: ${key} must be a positive integer, got ${options[key]}`);
    }
    if (!Number.isInteger(options.validationIterations) || options.validationIterations < 0) {
      throw new RangeError(`Trainer: validationIterations must be a non-negative integer, got ${options.validationIterations}`);
    }
    this.options = options;
    this.current = structuredClone(options.state ?? initialTrainerState(options.seed));
  }

  get model(): TrainableModel {
    return this.options.model;
  }

  get optimizer(): SGD {
    return this.options.optimizer;
  }

  /** A copy of the current state. */
  get state(): TrainerState {
    return structuredClone(this.current);
  }

  get finished(): boolean {
    return this.current.epoch >= this.options.numEpochs;
  }

  /** Stop after the current epoch (its hooks still run). */
  requestStop(): void {
    this.stopRequested = true;
  }

  private get numOutputs(): number {
    return this.model.config.strides.length - 1;
  }

  private stepParts(): TrainStepParts {
    const o = this.options;
    const numOutputs = this.model.deepSupervision === false ? 1 : this.numOutputs;
    const parts: TrainStepParts = { model: o.model, optimizer: o.optimizer, device: o.device, precision: o.precision, weights: deepSupervisionWeights(numOutputs) };
    if (o.lossOptions !== undefined) parts.lossOptions = o.lossOptions;
    if (o.taskLossOptions !== undefined) parts.taskLossOptions = o.taskLossOptions;
    if (o.dataParallel !== undefined) {
      const crossRank = o.dataParallel.crossRank;
      parts.lossOptions = { ...(o.lossOptions ?? {}), crossRank };
      if (o.taskLossOptions !== undefined) parts.taskLossOptions = o.taskLossOptions.map((options) => ({ ...options, crossRank }));
    }
    if (o.clipNorm !== undefined) parts.clipNorm = o.clipNorm;
    if (this.current.scaler !== null) parts.scaler = this.current.scaler;
    return parts;
  }

  /** Run the remaining epochs (all, or up to a stop request); returns the records of the epochs run. */
  async run(): Promise<EpochRecord[]> {
    const hooks = this.options.hooks ?? [];
    const records: EpochRecord[] = [];
    for (const hook of hooks) await hook.onTrainStart?.(this);
    // Ranks stop together: a signal may reach them at different moments.
    const agreeStop = async (): Promise<boolean> => (this.options.dataParallel ? this.options.dataParallel.any(this.stopRequested) : this.stopRequested);
    while (!this.finished && !(await agreeStop())) {
      const record = await this.runEpoch();
      records.push(record);
      for (const hook of hooks) await hook.onEpochEnd?.(this, record);
    }
    for (const hook of hooks) await hook.onTrainEnd?.(this, records);
    return records;
  }

  private async runEpoch(): Promise<EpochRecord> {
    const o = this.options;
    const hooks = o.hooks ?? [];
    const epoch = this.current.epoch;
    const start = process.hrtime.bigint();
    const waitBefore = o.loader.waitSeconds + (o.validationLoader?.waitSeconds ?? 0);
    const lr = learningRate(o.schedule, epoch);
    o.optimizer.lr = lr;
    const rng = new Rng(this.current.rng);
    manualSeed(rng.nextUint32());
    for (const hook of hooks) await hook.onEpochStart?.(this, epoch, lr);

    o.loader.seek(epoch * o.iterationsPerEpoch);
    const parts = this.stepParts();
    const deepSupervision = parts.weights!.length;
    let lossSum = 0;
    let skipped = 0;
    for (let iteration = 0; iteration < o.iterationsPerEpoch; iteration++) {
      const batch = await o.loader.next();
      let result: StepResult;
      if (o.dataParallel !== undefined) {
        const lossValue = scope(() => {
          const { input, targets } = batchTensors(batch, o.device, this.model.config.strides, deepSupervision);
          return backwardPass(parts, input, targets, batch.tasks, batch.batchTasks);
        });
        await o.dataParallel.reduceGradients(this.model);
        result = applyGradients(parts, lossValue);
      } else {
        result = scope(() => {
          const { input, targets } = batchTensors(batch, o.device, this.model.config.strides, deepSupervision);
          return trainStep(parts, input, targets, batch.tasks);
        });
      }
      o.loader.release?.(batch); // its arrays were copied to the device: the loader may refill them
      lossSum += result.loss;
      if (!result.applied) skipped++;
      for (const hook of hooks) hook.onIteration?.(this, iteration, result.loss);
      // Let the event loop turn once per step: Node-API runs the finalizers of released tensor
      // wrappers from it, and an in-process loader's already-resolved batches would not yield.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (parts.scaler !== undefined) this.current.scaler = { ...parts.scaler };

    const validation = await this.validate(epoch, parts);
    const ema = validation ? updateEma(this.current.ema, validation.pseudoDice) : this.current.ema;
    const isBest = validation !== null && ema !== null && (this.current.bestEma === null || ema > this.current.bestEma);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    this.current = {
      epoch: epoch + 1,
      ema,
      bestEma: isBest ? ema : this.current.bestEma,
      scaler: this.current.scaler,
      rng: rng.getState(),
      epochSeconds: [...this.current.epochSeconds, seconds],
    };
    return {
      epoch,
      train_loss: lossSum / o.iterationsPerEpoch,
      val_loss: validation?.loss ?? null,
      pseudo_dice: validation ? nullIfNaN(validation.pseudoDice) : null,
      pseudo_dice_per_class: validation ? validation.perClass.map(nullIfNaN) : [],
      ema_pseudo_dice: ema,
      is_best: isBest,
      lr,
      epoch_seconds: seconds,
      loader_wait_seconds: o.loader.waitSeconds + (o.validationLoader?.waitSeconds ?? 0) - waitBefore,
      skipped_steps: skipped,
    };
  }

  /** Validation loss and pseudo Dice over this epoch's validation batches (null without a loader). */
  private async validate(epoch: number, parts: TrainStepParts): Promise<{ loss: number; pseudoDice: number; perClass: number[] } | null> {
    const o = this.options;
    if (o.validationLoader === null || o.validationIterations === 0) return null;
    o.validationLoader.seek(epoch * o.validationIterations);
    const model = o.model;
    const counts = emptyCounts(this.model.config.numClasses);
    const taskCounts = isTaskRouted(model) ? emptyTaskCounts(model.taskClasses) : null;
    const optionsOfTask = (task: number): DiceCeOptions | undefined => parts.taskLossOptions?.[task] ?? parts.lossOptions;
    let lossSum = 0;
    for (let i = 0; i < o.validationIterations; i++) {
      const batch = await o.validationLoader.next();
      lossSum += noGrad(() =>
        scope(() => {
          const { input, targets } = batchTensors(batch, o.device, this.model.config.strides, parts.weights!.length);
          if (isTaskRouted(model)) {
            return withPrecision(o.device, o.precision, () => {
              const outputs = model.forwardTasks(input, batch.tasks);
              const ignoreLabels = model.taskClasses.map((_, task) => optionsOfTask(task)?.ignoreLabel);
              accumulateTaskCounts(taskCounts!, outputs, batch.seg, batch.tasks, ignoreLabels);
              const global = globalTasks(parts, model, batch.batchTasks);
              return multiTaskLoss(outputs, targets, batch.tasks, (logits, target, task) => diceCeLoss(logits, target, optionsOfTask(task)), parts.weights, global).item();
            });
          }
          return withPrecision(o.device, o.precision, () => {
            const outputs = model.forward(input);
            const loss = deepSupervisionLoss(outputs, targets, (logits, target) => diceCeLoss(logits, target, parts.lossOptions), parts.weights);
            accumulateCounts(counts, argmax(outputs[0]!, 1).toTypedArray() as ArrayLike<number | bigint>, batch.seg, o.lossOptions?.ignoreLabel);
            return loss.item();
          });
        }),
      );
      o.validationLoader.release?.(batch);
    }
    if (o.dataParallel !== undefined) await o.dataParallel.sumCounts(taskCounts ?? [counts]);
    if (taskCounts !== null) return { loss: lossSum / o.validationIterations, ...taskPseudoDice(taskCounts) };
    const perClass = diceFromCounts(counts);
    return { loss: lossSum / o.validationIterations, pseudoDice: nanMean(perClass), perClass };
  }
}
