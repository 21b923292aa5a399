/**
 * Sliding-window prediction of one preprocessed case on the tensor layer (nnU-Net
 * `predict_sliding_window_return_logits`, NNUNET.md section 5): pad to at least one patch, tile with
 * overlapping windows (step fraction 0.5), run several windows per batch through the network(s) with
 * optional mirroring, weight each window's logits by the Gaussian importance map, add them and the
 * weights into two accumulators, and divide at the end.
 *
 * Memory: only one batch of windows is alive at a time; each batch's intermediates are released
 * before the next (scope), so the peak is the accumulators (numClasses + 1 float32 maps of the
 * padded volume) plus one batch; adaptive mirroring adds, on the host, numClasses + 1 float32 maps
 * of the un-mirrored blend over about two patch depths of z-planes (adaptiveMirroring.ts) and the
 * un-mirrored logits of the windows waiting for their decision (about one z-layer of windows; kept
 * in the network's output dtype, bf16 under autocast). We accumulate in float32 (nnU-Net uses fp16), on the input's
 * device unless `accumulatorDevice` says otherwise. The loop is one generator of forward passes
 * (passes.ts) with a synchronous driver for libtorch networks and an asynchronous one for engines
 * such as onnxruntime-node, so tiling, blending and mirroring exist once.
 */
import { SILENT_PROGRESS, type Device, type Precision, type ProgressReporter } from '../core/index.js';
import {
  addInPlace, autocast, cast, cat, clone, contiguous, copyInPlace, emptyCpuCache, eq, fromArray, mulInPlace, narrow, noGrad, pad, pow, scope, squeeze, stack, to, where, zeros, type Tensor,
} from '../tensor/index.js';
import { BatchTuner, windowsInBatch, type BatchTunerReport } from './batchTuner.js';
import { BODY_MARGIN_VOXELS, windowsTouchingMask } from './bodyMask.js';
import { gaussianImportanceMap } from './gaussian.js';
import { FULL_MIRROR_RULE, MirrorDecisions, type MirrorRule } from './adaptiveMirroring.js';
import { addMirroredPasses, mirrorCombinations, mirroredPasses, unmirroredTotal, type SpatialAxis } from './mirroring.js';
import { drivePasses, drivePassesAsync, type PassGenerator } from './passes.js';
import { paddedShape, paddingToPatch, slidingWindowBoxes, type Triple, type WindowBox } from './slidingWindow.js';
import { findUniformWindows, uniformInput, uniformMirroredMean } from './uniformWindows.js';

/** The resolved precision of the forward passes (core's Precision; `auto` is resolved at the edge). */
export type InferencePrecision = Precision;

/** A network as the sliding window sees it: [B, C, z, y, x] -> logits [B, K, z, y, x]. */
export type LogitsFunction = (x: Tensor) => Tensor;

/** The same for an engine that answers later (onnxruntime-node); the caller owns the returned tensor. */
export type AsyncLogitsFunction = (x: Tensor) => Tensor | Promise<Tensor>;

export interface SlidingWindowOptions {
  /** Window size [z, y, x] (the plan's patch). */
  patchSize: readonly number[];
  numClasses: number;
  /** Fraction of the patch between window starts (nnU-Net default 0.5), for all axes or per axis [z, y, x]. */
  stepFraction?: number | readonly number[];
  /** Spatial axes to mirror for test-time augmentation; [] for none. */
  mirrorAxes?: readonly SpatialAxis[];
  /**
   * Which windows get their mirrored passes (adaptiveMirroring.ts): default FULL_MIRROR_RULE, every
   * window (nnU-Net); ADAPTIVE_MIRROR_RULE only those that weigh where the un-mirrored blend is near a class boundary.
   */
  mirrorRule?: Readonly<MirrorRule>;
  /**
   * Windows stacked into one forward batch, or 'auto' (AUTO_BATCH_FP32_CPU for fp32 on the CPU, else
   * 2 or 4 chosen by measured throughput on the first batches: batchTuner.ts; CUDA takes 2 as its
   * timings are asynchronous). A lone last window joins the batch before it, so the logits are the
   * same bits for every size >= 2 (fp32 at 1 may differ by ~1e-5: batchTuner.ts).
   */
  windowsPerBatch?: number | 'auto';
  /** Gaussian weighting (true) or a plain average of the overlapping windows (false). */
  gaussian?: boolean;
  precision?: InferencePrecision;
  /** Where the accumulators live (default: the input's device). */
  accumulatorDevice?: Device;
  progress?: ProgressReporter;
  /**
   * Skip windows wholly outside the body (bodyMask.ts): `mask` [z, y, x] on the data's spatial
   * grid, 1 for body. Windows farther than `marginVoxels` from it are not run; voxels no run window
   * covers get background (class 0 logit BACKGROUND_LOGIT, others 0). Voxels of the dilated body
   * are only in run windows, so their logits are exactly those of the full sliding window.
   */
  bodyMask?: { mask: Uint8Array; marginVoxels?: number };
  /** Told how many windows the volume has and how many were run through the network(s). */
  onWindows?: (counts: WindowCounts) => void;
  /**
   * Windows whose input is one value per channel (air, clipped) share one forward pass of that
   * input and its flips (uniformWindows.ts): the same logits as running each, up to the bits the
   * batch size changes. Default true; false runs every window through the network.
   */
  shareUniformWindows?: boolean;
}

