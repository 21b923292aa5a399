/**
 * Predictor: the thin stateful shell around the pure parts. It holds the network(s) of one model
 * (several for a fold ensemble, whose logits are averaged) and the plan they were trained with, and
 * predicts a case given as one Volume per channel: preprocess with the plan (data's preprocessCase,
 * no label), sliding window on the device (no grad, autocast for bf16/fp16), logits back to the
 * input geometry (export.ts). Constructors do no I/O; `Predictor.fromCheckpoints` reads files.
 * The models are engines (engine.ts): libtorch networks, or engines an EngineFactory builds from
 * the same checkpoints (ONNX through onnxruntime-node), all under the same sliding window.
 * nnU-Net's 2d and cascade configurations change the window steps and the input (configurations.ts);
 * a cascade stage holds its previous stage, a Predictor of its own.
 */
import { CheckpointError, InputError, SILENT_LOGGER, TorchError, type Device, type Logger, type ProgressReporter, type Volume } from '../core/index.js';
import { preprocessCase, type CaseProperties, type Plan, type PreprocessSeconds } from '../data/index.js';
import { contiguous, fromArray, narrow, scope, type Tensor } from '../tensor/index.js';
import { buildInferenceNetwork, lesionsegPreviousStageCheckpoints, previousStageCheckpoints, readInferenceCheckpoint, type InferenceCheckpoint, type SegmentationNetwork } from '../checkpoint/index.js';
import { isWindowEngine, TorchEngine, type EngineFactory, type WindowEngine } from './engine.js';
import { largestComponentAbove, normalizedCtThreshold } from './bodyMask.js';
import { axisStepFractions, preprocessAfterPreviousStage, previousStageChannels } from './configurations.js';
import { exportPrediction } from './export.js';
import type { NnunetRegions } from '../io/index.js';
import { ADAPTIVE_MIRROR_RULE, type MirrorRule } from './adaptiveMirroring.js';
import { ALL_MIRROR_AXES, type SpatialAxis } from './mirroring.js';
import { SLIDING_WINDOW_DEFAULTS, slidingWindowPredict, slidingWindowPredictAsync, type InferencePrecision, type LogitsFunction, type SlidingWindowOptions, type WindowCounts } from './slidingWindowPredict.js';
import type { Triple } from './slidingWindow.js';

export interface PredictorOptions {
  device?: Device;
  precision?: InferencePrecision;
  /**
   * Spatial axes mirrored for test-time augmentation; [] turns TTA off. Default: the model's
   * (an nnU-Net checkpoint's inference_allowed_mirroring_axes), else all three.
   */
  mirrorAxes?: readonly SpatialAxis[];
  /**
   * Which windows get their mirrored passes (adaptiveMirroring.ts): default ADAPTIVE_MIRROR_RULE,
   * those near a class boundary; FULL_MIRROR_RULE every window, as nnU-Net.
   */
  mirrorRule?: Readonly<MirrorRule>;
  /** nnU-Net model folders: the configuration the checkpoints must have been trained as. */
  configuration?: string;
  stepFraction?: number;
  windowsPerBatch?: number | 'auto';
  /** Where the sliding-window accumulators live: on the compute device (default) or on the host. */
  accumulateOn?: 'device' | 'cpu';
  /**
   * Skip sliding windows wholly outside the body. A Predictor built directly runs every window
   * unless told; from checkpoints (fromCheckpoints) the default is by model: on for lesionseg's
   * own, off for nnU-Net models, as nnU-Net runs every window. Only plans with a CT-normalised
   * channel whose clip range holds -500 HU find a body (bodyMask.ts); others skip nothing. Region
   * models skip nothing either: skipped voxels get a background logit, and they have no background head.
   */
  skipBackground?: boolean;
  progress?: ProgressReporter;
  logger?: Logger;
  /** Region-based nnU-Net models: sigmoid heads written in regions_class_order (default: from the checkpoint; none: softmax). */
  regions?: NnunetRegions | null;
}

/** A Predictor's own parts beyond the options: a cascade's previous stage (configurations.ts). */
interface PredictorParts {
  previousStage?: Predictor;
}

