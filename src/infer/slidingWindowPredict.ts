/**
 * Sliding-window prediction of one preprocessed case on the tensor layer (nnU-Net
 * `predict_sliding_window_return_logits`, NNUNET.md section 5): pad to at least one patch, tile with
 * overlapping windows (step fraction 0.5), run several windows per batch through the network(s) with
 * optional mirroring, weight each window's logits by the Gaussian importance map, add them and the
 * weights into two accumulators, and divide at the end.
 *
 * Memory: only one batch of windows is alive at a time; each batch's intermediates are released
 * before the next (scope), so the peak is the accumulators (numClasses + 1 float32 maps of the
 * padded volume) plus one batch. We accumulate in float32 (nnU-Net uses fp16), on the input's
 * device unless `accumulatorDevice` says otherwise.
 */
import { SILENT_PROGRESS, type Device, type Precision, type ProgressReporter } from '../core/index.js';
import {
  addInPlace, autocast, cast, fromArray, mulInPlace, narrow, noGrad, pad, pow, scope, squeeze, stack, to, zeros, type Tensor,
} from '../tensor/index.js';
import { gaussianImportanceMap } from './gaussian.js';
import { predictMirrored, type SpatialAxis } from './mirroring.js';
import { paddedShape, paddingToPatch, slidingWindowBoxes, type Triple, type WindowBox } from './slidingWindow.js';

/** The resolved precision of the forward passes (core's Precision; `auto` is resolved at the edge). */
export type InferencePrecision = Precision;

/** A network as the sliding window sees it: [B, C, z, y, x] -> logits [B, K, z, y, x]. */
export type LogitsFunction = (x: Tensor) => Tensor;

export interface SlidingWindowOptions {
  /** Window size [z, y, x] (the plan's patch). */
  patchSize: readonly number[];
  numClasses: number;
  /** Fraction of the patch between window starts (nnU-Net default 0.5). */
  stepFraction?: number;
  /** Spatial axes to mirror for test-time augmentation; [] for none. */
  mirrorAxes?: readonly SpatialAxis[];
  /** Windows stacked into one forward batch. */
  windowsPerBatch?: number;
  /** Gaussian weighting (true) or a plain average of the overlapping windows (false). */
  gaussian?: boolean;
  precision?: InferencePrecision;
  /** Where the accumulators live (default: the input's device). */
  accumulatorDevice?: Device;
  progress?: ProgressReporter;
}

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

/**
 * Logits [K, z, y, x] float32 for `data` [C, z, y, x] (the preprocessed case, on the compute
 * device): the Gaussian-weighted blend of every window, averaged over `networks` (an ensemble
 * averages logits) and mirror combinations. The result has the input's spatial shape (padding removed).
 */
export function slidingWindowPredict(networks: readonly LogitsFunction[], data: Tensor, options: SlidingWindowOptions): Tensor {
  if (networks.length === 0) throw new RangeError('slidingWindowPredict needs at least one network');
  if (data.ndim !== 4) throw new RangeError(`slidingWindowPredict expects data [C, z, y, x], got [${data.shape.join(', ')}]`);
  const patch = [...options.patchSize] as Triple;
  const stepFraction = options.stepFraction ?? SLIDING_WINDOW_DEFAULTS.stepFraction;
  const mirrorAxes = options.mirrorAxes ?? SLIDING_WINDOW_DEFAULTS.mirrorAxes;
  const windowsPerBatch = options.windowsPerBatch ?? SLIDING_WINDOW_DEFAULTS.windowsPerBatch;
  const useGaussian = options.gaussian ?? SLIDING_WINDOW_DEFAULTS.gaussian;
  const precision = options.precision ?? SLIDING_WINDOW_DEFAULTS.precision;
  const progress = options.progress ?? SILENT_PROGRESS;
  const computeDevice = data.device;
  const accumulatorDevice = options.accumulatorDevice ?? computeDevice;
  if (!Number.isInteger(windowsPerBatch) || windowsPerBatch < 1) throw new RangeError(`windowsPerBatch must be a positive integer, got ${windowsPerBatch}`);

  return noGrad(() => scope(() => {
    const spatial = data.shape.slice(1);
    const padding = paddingToPatch(spatial, patch);
    const padded = padding.some((p) => p.before + p.after > 0)
      ? pad(data, [padding[2].before, padding[2].after, padding[1].before, padding[1].after, padding[0].before, padding[0].after])
      : data;
    const shape = paddedShape(spatial, padding);
    const boxes = slidingWindowBoxes(shape, patch, stepFraction);

    const weightHost = useGaussian ? gaussianImportanceMap(patch) : new Float32Array(patch[0] * patch[1] * patch[2]).fill(1);
    const weightOnCompute = fromArray(weightHost, patch, { device: computeDevice });
    const weightOnAccumulator = sameDevice(accumulatorDevice, computeDevice) ? weightOnCompute : fromArray(weightHost, patch, { device: accumulatorDevice });
    const logits = zeros([options.numClasses, ...shape], { device: accumulatorDevice });
    const weights = zeros(shape, { device: accumulatorDevice });

    const forward = (network: LogitsFunction) => (x: Tensor): Tensor =>
      precision === 'fp32' ? network(x) : autocast({ device: computeDevice, dtype: precision === 'bf16' ? 'bfloat16' : 'float16' }, () => network(x));

    progress.start('sliding window', boxes.length);
    try {
      for (let first = 0; first < boxes.length; first += windowsPerBatch) {
        const batch = boxes.slice(first, first + windowsPerBatch);
        scope(() => {
          const windows = stack(batch.map((box) => windowView(padded, box, patch, 1)), 0);
          let prediction = predictMirrored(forward(networks[0]!), windows, mirrorAxes);
          for (const network of networks.slice(1)) {
            const other = predictMirrored(forward(network), windows, mirrorAxes);
            addInPlace(prediction, other);
            other.dispose();
          }
          if (networks.length > 1) mulInPlace(prediction, 1 / networks.length);
          if (prediction.shape[1] !== options.numClasses) {
            throw new RangeError(`the network returned ${prediction.shape[1]} classes, expected ${options.numClasses}`);
          }
          if (useGaussian) mulInPlace(prediction, weightOnCompute);
          if (!sameDevice(accumulatorDevice, computeDevice)) prediction = to(prediction, { device: accumulatorDevice });
          batch.forEach((box, b) => {
            addInPlace(windowView(logits, box, patch, 1), squeeze(narrow(prediction, 0, b, 1), 0));
            addInPlace(windowView(weights, box, patch, 0), weightOnAccumulator);
          });
        });
        progress.tick(batch.length);
      }
    } finally {
      progress.stop();
    }
    // Divide by the summed weights (a reciprocal map, then in place, to avoid a second logits-sized copy).
    const reciprocal = pow(weights, -1);
    weights.dispose();
    mulInPlace(logits, reciprocal);
    reciprocal.dispose();
    let result = logits;
    for (let axis = 0; axis < 3; axis++) {
      if (padding[axis]!.before + padding[axis]!.after > 0) result = narrow(result, axis + 1, padding[axis]!.before, spatial[axis]!);
    }
    return result.dtype === 'float32' ? result : cast(result, 'float32');
  }));
}