export interface WindowCounts {
  total: number;
  run: number;
  /** Forward passes of one window each, over all models: run windows x models x (1, or the mirror count for a mirrored window). */
  passes?: number;
  /** Run windows (summed over the models) that got their mirrored passes. */
  mirrored?: number;
  /** Windows per batch: the fixed size, or what the tuner measured and chose (`auto`). */
  batch?: number | BatchTunerReport;
  /** Run windows whose input was one value per channel: they shared one pass per distinct input (counted in `passes`, mirrored ones in `mirrored`). */
  uniform?: number;
}

/** `predict --fast`: no test-time mirroring and a step of 3/4 of the patch (about 2.4x fewer windows in 3D than 0.5). */
export const FAST_MODE = { stepFraction: 0.75, mirrorAxes: [] as readonly SpatialAxis[] } as const;

/**
 * `--batch auto` for fp32 on the CPU: one window per forward, as nnU-Net's predictor runs them. Measured
 * on the 2-core AVX512-BF16 EPYC (results/nnunet-side-by-side/): the same CPU seconds per window as
 * 2 (a 27-window case: 13.8 s against 14.2-14.3 s) and 150 MB less memory per window of the batch
 * (the cpu preset's patch 24 x 112 x 96: peak 663 / 816 / 1100 MB at 1 / 2 / 4), so the tuner's
 * trial of 4 would cost ~450 MB for nothing. Fixed, not timed: fp32 logits at 1 and at 2 differ by
 * ~1e-5 (batchTuner.ts), and a result must not depend on timing. bf16 is faster at 2-4 (tuned).
 */
export const AUTO_BATCH_FP32_CPU = 1;

/** The class-0 logit of voxels that no run window covers (all other classes get 0). */
export const BACKGROUND_LOGIT = 100;

export const SLIDING_WINDOW_DEFAULTS = {
  stepFraction: 0.5,
  mirrorAxes: [0, 1, 2] as readonly SpatialAxis[],
  windowsPerBatch: 2,
  gaussian: true,
  precision: 'fp32' as InferencePrecision,
} as const;

function sameDevice(a: Device, b: Device): boolean {
  return a.type === b.type && (a.type === 'cpu' || a.index === (b as { index: number }).index);
}

/** The mean over the models of their host logits at [offset, offset + length) (one model: a view, no copy; the caller only reads it). */
function ensembleMean(host: readonly Float32Array[], offset: number, length: number): Float32Array {
  if (host.length === 1) return host[0]!.subarray(offset, offset + length);
  const mean = host[0]!.slice(offset, offset + length);
  for (const other of host.slice(1)) for (let v = 0; v < length; v++) mean[v]! += other[offset + v]!;
  if (host.length > 1) for (let v = 0; v < length; v++) mean[v]! /= host.length;
  return mean;
}

/** [K, z, y, x] view of `accumulator` covering one window. */
function windowView(accumulator: Tensor, box: WindowBox, patch: Triple, firstSpatialDim: number): Tensor {
  let view = accumulator;
  for (let axis = 0; axis < 3; axis++) view = narrow(view, firstSpatialDim + axis, box.start[axis]!, patch[axis]!);
  return view;
}

