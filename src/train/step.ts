/**
 * One training iteration as nnU-Net does it: forward (optionally under autocast), Dice+CE with
 * deep supervision, backward, gradient clipping at norm 12, SGD step. Every intermediate is
 * released before it returns; only the loss value (a number) leaves.
 */
import { add, autocast, mul, mulInPlace, noGrad, scope, type Tensor, type Device } from '../tensor/index.js';
import { clipGradNorm, crossRankIdle, deepSupervisionLoss, diceCeLoss, type DiceCeOptions, type Module, type SGD } from '../nn/index.js';
import { isTaskRouted, multiTaskLoss, type TaskRoutedModel } from './multiTask.js';

/** fp32, or autocast to bf16 / fp16 (the resolved choice; `auto` is resolved at the edge by core's resolvePrecision). */
export type { Precision } from '../core/index.js';
import type { Precision } from '../core/index.js';

export const TRAIN_STEP_DEFAULTS = { clipNorm: 12 } as const;

/**
 * Dynamic loss scaling for fp16 (torch.cuda.amp.GradScaler's rule: scale 2^16, halve and skip the
 * step on inf/NaN gradients, double after 2000 good steps). Plain data so it can be checkpointed.
 */
export interface GradScalerState {
  scale: number;
  goodSteps: number;
}

export const GRAD_SCALER_DEFAULTS: GradScalerState & { growthInterval: number } = { scale: 2 ** 16, goodSteps: 0, growthInterval: 2000 };

/** A single-head network (forward) or a multi-head one that routes each sample to its task's heads. */
export type SegmentationModel = Module & ({ forward(x: Tensor): Tensor[] } | TaskRoutedModel);

export interface TrainStepParts {
  model: SegmentationModel;
  optimizer: SGD;
  device: Device;
  precision: Precision;
  /** Dice+CE settings (from the plan: batch Dice, the dataset's ignore label). */
  lossOptions?: DiceCeOptions;
  /** Per task of a multi-head model (each source dataset has its own ignore label); default lossOptions. */
  taskLossOptions?: readonly DiceCeOptions[];
  clipNorm?: number;
  /** Deep-supervision weights (default nnU-Net's for the number of outputs). */
  weights?: readonly number[];
  scaler?: GradScalerState;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  /** False when fp16 loss scaling found inf/NaN gradients and skipped the update. */
  applied: boolean;
}

/** Run `fn` under autocast for bf16/fp16 (plain fp32 otherwise). */
export function withPrecision<T>(device: Device, precision: Precision, fn: () => T): T {
  if (precision === 'fp32') return fn();
  return autocast({ device, dtype: precision === 'bf16' ? 'bfloat16' : 'float16' }, fn);
}

/**
 * Loss of a batch (forward + deep-supervised Dice+CE), inside the caller's scope. A multi-head
 * model needs the task of each sample (`tasks`) and gets the multi-task loss (multiTask.ts).
 */
export function batchLoss(
  parts: Pick<TrainStepParts, 'model' | 'device' | 'precision' | 'lossOptions' | 'taskLossOptions' | 'weights'>,
  x: Tensor,
  targets: readonly Tensor[],
  tasks?: readonly number[],
  batchTasks?: readonly number[],
): Tensor {
  return withPrecision(parts.device, parts.precision, () => {
    const loss = (o: Tensor, t: Tensor): Tensor => diceCeLoss(o, t, parts.lossOptions);
    const model = parts.model;
    if (isTaskRouted(model)) {
      if (tasks === undefined) throw new Error('a multi-head model needs the task of each sample');
      const taskLoss = (o: Tensor, t: Tensor, task: number): Tensor => diceCeLoss(o, t, parts.taskLossOptions?.[task] ?? parts.lossOptions);
      return multiTaskLoss(model.forwardTasks(x, tasks), targets, tasks, taskLoss, parts.weights, globalTasks(parts, model, batchTasks));
    }
    return deepSupervisionLoss(model.forward(x), targets, loss, parts.weights);
  });
}

/**
 * A data-parallel rank's view of a multi-task batch (multiTaskLoss's `global`): the global batch's
 * tasks, and for a task with no local sample the zero reductions of each of its loss terms.
 */
export function globalTasks(
  parts: Pick<TrainStepParts, 'device' | 'lossOptions' | 'taskLossOptions' | 'weights'>,
  model: TaskRoutedModel,
  batchTasks: readonly number[] | undefined,
): { batchTasks: readonly number[]; idle: (task: number) => Tensor } | undefined {
  if (batchTasks === undefined) return undefined;
  if (parts.weights === undefined) throw new Error('a data-parallel multi-task loss needs the deep-supervision weights');
  const weights = parts.weights;
  return {
    batchTasks,
    // As deepSupervisionLoss weighs the levels (weight 0: not evaluated).
    idle: (task) => {
      const options = parts.taskLossOptions?.[task] ?? parts.lossOptions ?? {};
      let total: Tensor | null = null;
      for (const weight of weights) {
        if (weight === 0) continue;
        const term = mul(crossRankIdle(model.taskClasses[task]!, options, parts.device), weight);
        total = total === null ? term : add(total, term);
      }
      return total!;
    },
  };
}

export function trainStep(parts: TrainStepParts, x: Tensor, targets: readonly Tensor[], tasks?: readonly number[]): StepResult {
  return scope(() => applyGradients(parts, backwardPass(parts, x, targets, tasks)));
}

/**
 * The first half of a step: zero the gradients, forward, loss, backward (scaled for fp16). Returns
 * the loss value; the gradients are in the parameters. A data-parallel step reduces them over the
 * ranks before `applyGradients`.
 */
export function backwardPass(parts: TrainStepParts, x: Tensor, targets: readonly Tensor[], tasks?: readonly number[], batchTasks?: readonly number[]): number {
  return scope(() => {
    parts.model.zeroGrad();
    const loss = batchLoss(parts, x, targets, tasks, batchTasks);
    const lossValue = loss.item();
    const scaler = scalerOf(parts);
    if (scaler) mul(loss, scaler.scale).backward();
    else loss.backward();
    return lossValue;
  });
}

function scalerOf(parts: TrainStepParts): GradScalerState | undefined {
  return parts.precision === 'fp16' ? parts.scaler ?? (parts.scaler = { scale: GRAD_SCALER_DEFAULTS.scale, goodSteps: 0 }) : undefined;
}

/** The second half: unscale (fp16), clip at `clipNorm`, SGD step (skipped on inf/NaN under fp16). */
export function applyGradients(parts: TrainStepParts, lossValue: number): StepResult {
  return scope(() => {
    const scaler = scalerOf(parts);
    const parameters = parts.model.parameters();
    if (scaler) {
      const inverse = 1 / scaler.scale;
      noGrad(() => {
        for (const parameter of parameters) {
          const grad = parameter.value.grad;
          if (grad !== null) mulInPlace(grad, inverse);
        }
      });
    }
    const gradNorm = clipGradNorm(parameters, parts.clipNorm ?? TRAIN_STEP_DEFAULTS.clipNorm);
    if (scaler && !Number.isFinite(gradNorm)) {
      scaler.scale /= 2;
      scaler.goodSteps = 0;
      return { loss: lossValue, gradNorm, applied: false };
    }
    parts.optimizer.step();
    if (scaler && ++scaler.goodSteps >= GRAD_SCALER_DEFAULTS.growthInterval) {
      scaler.scale *= 2;
      scaler.goodSteps = 0;
    }
    return { loss: lossValue, gradNorm, applied: true };
  });
}