export interface PredictCaseOptions {
  caseId?: string;
  /** Also return per-class softmax probabilities (per-region sigmoid ones for region models) in the input geometry. */
  probabilities?: boolean;
}

export interface CasePrediction {
  segmentation: Volume<Uint8Array>;
  probabilities: Volume<Float32Array>[] | null;
  properties: CaseProperties;
  /**
   * Seconds per stage: preprocess (transpose, crop, normalise, resample), bodyMask (finding the body
   * for window skipping), slidingWindow, export (of which resampleBack and argmax).
   */
  seconds: CaseStageSeconds;
  /** The process's RSS high-water mark (MiB) at the end of each stage. */
  peakRssMiB: CaseStagePeaks;
  /** Sliding windows of the case and how many ran through the network(s). */
  windows: WindowCounts;
}

export interface CaseStageSeconds {
  preprocess: number;
  /** The steps of preprocessing. */
  preprocessSteps: PreprocessSeconds;
  bodyMask: number;
  slidingWindow: number;
  export: number;
  resampleBack: number;
  argmax: number;
}

export type CaseStagePeaks = Record<'preprocess' | 'bodyMask' | 'slidingWindow' | 'export', number>;

/** The process's resident-set high-water mark so far, MiB (maxRSS is KiB). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Times and memory high-water marks as the stages of one case end. */
class StageClock {
  readonly ends: number[] = [];
  readonly peaks: number[] = [];
  constructor(private readonly start = now()) {}
  mark(): void {
    this.ends.push(now());
    this.peaks.push(peakRssMiB());
  }
  seconds(stage: number): number {
    return this.ends[stage]! - (stage === 0 ? this.start : this.ends[stage - 1]!);
  }
}

const CPU_DEVICE: Device = { type: 'cpu' };

function checkPrecision(options: PredictorOptions): void {
  if (options.precision === 'fp16' && (options.device ?? CPU_DEVICE).type === 'cpu') {
    throw new InputError('fp16 autocast needs a CUDA device (libtorch autocasts only to bf16 on the CPU): use --precision bf16 or fp32', { code: 'bad-precision' });
  }
}

function now(): number {
  return performance.now() / 1000;
}

/** An ensemble's checkpoints must share plan and label space. */
function checkSameModel(checkpoint: InferenceCheckpoint, first: InferenceCheckpoint, firstFile: string): void {
  if (JSON.stringify(checkpoint.plan.configuration) !== JSON.stringify(first.plan.configuration)) {
    throw new CheckpointError(`its plan differs from ${firstFile}'s: an ensemble must share preprocessing, patch and network`, { file: checkpoint.sidecarFile });
  }
  if (checkpoint.architecture.config.numClasses !== first.architecture.config.numClasses) {
    throw new CheckpointError(`it predicts ${checkpoint.architecture.config.numClasses} classes, ${firstFile} ${first.architecture.config.numClasses}`, { file: checkpoint.file });
  }
}

/** Read `files` one at a time (so one weight file is held at a time), each checked against the first. */
function* readModelCheckpoints(files: readonly string[], options: PredictorOptions): Generator<InferenceCheckpoint> {
  let first: InferenceCheckpoint | null = null;
  for (const file of files) {
    const checkpoint = readInferenceCheckpoint(file, options.configuration !== undefined ? { configuration: options.configuration } : {});
    if (first === null) first = checkpoint;
    else checkSameModel(checkpoint, first, files[0]!);
    yield checkpoint;
  }
}

export class Predictor {
  readonly engines: readonly WindowEngine[];
  readonly plan: Plan;
  readonly numClasses: number;
  /** One line naming the model, for logs. */
  description = 'networks';
  /** Region-based models: the regions and the label each head writes; null: softmax over classes. */
  readonly regions: NnunetRegions | null;
  private readonly options: Required<Omit<PredictorOptions, 'progress' | 'logger' | 'configuration' | 'regions'>> & Pick<PredictorOptions, 'progress'> & { logger: Logger };
  /** A cascade's previous stage (3d_lowres), whose mask of each case adds input channels; null otherwise. */
  readonly previousStage: Predictor | null;