/** One forward pass the sliding window asks for: model `model` of the ensemble on `input` [B, C, z, y, x]. */
export interface WindowPass {
  model: number;
  input: Tensor;
}

interface ResolvedOptions {
  patch: Triple;
  numClasses: number;
  stepFraction: number | readonly number[];
  mirrorAxes: readonly SpatialAxis[];
  mirrorRule: Readonly<MirrorRule>;
  windowsPerBatch: number | 'auto';
  useGaussian: boolean;
  accumulatorDevice: Device;
  progress: ProgressReporter;
  bodyMask: SlidingWindowOptions['bodyMask'];
  onWindows: SlidingWindowOptions['onWindows'];
  shareUniformWindows: boolean;
}

/**
 * `auto` resolved: a fixed size on CUDA (2) and for libtorch's fp32 on the CPU (AUTO_BATCH_FP32_CPU),
 * else the tuner; `fixedFp32` is false for engines with their own kernels (onnxruntime), which keep the tuner.
 */
function resolveBatch(requested: number | 'auto', device: Device, precision: InferencePrecision, fixedFp32: boolean): number | 'auto' {
  if (requested !== 'auto') return requested;
  if (device.type !== 'cpu') return SLIDING_WINDOW_DEFAULTS.windowsPerBatch;
  return fixedFp32 && precision === 'fp32' ? AUTO_BATCH_FP32_CPU : 'auto';
}

function resolveOptions(modelCount: number, data: Tensor, options: SlidingWindowOptions, fixedFp32: boolean): ResolvedOptions {
  if (modelCount === 0) throw new RangeError('slidingWindowPredict needs at least one network');
  if (data.ndim !== 4) throw new RangeError(`slidingWindowPredict expects data [C, z, y, x], got [${data.shape.join(', ')}]`);
  const requested = options.windowsPerBatch ?? SLIDING_WINDOW_DEFAULTS.windowsPerBatch;
  const windowsPerBatch = resolveBatch(requested, data.device, options.precision ?? SLIDING_WINDOW_DEFAULTS.precision, fixedFp32);
  if (windowsPerBatch !== 'auto' && (!Number.isInteger(windowsPerBatch) || windowsPerBatch < 1)) throw new RangeError(`windowsPerBatch must be a positive integer or 'auto', got ${windowsPerBatch}`);
  return {
    patch: [...options.patchSize] as Triple,
    numClasses: options.numClasses,
    stepFraction: options.stepFraction ?? SLIDING_WINDOW_DEFAULTS.stepFraction,
    mirrorAxes: options.mirrorAxes ?? SLIDING_WINDOW_DEFAULTS.mirrorAxes,
    mirrorRule: options.mirrorRule ?? FULL_MIRROR_RULE,
    windowsPerBatch,
    useGaussian: options.gaussian ?? SLIDING_WINDOW_DEFAULTS.gaussian,
    accumulatorDevice: options.accumulatorDevice ?? data.device,
    progress: options.progress ?? SILENT_PROGRESS,
    bodyMask: options.bodyMask,
    onWindows: options.onWindows,
    shareUniformWindows: options.shareUniformWindows ?? true,
  };
}

/**
 * The sliding window as a generator of forward passes (passes.ts): it yields every pass of every
 * model on every batch of windows and returns the blended logits. It disposes everything it
 * creates except the result, so it runs under a scope (synchronous driver) or without one (async).
 */
