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
 * of the un-mirrored blend (adaptiveMirroring.ts) and the un-mirrored logits of the windows waiting
 * for their decision (about one z-layer of windows). We accumulate in float32 (nnU-Net uses fp16), on the input's
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
   * Windows stacked into one forward batch, or 'auto': 2 or 4, chosen by measured throughput on the
   * first batches (batchTuner.ts; on the CPU only, CUDA takes 2 as its timings are asynchronous). A
   * lone last window joins the batch before it, so the logits are the same bits for every size >= 2.
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
}

/** `predict --fast`: no test-time mirroring and a step of 3/4 of the patch (about 2.4x fewer windows in 3D than 0.5). */
export const FAST_MODE = { stepFraction: 0.75, mirrorAxes: [] as readonly SpatialAxis[] } as const;

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
}

function resolveOptions(modelCount: number, data: Tensor, options: SlidingWindowOptions): ResolvedOptions {
  if (modelCount === 0) throw new RangeError('slidingWindowPredict needs at least one network');
  if (data.ndim !== 4) throw new RangeError(`slidingWindowPredict expects data [C, z, y, x], got [${data.shape.join(', ')}]`);
  const requested = options.windowsPerBatch ?? SLIDING_WINDOW_DEFAULTS.windowsPerBatch;
  const windowsPerBatch = requested === 'auto' && data.device.type !== 'cpu' ? SLIDING_WINDOW_DEFAULTS.windowsPerBatch : requested;
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
    /** Blend the models' logits of `group` (disposed here) into the accumulators, window by window in order. */
    const accumulate = (perModel: Tensor[], group: readonly WindowBox[]): void => {
      try {
        const summed = perModel[0]!;
        for (const other of perModel.slice(1)) addInPlace(summed, other);
        scope(() => {
          if (modelCount > 1) mulInPlace(summed, 1 / modelCount);
          checkClasses(summed);
          if (useGaussian) mulInPlace(summed, weightOnCompute);
          const onAccumulator = sameDevice(accumulatorDevice, computeDevice) ? summed : to(summed, { device: accumulatorDevice });
          group.forEach((box, b) => {
            addInPlace(windowView(logits, box, patch, 1), squeeze(narrow(onAccumulator, 0, b, 1), 0));
            addInPlace(windowView(weights, box, patch, 0), weightOnAccumulator);
          });
        });
      } finally {
        for (const t of perModel) t.dispose();
      }
    };
    const stackWindows = (group: readonly WindowBox[]): Tensor => scope(() => stack(group.map((box) => windowView(padded, box, patch, 1)), 0));
    // Adaptive mirroring: each window's un-mirrored logits (per model) wait here until every window
    // overlapping it has run un-mirrored; then the rule decides it, and windows are blended in order.
    const decisions = adaptive ? new MirrorDecisions(boxes, shape, patch, weightHost, options.numClasses, options.mirrorRule) : null;
    const waiting = new Map<number, Tensor[]>();
    const ready: number[] = [];
    let decided = 0;
    function* finish(group: number[]): PassGenerator<WindowPass, void> {
      const rows = group.flatMap((i, b) => (decisions!.needsMirroring(i) ? [b] : []));
      mirrors.mirrored += rows.length * modelCount;
      const windows = rows.length > 0 ? stackWindows(group.map((i) => boxes[i]!)) : null;
      const perModel: Tensor[] = [];
      try {
        for (let model = 0; model < modelCount; model++) {
          perModel.push(scope(() => cat(group.map((i) => waiting.get(i)![model]!), 0)));
          if (windows !== null) yield* addMirroredPasses(windows, perModel[model]!, mirrorAxes, (input): WindowPass => ({ model, input }), rows);
        }
      } catch (error) {
        for (const t of perModel) t.dispose();
        throw error;
      } finally {
        windows?.dispose();
        for (const i of group) {
          for (const t of waiting.get(i)!) t.dispose();
          waiting.delete(i);
        }
      }
      accumulate(perModel, group.map((i) => boxes[i]!));
    }

    progress.start('sliding window', boxes.length);
    try {
      // The addon keeps the activations' blocks for the next batch of the same size; when the size
      // changes (the tuner's trials, the last batch) the old size's blocks would stay idle: drop them.
      let lastBatchSize = 0;
      for (let first = 0; first < boxes.length; ) {
        const batch = boxes.slice(first, first + (tuner === null ? windowsInBatch(fixedBatch, boxes.length - first) : tuner.next(boxes.length - first)));
        const firstIndex = first;
        first += batch.length;
        if (batch.length !== lastBatchSize) emptyCpuCache();
        lastBatchSize = batch.length;
        const started = performance.now();
        const windows = stackWindows(batch);
        const perModel: Tensor[] = [];
        try {
          for (let model = 0; model < modelCount; model++) {
            if (decisions === null) {
              perModel.push(yield* mirroredPasses(windows, mirrorAxes, (input): WindowPass => ({ model, input })));
              mirrors.mirrored += passesPerMirroredWindow > 1 ? batch.length : 0;
            } else {
              perModel.push(unmirroredTotal(yield { model, input: windows }, windows));
              checkClasses(perModel[model]!);
            }
          }
        } catch (error) {
          for (const t of perModel) t.dispose();
          throw error;
        } finally {
          windows.dispose();
        }
        tuner?.record(batch.length, (performance.now() - started) / 1000);
        if (decisions === null) {
          accumulate(perModel, batch);
        } else {
          // The ensemble's mean un-mirrored logits go into the rule's blend; each window's own wait for its decision.
          const host = perModel.map((t) => scope(() => contiguous(t).toFloat32Array()));
          const size = host[0]!.length / batch.length;
          for (let b = 0; b < batch.length; b++) {
            const mean = host[0]!.slice(b * size, (b + 1) * size);
            for (const other of host.slice(1)) for (let v = 0; v < size; v++) mean[v]! += other[b * size + v]!;
            if (modelCount > 1) for (let v = 0; v < size; v++) mean[v]! /= modelCount;
            decisions.add(firstIndex + b, mean);
            waiting.set(firstIndex + b, perModel.map((t) => scope(() => clone(narrow(t, 0, b, 1)))));
          }
          for (const t of perModel) t.dispose();
          while (decided < first && decisions.decidable(decided, first)) ready.push(decided++);
          // Decided windows are finished in groups of the batch's size (the last ones as windowsInBatch groups them).
          while (ready.length >= batch.length || (first === boxes.length && ready.length > 0)) {
            yield* finish(ready.splice(0, first === boxes.length ? windowsInBatch(batch.length, ready.length) : batch.length));
          }
        }
        progress.tick(batch.length);
      }
    } finally {
      progress.stop();
      for (const tensors of waiting.values()) for (const t of tensors) t.dispose();
    }
    const passes = boxes.length * modelCount + mirrors.mirrored * (passesPerMirroredWindow - 1);
    options.onWindows?.({ total: allBoxes.length, run: boxes.length, passes, mirrored: mirrors.mirrored, batch: tuner === null ? fixedBatch : tuner.report });
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
  const resolved = resolveOptions(networks.length, data, options);
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
  const resolved = resolveOptions(engines.length, data, options);
  if ((options.precision ?? 'fp32') !== 'fp32') throw new RangeError(`slidingWindowPredictAsync runs fp32 engines only, got precision ${options.precision}`);
  const logits = await drivePassesAsync(windowPasses(engines.length, data, resolved), (pass) => engines[pass.model]!(pass.input));
  emptyCpuCache();
  return logits;
}
