/**
 * Multi-lesion (multi-task) training: one shared encoder-decoder with one set of heads per source
 * dataset (MultiHeadUNet), each sample's loss on its own dataset's heads.
 *
 * How the per-sample losses combine (nnU-Net's Dice is a batch Dice, computed over all samples of
 * a batch): the samples of a batch are grouped by task; each group is one "batch" for its task's
 * heads, with the deep-supervised Dice+CE (batch Dice over the group's samples, CE averaged over
 * its voxels); the batch loss is the mean of the groups' losses weighted by their sample counts,
 * sum_t (n_t / B) * L_t. A batch of one task is exactly the single-task loss, and a head whose task
 * has no sample in the batch gets no gradient at all (its grad stays null).
 *
 * A data-parallel rank has a share of the batch (`global`): the groups and their weights n_t / B
 * are the global batch's, each group's loss is taken over the ranks (the loss's crossRank), and
 * for a task whose samples are all on other ranks the rank takes part in that loss's reductions
 * with zeros (`idle`, which gives that term's value), so that every rank's value is the global
 * batch's loss and its gradient is its samples' part of the global gradient.
 */
import { argmax, cat, mul, add, narrow, type Tensor } from '../tensor/index.js';
import { deepSupervisionLoss, type Module } from '../nn/index.js';
import { accumulateCounts, diceFromCounts, emptyCounts, nanMean, type ClassCounts } from './pseudoDice.js';

/** A network that routes each sample through its task's heads (MultiHeadUNet.forwardTasks). */
export interface TaskRoutedModel {
  /** One output list per sample (deep-supervision levels, full resolution first, batch dimension 1). */
  forwardTasks(x: Tensor, taskOfSample: readonly number[]): Tensor[][];
  readonly taskClasses: readonly number[];
}

export function isTaskRouted(model: object): model is TaskRoutedModel {
  return typeof (model as Partial<TaskRoutedModel>).forwardTasks === 'function' && Array.isArray((model as Partial<TaskRoutedModel>).taskClasses);
}

/** Sample indices per task, in order of first appearance (tasks without samples are absent). */
export function groupByTask(taskOfSample: readonly number[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  taskOfSample.forEach((task, sample) => {
    const group = groups.get(task);
    if (group) group.push(sample);
    else groups.set(task, [sample]);
  });
  return groups;
}

/** Rows `samples` of a batched tensor (dimension 0), as one tensor. */
function selectSamples(x: Tensor, samples: readonly number[]): Tensor {
  const rows = samples.map((s) => narrow(x, 0, s, 1));
  return rows.length === 1 ? rows[0]! : cat(rows, 0);
}

/**
 * The multi-task loss of a batch (see the file comment): `outputsPerSample` from forwardTasks,
 * `targets` the batch's deep-supervision label maps, `loss` the per-output loss (Dice+CE) of a
 * task (each task's dataset may have its own ignore label).
 */
export function multiTaskLoss(
  outputsPerSample: readonly (readonly Tensor[])[],
  targets: readonly Tensor[],
  taskOfSample: readonly number[],
  loss: (logits: Tensor, target: Tensor, task: number) => Tensor,
  weights?: readonly number[],
  global?: { batchTasks: readonly number[]; idle: (task: number) => Tensor },
): Tensor {
  const localSize = taskOfSample.length;
  if (outputsPerSample.length !== localSize) throw new Error(`multi-task loss: ${outputsPerSample.length} sample outputs for ${localSize} task ids`);
  const batchTasks = global?.batchTasks ?? taskOfSample;
  const batchSize = batchTasks.length;
  const local = groupByTask(taskOfSample);
  let total: Tensor | null = null;
  for (const [task, globalSamples] of groupByTask(batchTasks)) {
    const samples = local.get(task);
    if (samples === undefined) {
      // The task's samples are on other ranks: its term's value (no gradient from this rank).
      const term = mul(global!.idle(task), globalSamples.length / batchSize);
      total = total === null ? term : add(total, term);
      continue;
    }
    const levels = outputsPerSample[samples[0]!]!.length;
    const groupOutputs = Array.from({ length: levels }, (_, level) => {
      const parts = samples.map((s) => outputsPerSample[s]![level]!);
      return parts.length === 1 ? parts[0]! : cat(parts, 0);
    });
    const groupTargets = targets.map((target) => selectSamples(target, samples));
    const term = mul(deepSupervisionLoss(groupOutputs, groupTargets, (logits, target) => loss(logits, target, task), weights), globalSamples.length / batchSize);
    total = total === null ? term : add(total, term);
  }
  if (total === null) throw new Error('multi-task loss: empty batch');
  return total;
}

/** Pseudo-Dice counts per task (each task has its own classes). */
export function emptyTaskCounts(taskClasses: readonly number[]): ClassCounts[] {
  return taskClasses.map((classes) => emptyCounts(classes));
}

/**
 * Add each sample's argmax prediction (full-resolution logits, batch 1) to its task's counts;
 * `ignoreLabels[task]` (when given) is left out of that task's counts.
 */
export function accumulateTaskCounts(
  counts: ClassCounts[],
  outputsPerSample: readonly (readonly Tensor[])[],
  seg: Int8Array,
  taskOfSample: readonly number[],
  ignoreLabels: readonly (number | undefined)[] = [],
): void {
  const voxels = seg.length / taskOfSample.length;
  taskOfSample.forEach((task, sample) => {
    const prediction = argmax(outputsPerSample[sample]![0]!, 1).toTypedArray() as ArrayLike<number | bigint>;
    accumulateCounts(counts[task]!, prediction, seg.subarray(sample * voxels, (sample + 1) * voxels), ignoreLabels[task]);
  });
}

/** Dice per foreground class of every task, concatenated task by task, and their NaN-mean. */
export function taskPseudoDice(counts: readonly ClassCounts[]): { perClass: number[]; pseudoDice: number } {
  const perClass = counts.flatMap((c) => diceFromCounts(c));
  return { perClass, pseudoDice: nanMean(perClass) };
}

export type TaskRoutedModule = Module & TaskRoutedModel;