function* windowPasses(modelCount: number, data: Tensor, options: ResolvedOptions): PassGenerator<WindowPass, Tensor> {
  const { patch, mirrorAxes, useGaussian, accumulatorDevice, progress } = options;
  const computeDevice = data.device;
  const spatial = data.shape.slice(1);
  const padding = paddingToPatch(spatial, patch);
  const shape = paddedShape(spatial, padding);
  const allBoxes = slidingWindowBoxes(shape, patch, options.stepFraction);
  const body = options.bodyMask;
  if (body !== undefined && body.mask.length !== spatial[0]! * spatial[1]! * spatial[2]!) {
    throw new RangeError(`the body mask has ${body.mask.length} voxels, the data [${spatial.join(', ')}]`);
  }
  const runs = body === undefined ? null : windowsTouchingMask(allBoxes, patch, body.mask, spatial as Triple, padding, body.marginVoxels ?? BODY_MARGIN_VOXELS);
  const boxes = runs === null ? allBoxes : allBoxes.filter((_, i) => runs[i]);
  const tuner = options.windowsPerBatch === 'auto' ? new BatchTuner() : null;
  const fixedBatch = options.windowsPerBatch === 'auto' ? 0 : options.windowsPerBatch;
  const weightHost = useGaussian ? gaussianImportanceMap(patch) : new Float32Array(patch[0] * patch[1] * patch[2]).fill(1);
  const passesPerMirroredWindow = mirrorCombinations(mirrorAxes).length;
  const mirrors = { mirrored: 0 };
  const counts = { passes: 0 };
  const adaptive = passesPerMirroredWindow > 1 && options.mirrorRule.margin !== Infinity;
  const held: Tensor[] = [];
  const hold = (tensor: Tensor): Tensor => {
    held.push(tensor);
    return tensor;
  };
  try {
    const padded = padding.some((p) => p.before + p.after > 0)
      ? hold(scope(() => pad(data, [padding[2].before, padding[2].after, padding[1].before, padding[1].after, padding[0].before, padding[0].after])))
      : data;
    const weightOnCompute = hold(fromArray(weightHost, patch, { device: computeDevice }));
    const weightOnAccumulator = sameDevice(accumulatorDevice, computeDevice) ? weightOnCompute : hold(fromArray(weightHost, patch, { device: accumulatorDevice }));
    const logits = hold(zeros([options.numClasses, ...shape], { device: accumulatorDevice }));
    const weights = hold(zeros(shape, { device: accumulatorDevice }));

    const checkClasses = (t: Tensor): void => {
      if (t.shape[1] !== options.numClasses) throw new RangeError(`the network returned ${t.shape[1]} classes, expected ${options.numClasses}`);
    };
    // Every forward pass goes through here, counted in windows (a stacked input of n windows is n).
    const request = (model: number) => (input: Tensor): WindowPass => {
      counts.passes += input.shape[0]!;
      return { model, input };
    };

    // Windows of one value per channel (uniformWindows.ts): one forward pass per distinct input
    // serves them all. Per distinct input and model: its float32 logits [1, K, ...]; per input, the
    // ensemble's weighted blend of them (un-mirrored, mirrored) and, for the adaptive rule, their mean on the host.
    const uniform = options.shareUniformWindows ? findUniformWindows(padded, boxes, patch) : null;
    const kindOf = (i: number): number => (uniform === null ? -1 : uniform.kind[i]!);
    const computeIndices = boxes.flatMap((_, i) => (kindOf(i) < 0 ? [i] : []));
    const shared: { plain: Tensor[]; weighted: (Tensor | null)[]; host: Float32Array | null }[] = [];
    function* shareUniform(kind: number, batch: number): PassGenerator<WindowPass, void> {
      const entry = { plain: [] as Tensor[], weighted: [null, null] as (Tensor | null)[], host: null as Float32Array | null };
      shared[kind] = entry;
      // The pass runs at the batch size the windows run at (see batchTuner.ts on bits and batch sizes).
      const input = uniformInput(uniform!.values[kind]!, batch > 0 ? batch : 2, patch, padded);
      try {
        for (let model = 0; model < modelCount; model++) {
          const output = yield request(model)(input);
          try {
            checkClasses(output);
            entry.plain.push(scope(() => {
              const row = narrow(output, 0, 0, 1);
              return row.dtype === 'float32' ? clone(row) : cast(row, 'float32');
            }));
          } finally {
            if (output !== input) output.dispose();
          }
        }
      } finally {
        input.dispose();
      }
    }
    /** The weighted ensemble logits [K, ...] of uniform input `kind`, un-mirrored or mirrored, on the accumulator's device. */
    const weightedUniform = (kind: number, mirrored: boolean): Tensor => {
      const entry = shared[kind]!;
      const slot = mirrored ? 1 : 0;
      entry.weighted[slot] ??= scope(() => {
        // The batch path's arithmetic (accumulate) on the one window.
        const summed = mirrored ? uniformMirroredMean(entry.plain[0]!, mirrorAxes) : clone(entry.plain[0]!);
        for (const other of entry.plain.slice(1)) addInPlace(summed, mirrored ? uniformMirroredMean(other, mirrorAxes) : other);
        if (modelCount > 1) mulInPlace(summed, 1 / modelCount);
        if (useGaussian) mulInPlace(summed, weightOnCompute);
        return squeeze(sameDevice(accumulatorDevice, computeDevice) ? summed : to(summed, { device: accumulatorDevice }), 0);
      });
      return entry.weighted[slot]!;
    };
    /** The ensemble's mean un-mirrored logits of uniform input `kind` on the host (the adaptive rule's blend). */
    const uniformHost = (kind: number): Float32Array => {
      const entry = shared[kind]!;
      entry.host ??= ensembleMean(entry.plain.map((t) => scope(() => contiguous(t).toFloat32Array())), 0, entry.plain[0]!.numel);
      return entry.host;
    };

    /**
     * Blend windows `group` (indices, in order) into the accumulators: window group[j] takes row
     * row[j] of the models' logits `perModel` ([B, K, ...] each, disposed here), or where row[j] is
     * -1 its uniform input's weighted logits (mirrored where `mirrored(j)`).
     */
    const accumulate = (perModel: Tensor[], group: readonly number[], row: readonly number[], mirrored: (j: number) => boolean): void => {
      try {
        // Made (once per input) outside the scope below, which would dispose them.
        const uniformSources = group.map((i, j) => (row[j]! < 0 ? weightedUniform(kindOf(i), mirrored(j)) : null));
        scope(() => {
          let onAccumulator: Tensor | null = null;
          if (perModel.length > 0) {
            const summed = perModel[0]!;
            for (const other of perModel.slice(1)) addInPlace(summed, other);
            if (modelCount > 1) mulInPlace(summed, 1 / modelCount);
            checkClasses(summed);
            if (useGaussian) mulInPlace(summed, weightOnCompute);
            onAccumulator = sameDevice(accumulatorDevice, computeDevice) ? summed : to(summed, { device: accumulatorDevice });
          }
          group.forEach((i, j) => scope(() => {
            const source = uniformSources[j] ?? squeeze(narrow(onAccumulator!, 0, row[j]!, 1), 0);
            addInPlace(windowView(logits, boxes[i]!, patch, 1), source);
            addInPlace(windowView(weights, boxes[i]!, patch, 0), weightOnAccumulator);
          }));
        });
      } finally {
        for (const t of perModel) t.dispose();
      }
    };
    /** Batch rows of `group`: the position of each non-uniform window among them, -1 for a uniform one. */
    const rowsOf = (group: readonly number[]): number[] => {
      let next = 0;
      return group.map((i) => (kindOf(i) < 0 ? next++ : -1));
    };
    const stackWindows = (group: readonly number[]): Tensor => scope(() => stack(group.map((i) => windowView(padded, boxes[i]!, patch, 1)), 0));
    // Adaptive mirroring: each window's un-mirrored logits (per model) wait here until every window
    // overlapping it has run un-mirrored; then the rule decides it, and windows are blended in order.
    const decisions = adaptive ? new MirrorDecisions(boxes, shape, patch, weightHost, options.numClasses, options.mirrorRule) : null;
    const waiting = new Map<number, Tensor[]>();
    // Per model, the dtype its forward passes return (float32, or bf16 / fp16 under autocast).
    const outputDtypes: Tensor['dtype'][] = [];
    const ready: number[] = [];
    let readyComputed = 0;
    let decided = 0;
    function* finish(group: number[]): PassGenerator<WindowPass, void> {
      const mirror = group.map((i) => decisions!.needsMirroring(i));
      mirrors.mirrored += mirror.filter(Boolean).length * modelCount;
      const computed = group.filter((i) => kindOf(i) < 0);
      const row = rowsOf(group);
      const rows = group.flatMap((_, j) => (row[j]! >= 0 && mirror[j] ? [row[j]!] : []));
      const windows = rows.length > 0 ? stackWindows(computed) : null;
      const perModel: Tensor[] = [];
      try {
        for (let model = 0; model < (computed.length > 0 ? modelCount : 0); model++) {
          perModel.push(scope(() => cat(computed.map((i) => {
            const kept = waiting.get(i)![model]!;
            return kept.dtype === 'float32' ? kept : cast(kept, 'float32');
          }), 0)));
          if (windows !== null) yield* addMirroredPasses(windows, perModel[model]!, mirrorAxes, request(model), rows);
        }
      } catch (error) {
        for (const t of perModel) t.dispose();
        throw error;
      } finally {
        windows?.dispose();
        for (const i of computed) {
          for (const t of waiting.get(i)!) t.dispose();
          waiting.delete(i);
        }
      }
      accumulate(perModel, group, row, (j) => mirror[j]!);
    }
    /** The first ready windows holding `computed` non-uniform ones (and the uniform ones among and after them). */
    const takeReady = (computedCount: number): number[] => {
      let taken = 0;
      let n = 0;
      while (n < ready.length && (kindOf(ready[n]!) >= 0 || taken < computedCount)) if (kindOf(ready[n++]!) < 0) taken++;
      readyComputed -= taken;
      return ready.splice(0, n);
    };

    progress.start('sliding window', boxes.length);
    try {
      // The addon keeps the activations' blocks for the next batch of the same size; when the size
      // changes (the tuner's trials, the last batch) the old size's blocks would stay idle: drop them.
      let lastBatchSize = 0;
      // Windows 0 .. handed - 1 are blended (or added to the adaptive rule's blend).
      let handed = 0;
      for (let first = 0; handed < boxes.length; ) {
        const left = computeIndices.length - first;
        const size = left === 0 ? 0 : tuner === null ? windowsInBatch(fixedBatch, left) : tuner.next(left);
        const batchIndices = computeIndices.slice(first, first + size);
        first += size;
        // This batch's windows and the uniform ones before them (after the last batch: all the rest).
        const end = first < computeIndices.length ? batchIndices[batchIndices.length - 1]! + 1 : boxes.length;
        const group = Array.from({ length: end - handed }, (_, j) => handed + j);
        const row = rowsOf(group);
        for (const i of group) {
          if (kindOf(i) >= 0 && shared[kindOf(i)] === undefined) yield* shareUniform(kindOf(i), size > 0 ? size : lastBatchSize > 0 ? lastBatchSize : fixedBatch);
        }
        const perModel: Tensor[] = [];
        if (size > 0) {
          if (size !== lastBatchSize) emptyCpuCache();
          lastBatchSize = size;
          const started = performance.now();
          const windows = stackWindows(batchIndices);
          try {
            for (let model = 0; model < modelCount; model++) {
              if (decisions === null) {
                perModel.push(yield* mirroredPasses(windows, mirrorAxes, request(model)));
              } else {
                const output: Tensor = yield request(model)(windows);
                outputDtypes[model] = output.dtype;
                perModel.push(unmirroredTotal(output, windows));
                checkClasses(perModel[model]!);
              }
            }
          } catch (error) {
            for (const t of perModel) t.dispose();
            throw error;
          } finally {
            windows.dispose();
          }
          tuner?.record(size, (performance.now() - started) / 1000);
        }
        if (decisions === null) {
          if (passesPerMirroredWindow > 1) mirrors.mirrored += group.length * modelCount;
          accumulate(perModel, group, row, () => passesPerMirroredWindow > 1);
        } else {
          // The ensemble's mean un-mirrored logits go into the rule's blend; each window's own wait for its decision.
          try {
            const host = perModel.map((t) => scope(() => contiguous(t).toFloat32Array()));
            const voxels = size > 0 ? host[0]!.length / size : 0;
            group.forEach((i, j) => {
              if (row[j]! < 0) {
                decisions.add(i, uniformHost(kindOf(i)));
              } else {
                decisions.add(i, ensembleMean(host, row[j]! * voxels, voxels));
                // Kept in the network's own dtype (bf16 under autocast: half the memory, and float32 of it back is exact).
                waiting.set(i, perModel.map((t, model) => scope(() => (outputDtypes[model] === 'float32' ? clone(narrow(t, 0, row[j]!, 1)) : cast(narrow(t, 0, row[j]!, 1), outputDtypes[model]!)))));
              }
            });
          } finally {
            for (const t of perModel) t.dispose();
          }
          while (decided < end && decisions.decidable(decided, end)) {
            if (kindOf(decided) < 0) readyComputed++;
            ready.push(decided++);
          }
          // Decided windows are finished in groups of the batch's size (the last ones as windowsInBatch groups them).
          const groupSize = Math.max(1, size > 0 ? size : lastBatchSize);
          while (ready.length > 0 && (readyComputed >= groupSize || end === boxes.length)) {
            yield* finish(takeReady(end === boxes.length ? windowsInBatch(groupSize, readyComputed) : groupSize));
          }
        }
        handed = end;
        progress.tick(group.length);
      }
    } finally {
      progress.stop();
      for (const tensors of waiting.values()) for (const t of tensors) t.dispose();
      for (const entry of shared) for (const t of [...(entry?.plain ?? []), ...(entry?.weighted ?? [])]) t?.dispose();
    }
    const passes = counts.passes;
    options.onWindows?.({ total: allBoxes.length, run: boxes.length, passes, mirrored: mirrors.mirrored, batch: tuner === null ? fixedBatch : tuner.report, ...(computeIndices.length < boxes.length ? { uniform: boxes.length - computeIndices.length } : {}) });
    if (boxes.length < allBoxes.length) {
      // Voxels that no run window covered: weight 1 and background logits, so the division below
      // gives class 0 a large logit there (a network window never added anything to them).
      scope(() => {
        const uncovered = eq(weights, 0);
        copyInPlace(weights, where(uncovered, 1, weights));
        const background = narrow(logits, 0, 0, 1);
        copyInPlace(background, where(uncovered, BACKGROUND_LOGIT, background));
      });
    }
    // Divide by the summed weights (a reciprocal map, then in place, to avoid a second logits-sized copy).
    const reciprocal = pow(weights, -1);
    weights.dispose();
    mulInPlace(logits, reciprocal);
    reciprocal.dispose();
    const result = scope(() => {
      let view = logits;
      for (let axis = 0; axis < 3; axis++) {
        if (padding[axis]!.before + padding[axis]!.after > 0) view = narrow(view, axis + 1, padding[axis]!.before, spatial[axis]!);
      }
      return view.dtype === 'float32' ? view : cast(view, 'float32');
    });
    if (result === logits) held.splice(held.indexOf(logits), 1);
    return result;
  } finally {
    for (const tensor of held) tensor.dispose();
  }
}

