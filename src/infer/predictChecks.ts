/**
 * What `predict` checks about a case from its NIfTI headers alone, before any voxel is read (STYLE
 * rule 18): how many sliding windows the step implies and how much memory the case needs. Both
 * follow the grid the network will see: the input transposed to the plan's axis order and
 * resampled to its target spacing (data's computeNewShape, as preprocessing does), padded to at
 * least one patch. Cropping to the nonzero region only shrinks that grid, so both numbers are upper
 * bounds of what the case will use, and a case that passes cannot exceed them.
 *
 * The window count is computed per axis arithmetically, as nnU-Net's
 * `compute_steps_for_sliding_window` counts its steps (ceil((size - patch) / (patch * step)) + 1),
 * so a step like 0.0001 is refused in microseconds instead of building a list of 10^13 windows.
 */
import { formatGib, InputError, type Shape3 } from '../core/index.js';
import { caseTargetSpacing, computeNewShape, type Plan } from '../data/index.js';
import { gridFromHeader, type NiftiHeader } from '../io/index.js';
import { axisStepFractions, previousStageChannels } from './configurations.js';
import { windowCountPerAxis } from './slidingWindow.js';

/**
 * At most this many windows per case. The nnU-Net default step 0.5 gives 10^1 to 10^4 windows on
 * CT; 10^6 windows hold ~100 MB of window boxes and, at 10 ms per forward pass on a fast GPU, take
 * almost 3 hours without mirroring (a day with it), so more is a mistyped --step, not a choice.
 */
export const MAX_SLIDING_WINDOWS = 1_000_000;

/** Throws InputError naming --step unless it is a fraction of the patch in (0, 1]. */
export function checkStepFraction(stepFraction: number, option = '--step'): void {
  if (!(stepFraction > 0 && stepFraction <= 1)) {
    throw new InputError(`${option} must be a fraction of the patch in (0, 1], got ${stepFraction}`, { code: 'bad-arguments' });
  }
}

export interface CaseExtent {
  caseId: string;
  /** Shape of channel 0 as read, [z, y, x]. */
  inputShape: Shape3;
  /** The padded, resampled grid in network axis order (an upper bound: cropping shrinks it). */
  networkShape: Shape3;
  /** Sliding windows over networkShape (upper bound). */
  windows: number;
  /** Bytes the case needs at least (upper bound of the grid, see memoryNeed). */
  bytes: number;
}

function voxels(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export interface CaseExtentOptions {
  numClasses: number;
  stepFraction: number;
  /** Probability maps are kept for writing (one float32 volume per class at the input's size). */
  probabilities: boolean;
}

/**
 * The extent of a case from its channel headers (channel 0 first). Memory counted: the channels as
 * read plus a float32 working copy of each, the preprocessed float32 [C, grid], the sliding-window
 * accumulators (one float32 logits map per class and one weight map over the padded grid), and with
 * probabilities one float32 map per class at the input's size. Network weights and one batch of
 * windows come on top; they are small next to these for CT volumes.
 */
export function caseExtent(caseId: string, headers: readonly NiftiHeader[], plan: Plan, options: CaseExtentOptions): CaseExtent {
  const configuration = plan.configuration;
  const { shape, spacing } = gridFromHeader(headers[0]!);
  const forward = configuration.transpose.forward;
  const transposedShape = forward.map((axis) => shape[axis]!) as Shape3;
  const transposedSpacing = forward.map((axis) => spacing[axis]!) as Shape3;
  const resampled = computeNewShape(transposedShape, transposedSpacing, caseTargetSpacing(configuration, transposedSpacing));
  const patch = configuration.patchSize;
  const networkShape = resampled.map((n, axis) => Math.max(n, patch[axis]!)) as Shape3;
  const steps = axisStepFractions(configuration, options.stepFraction);
  const windows = networkShape.reduce((product, size, axis) => product * windowCountPerAxis(size, patch[axis]!, steps[axis]!), 1);
  const inputVoxels = voxels(shape);
  const channelsAsRead = headers.reduce((sum, h) => sum + voxels(h.dims.slice(0, 3)) * (Math.max(1, h.bitpix / 8) + 4), 0);
  // A cascade stage's input also holds the previous stage's mask, one float32 channel per foreground label.
  const preprocessed = (headers.length + previousStageChannels(configuration, options.numClasses)) * voxels(resampled) * 4;
  const accumulators = (options.numClasses + 1) * voxels(networkShape) * 4;
  const probabilities = options.probabilities ? options.numClasses * inputVoxels * 4 : 0;
  return { caseId, inputShape: shape, networkShape, windows, bytes: channelsAsRead + preprocessed + accumulators + probabilities };
}

export interface ExtentLimits {
  stepFraction: number;
  maxMemoryBytes: number;
  /** Option names for the messages (the CLI's). */
  stepOption?: string;
  memoryOption?: string;
}

/** Throws InputError naming the option when the case needs more windows or memory than allowed. */
export function checkCaseExtent(extent: CaseExtent, file: string, limits: ExtentLimits): void {
  const stepOption = limits.stepOption ?? '--step';
  const memoryOption = limits.memoryOption ?? '--max-memory-gib';
  if (extent.windows > MAX_SLIDING_WINDOWS) {
    throw new InputError(
      `case '${extent.caseId}': ${stepOption} ${limits.stepFraction} implies ${extent.windows.toPrecision(3)} sliding windows over its ` +
        `${extent.networkShape.join('x')} grid, over the limit of ${MAX_SLIDING_WINDOWS}: use a larger ${stepOption} (nnU-Net's default is 0.5)`,
      { file, code: 'too-many-windows' },
    );
  }
  if (!(limits.maxMemoryBytes > 0)) throw new InputError(`${memoryOption} must be a positive number of GiB`, { code: 'bad-arguments' });
  if (extent.bytes > limits.maxMemoryBytes) {
    throw new InputError(
      `case '${extent.caseId}' (${extent.inputShape.join('x')} voxels, ${extent.networkShape.join('x')} on the network's grid) needs at least ` +
        `${formatGib(extent.bytes)} of memory, over the limit of ${formatGib(limits.maxMemoryBytes)}: raise ${memoryOption} if the machine has it`,
      { file, code: 'too-large' },
    );
  }
}