  /**
   * `models` (libtorch networks or engines) share `plan`; the networks' deep supervision is
   * switched off (only full-resolution logits are used).
   */
  constructor(models: readonly (SegmentationNetwork | WindowEngine)[], plan: Plan, options: PredictorOptions & PredictorParts = {}) {
    if (models.length === 0) throw new RangeError('a Predictor needs at least one network');
    const engines = models.map((model) => (isWindowEngine(model) ? model : new TorchEngine(model)));
    const classes = new Set(engines.map((e) => e.numClasses));
    if (classes.size !== 1) throw new RangeError(`the networks disagree on the number of classes: ${[...classes].join(', ')}`);
    this.previousStage = options.previousStage ?? null;
    if ((plan.configuration.previousStage !== undefined) !== (this.previousStage !== null)) {
      throw new RangeError(`the plan ${plan.configuration.previousStage !== undefined ? `is a cascade stage after '${plan.configuration.previousStage}' and needs` : 'is no cascade stage and takes no'} previous stage`);
    }
    const channels = plan.configuration.normalization.length + previousStageChannels(plan.configuration, engines[0]!.numClasses);
    for (const engine of engines) {
      if (engine.inputChannels !== channels) throw new RangeError(`a network takes ${engine.inputChannels} channel(s), the plan ${channels}`);
    }
    checkPrecision(options);
    this.engines = engines;
    this.plan = plan;
    this.numClasses = engines[0]!.numClasses;
    this.regions = options.regions ?? null;
    if (this.regions !== null && this.regions.classOrder.length !== this.numClasses) {
      throw new RangeError(`the networks have ${this.numClasses} heads, regions_class_order ${this.regions.classOrder.length} entries`);
    }
    this.options = {
      device: options.device ?? CPU_DEVICE,
      precision: options.precision ?? SLIDING_WINDOW_DEFAULTS.precision,
      mirrorAxes: options.mirrorAxes ?? ALL_MIRROR_AXES,
      mirrorRule: options.mirrorRule ?? ADAPTIVE_MIRROR_RULE,
      stepFraction: options.stepFraction ?? SLIDING_WINDOW_DEFAULTS.stepFraction,
      windowsPerBatch: options.windowsPerBatch ?? SLIDING_WINDOW_DEFAULTS.windowsPerBatch,
      accumulateOn: options.accumulateOn ?? 'device',
      // A region model has no background head to give the voxels of skipped windows: every window runs.
      skipBackground: (options.skipBackground ?? false) && this.regions === null,
      progress: options.progress,
      logger: options.logger ?? SILENT_LOGGER,
    };
    if (options.skipBackground === true && this.regions !== null) this.options.logger.warn('a region-based model has no background class for skipped windows: every window runs');
  }

  /**
   * A predictor from checkpoint files (one, or one per fold for an ensemble). Every checkpoint must
   * carry the same plan configuration and label space.
   */
  static fromCheckpoints(files: readonly string[], options: PredictorOptions = {}): Predictor {
    if (files.length === 0) throw new InputError('no checkpoint to predict with');
    checkPrecision(options);
    const device = options.device ?? CPU_DEVICE;
    const networks: SegmentationNetwork[] = [];
    let first: InferenceCheckpoint | null = null;
    try {
      for (const checkpoint of readModelCheckpoints(files, options)) {
        first ??= checkpoint;
        networks.push(buildInferenceNetwork(checkpoint, device));
      }
    } catch (error) {
      for (const network of networks) network.dispose();
      throw error;
    }
    return Predictor.ofModel(networks, first!, files, { ...options, device });
  }