/**
 * Logits [K, z, y, x] float32 for `data` [C, z, y, x] (the preprocessed case, on the compute
 * device): the Gaussian-weighted blend of every window, averaged over `networks` (an ensemble
 * averages logits) and mirror combinations. The result has the input's spatial shape (padding removed).
 */
export function slidingWindowPredict(networks: readonly LogitsFunction[], data: Tensor, options: SlidingWindowOptions): Tensor {
  const resolved = resolveOptions(networks.length, data, options, true);
  const precision = options.precision ?? SLIDING_WINDOW_DEFAULTS.precision;
  const computeDevice = data.device;
  const forward = (network: LogitsFunction, x: Tensor): Tensor =>
    precision === 'fp32' ? network(x) : autocast({ device: computeDevice, dtype: precision === 'bf16' ? 'bfloat16' : 'float16' }, () => network(x));
  const logits = noGrad(() => scope(() => drivePasses(windowPasses(networks.length, data, resolved), (pass) => forward(networks[pass.model]!, pass.input))));
  // The windows' activations were reused block for block; give them back now that the loop is done.
  emptyCpuCache();
  return logits;
}

/**
 * The same sliding window for engines whose forward pass is asynchronous (onnxruntime-node): one
 * batch of windows in flight at a time, fp32 only (the engines run in their own precision).
 * Call it outside any scope; the caller owns the result.
 */
export async function slidingWindowPredictAsync(engines: readonly AsyncLogitsFunction[], data: Tensor, options: SlidingWindowOptions): Promise<Tensor> {
  const resolved = resolveOptions(engines.length, data, options, false);
  if ((options.precision ?? 'fp32') !== 'fp32') throw new RangeError(`slidingWindowPredictAsync runs fp32 engines only, got precision ${options.precision}`);
  const logits = await drivePassesAsync(windowPasses(engines.length, data, resolved), (pass) => engines[pass.model]!(pass.input));
  emptyCpuCache();
  return logits;
}