  /**
   * The same with engines that `factory` builds from each checkpoint (e.g. ONNX through
   * onnxruntime-node). Such engines run on the CPU in fp32.
   */
  static async fromCheckpointsWith(files: readonly string[], factory: EngineFactory, options: PredictorOptions = {}): Promise<Predictor> {
    if (files.length === 0) throw new InputError('no checkpoint to predict with');
    if ((options.device ?? CPU_DEVICE).type !== 'cpu') {
      throw new InputError(`--engine ${factory.kind} runs on the CPU (onnxruntime's CPU execution provider): use --device cpu, or --engine torch for ${options.device!.type}`, { code: 'bad-engine' });
    }
    if ((options.precision ?? 'fp32') !== 'fp32') {
      throw new InputError(`--engine ${factory.kind} runs fp32: use --precision fp32, or --engine torch for ${options.precision}`, { code: 'bad-engine' });
    }
    const engines: WindowEngine[] = [];
    let first: InferenceCheckpoint | null = null;
    try {
      for (const checkpoint of readModelCheckpoints(files, options)) {
        first ??= checkpoint;
        engines.push(await factory.create(checkpoint));
      }
    } catch (error) {
      for (const engine of engines) engine.dispose();
      throw error;
    }
    if (first!.plan.configuration.previousStage !== undefined) {
      for (const engine of engines) engine.dispose();
      throw new InputError(`--engine ${factory.kind} does not run nnU-Net's cascade yet: use --engine torch`, { code: 'bad-engine' });
    }
    const predictor = Predictor.ofModel(engines, first!, files, { ...options, device: CPU_DEVICE });
    predictor.description += ` [${factory.kind}]`;
    return predictor;
  }

  private static ofModel(models: readonly (SegmentationNetwork | WindowEngine)[], first: InferenceCheckpoint, files: readonly string[], options: PredictorOptions): Predictor {
    // As nnU-Net: the first fold's mirroring axes, unless the caller chose.
    const mirrorAxes = options.mirrorAxes ?? first.mirrorAxes ?? ALL_MIRROR_AXES;
    const skipBackground = options.skipBackground ?? first.kind === 'lesionseg';
    // A cascade stage: its previous stage from the sibling model folder, same folds and checkpoint, its own mirroring axes.
    const stage = first.plan.configuration.previousStage;
    let previousStage: Predictor | undefined;
    try {
      if (stage !== undefined && first.kind === 'lesionseg') {
        // A lesionseg cascade run names its previous stage's runs (RUN/previous_stage.json); they are lesionseg checkpoints, no configuration to check.
        const { configuration: _configuration, ...rest } = options;
        previousStage = Predictor.fromCheckpoints(lesionsegPreviousStageCheckpoints(files), rest);
      } else if (stage !== undefined) {
        previousStage = Predictor.fromCheckpoints(previousStageCheckpoints(files, stage), { ...options, configuration: stage });
      }
    } catch (error) {
      for (const model of models) model.dispose();
      throw error;
    }
    const predictor = new Predictor(models, first.plan, { ...options, mirrorAxes, skipBackground, regions: options.regions ?? first.regions ?? null, ...(previousStage !== undefined ? { previousStage } : {}) });
    predictor.description = `${first.description}${files.length > 1 ? ` (ensemble of ${files.length})` : ''}${previousStage !== undefined ? `, after ${previousStage.description}` : ''}`;
    return predictor;
  }

  /** The models predicting: this one (an ensemble across models lists several). */
  get members(): readonly Predictor[] {
    return [this];
  }

  /** The libtorch networks among the engines. */
  get networks(): readonly SegmentationNetwork[] {
    return this.engines.flatMap((engine) => (engine instanceof TorchEngine ? [engine.network] : []));
  }

  /** True when every engine answers synchronously, so `predictCase` (not only `predictCaseAsync`) works. */
  get synchronous(): boolean {
    return this.engines.every((engine) => engine.synchronous);
  }

  /** The precision of the forward passes. */
  get precision(): InferencePrecision {
    return this.options.precision;
  }

  get device(): Device {
    return this.options.device;
  }

  /** Whether windows wholly outside the body are left unrun (default: for lesionseg models, not nnU-Net's). */
  get skipsBackground(): boolean {
    return this.options.skipBackground;
  }

  /** The spatial axes mirrored for test-time augmentation ([] none). */
  get mirrorAxes(): readonly SpatialAxis[] {
    return this.options.mirrorAxes;
  }

  /** The foreground label values the mask can hold: 1..K-1, or a region model's regions_class_order values. */
  get maskLabels(): number[] {
    if (this.regions !== null) return [...new Set(this.regions.classOrder)].filter((v) => v !== 0).sort((a, b) => a - b);
    return Array.from({ length: this.numClasses - 1 }, (_, k) => k + 1);
  }

  /** Which windows get their mirrored passes. */
  get mirrorRule(): Readonly<MirrorRule> {
    return this.options.mirrorRule;
  }

  /** The channel names the plan expects, in order. */
  get channelNames(): string[] {
    return this.plan.configuration.normalization.map((n) => n.channel);
  }

  /**
   * The body of a preprocessed case for window skipping: the largest component above -500 HU of
   * its first CT-normalised channel; null when skipping is off or the plan has no usable CT channel.
   */
  bodyMask(data: Float32Array, shape: readonly number[]): Uint8Array | null {
    if (!this.options.skipBackground) return null;
    const channel = this.plan.configuration.normalization.findIndex((n) => n.scheme === 'ct' && n.ct !== undefined);
    if (channel < 0) return null;
    const threshold = normalizedCtThreshold(this.plan.configuration.normalization[channel]!.ct!);
    if (threshold === null) return null;
    const spatial = shape.slice(1) as Triple;
    const voxels = spatial[0] * spatial[1] * spatial[2];
    return largestComponentAbove(data.subarray(channel * voxels, (channel + 1) * voxels), spatial, threshold);
  }

  private windowOptions(accumulatorDevice: Device, body: Uint8Array | null = null, onWindows?: (counts: WindowCounts) => void): SlidingWindowOptions {
    return {
      ...(body !== null ? { bodyMask: { mask: body } } : {}),
      ...(onWindows !== undefined ? { onWindows } : {}),
      patchSize: this.plan.configuration.patchSize,
      numClasses: this.numClasses,
      stepFraction: axisStepFractions(this.plan.configuration, this.options.stepFraction),
      mirrorAxes: this.options.mirrorAxes,
      mirrorRule: this.options.mirrorRule,
      windowsPerBatch: this.options.windowsPerBatch,
      precision: this.options.precision,
      accumulatorDevice,
      ...(this.options.progress !== undefined ? { progress: this.options.progress } : {}),
    };
  }

  /** Logits [K, z, y, x] float32 of a preprocessed case [C, z, y, x] (a tensor on the device); synchronous engines only. */
  predictLogits(data: Tensor, accumulatorDevice?: Device, body: Uint8Array | null = null, onWindows?: (counts: WindowCounts) => void): Tensor {
    if (!this.synchronous) throw new RangeError(`the ${this.engines[0]!.kind} engine answers asynchronously: use predictCaseAsync / predictLogitsAsync`);
    const forwards: LogitsFunction[] = this.engines.map((engine) => (x: Tensor) => engine.run(x) as Tensor);
    return slidingWindowPredict(forwards, data, this.windowOptions(accumulatorDevice ?? (this.options.accumulateOn === 'cpu' ? CPU_DEVICE : this.options.device), body, onWindows));
  }

  /** The same for any engine (call outside any scope; the caller owns the result). */
  async predictLogitsAsync(data: Tensor, body: Uint8Array | null = null, onWindows?: (counts: WindowCounts) => void): Promise<Tensor> {
    if (this.synchronous) return this.predictLogits(data, undefined, body, onWindows);
    return slidingWindowPredictAsync(this.engines.map((engine) => (x: Tensor) => engine.run(x)), data, this.windowOptions(CPU_DEVICE, body, onWindows));
  }

  /** The channel images of one case, checked and preprocessed. */
  private preprocess(images: readonly Volume[], caseId: string) {
    const expected = this.channelNames;
    if (images.length !== expected.length) {
      throw new InputError(
        `case '${caseId}' has ${images.length} channel image(s), the model's plan expects ${expected.length} (${expected.join(', ')})`,
        { code: 'channel-mismatch' },
      );
    }
    if (this.previousStage === null) return preprocessCase(images, null, this.plan, { caseId });
    return preprocessAfterPreviousStage(images, this.previousStage.predictCase(images, { caseId }).segmentation, this.plan, caseId, this.numClasses);
  }

  /** Logits (disposed here) back to the input geometry; `clock` has marked preprocessing, body mask and sliding window. */
  private exportLogits(logits: Tensor, preprocessed: { properties: CaseProperties; seconds: PreprocessSeconds }, options: PredictCaseOptions, clock: StageClock, windows: WindowCounts): CasePrediction {
    const properties = preprocessed.properties;
    let exported: ReturnType<typeof exportPrediction>;
    try {
      // Classes go to the host one at a time, so the export holds one class of logits at a time.
      const classLogits = (k: number): Float32Array => scope(() => contiguous(narrow(logits, 0, k, 1)).toFloat32Array());
      exported = exportPrediction(classLogits, this.numClasses, properties, { probabilities: options.probabilities === true, ...(this.regions !== null ? { regionClassOrder: this.regions.classOrder } : {}) });
    } finally {
      logits.dispose();
    }
    clock.mark();
    return {
      segmentation: exported.segmentation,
      probabilities: exported.probabilities,
      properties,
      seconds: {
        preprocess: clock.seconds(0),
        preprocessSteps: preprocessed.seconds,
        bodyMask: clock.seconds(1),
        slidingWindow: clock.seconds(2),
        export: clock.seconds(3),
        ...exported.seconds,
      },
      peakRssMiB: { preprocess: clock.peaks[0]!, bodyMask: clock.peaks[1]!, slidingWindow: clock.peaks[2]!, export: clock.peaks[3]! },
      windows,
    };
  }

  /** The stages before the sliding window, timed: preprocessing, then the body mask (null: every window runs). */
  private prepareCase(images: readonly Volume[], caseId: string): { clock: StageClock; preprocessed: ReturnType<Predictor['preprocess']>; body: Uint8Array | null } {
    const clock = new StageClock();
    const preprocessed = this.preprocess(images, caseId);
    clock.mark();
    const body = this.bodyMask(preprocessed.data, preprocessed.shape);
    clock.mark();
    return { clock, preprocessed, body };
  }

  /** Predict one case given as one volume per channel (the plan's channel order); synchronous engines only. */
  predictCase(images: readonly Volume[], options: PredictCaseOptions = {}): CasePrediction {
    const caseId = options.caseId ?? 'case';
    const { clock, preprocessed, body } = this.prepareCase(images, caseId);
    let windows: WindowCounts = { total: 0, run: 0 };
    const onWindows = (counts: WindowCounts): void => {
      windows = counts;
    };
    const logits = scope(() => {
      const data = fromArray(preprocessed.data, preprocessed.shape, { device: this.options.device });
      try {
        return this.predictLogits(data, undefined, body, onWindows);
      } catch (error) {
        // As nnU-Net: when the accumulators do not fit on the GPU, retry with them on the host.
        if (!(error instanceof TorchError) || this.options.device.type === 'cpu' || this.options.accumulateOn === 'cpu') throw error;
        this.options.logger.warn(`case '${caseId}': sliding window on the ${this.options.device.type} device failed (${error.message}); retrying with host accumulators`);
        return this.predictLogits(data, CPU_DEVICE, body, onWindows);
      }
    });
    clock.mark();
    return this.exportLogits(logits, preprocessed, options, clock, windows);
  }

  /** The same for any engine: the synchronous path for libtorch networks, the asynchronous sliding window otherwise. */
  async predictCaseAsync(images: readonly Volume[], options: PredictCaseOptions = {}): Promise<CasePrediction> {
    if (this.synchronous) return this.predictCase(images, options);
    const caseId = options.caseId ?? 'case';
    const { clock, preprocessed, body } = this.prepareCase(images, caseId);
    let windows: WindowCounts = { total: 0, run: 0 };
    const data = fromArray(preprocessed.data, preprocessed.shape, { device: CPU_DEVICE });
    let logits: Tensor;
    try {
      logits = await this.predictLogitsAsync(data, body, (counts) => {
        windows = counts;
      });
    } finally {
      data.dispose();
    }
    clock.mark();
    return this.exportLogits(logits, preprocessed, options, clock, windows);
  }

  /** Release the engines' weights and sessions. */
  dispose(): void {
    this.previousStage?.dispose();
    for (const engine of this.engines) engine.dispose();
  }
}
