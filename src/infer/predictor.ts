/**
 * Predictor: the thin stateful shell around the pure parts. It holds the network(s) of one model
 * (several for a fold ensemble, whose logits are averaged) and the plan they were trained with, and
 * predicts a case given as one Volume per channel: preprocess with the plan (data's preprocessCase,
 * no label), sliding window on the device (no grad, autocast for bf16/fp16), logits back to the
 * input geometry (export.ts). Constructors do no I/O; `Predictor.fromCheckpoints` reads files.
 */
import { CheckpointError, InputError, SILENT_LOGGER, TorchError, type Device, type Logger, type ProgressReporter, type Volume } from '../core/index.js';
import { preprocessCase, type CaseProperties, type Plan } from '../data/index.js';
import { contiguous, fromArray, narrow, scope, type Tensor } from '../tensor/index.js';
import { buildInferenceNetwork, readInferenceCheckpoint, type InferenceCheckpoint, type SegmentationNetwork } from './checkpoint.js';
import { exportPrediction } from './export.js';
import { ALL_MIRROR_AXES, type SpatialAxis } from './mirroring.js';
import { SLIDING_WINDOW_DEFAULTS, slidingWindowPredict, type InferencePrecision, type LogitsFunction } from './slidingWindowPredict.js';

export interface PredictorOptions {
  device?: Device;
  precision?: InferencePrecision;
  /**
   * Spatial axes mirrored for test-time augmentation; [] turns TTA off. Default: the model's
   * (an nnU-Net checkpoint's inference_allowed_mirroring_axes), else all three.
   */
  mirrorAxes?: readonly SpatialAxis[];
  /** nnU-Net model folders: the configuration the checkpoints must have been trained as. */
  configuration?: string;
  stepFraction?: number;
  windowsPerBatch?: number;
  /** Where the sliding-window accumulators live: on the compute device (default) or on the host. */
  accumulateOn?: 'device' | 'cpu';
  progress?: ProgressReporter;
  logger?: Logger;
}

export interface PredictCaseOptions {
  caseId?: string;
  /** Also return per-class softmax probabilities in the input geometry. */
  probabilities?: boolean;
}

export interface CasePrediction {
  segmentation: Volume<Uint8Array>;
  probabilities: Volume<Float32Array>[] | null;
  properties: CaseProperties;
  seconds: { preprocess: number; slidingWindow: number; export: number };
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

export class Predictor {
  readonly networks: readonly SegmentationNetwork[];
  readonly plan: Plan;
  readonly numClasses: number;
  /** One line naming the model, for logs. */
  description = 'networks';
  private readonly options: Required<Omit<PredictorOptions, 'progress' | 'logger' | 'configuration'>> & Pick<PredictorOptions, 'progress'> & { logger: Logger };

  /** `networks` share `plan`; their deep supervision is switched off (only full-resolution logits are used). */
  constructor(networks: readonly SegmentationNetwork[], plan: Plan, options: PredictorOptions = {}) {
    if (networks.length === 0) throw new RangeError('a Predictor needs at least one network');
    const classes = new Set(networks.map((n) => n.config.numClasses));
    if (classes.size !== 1) throw new RangeError(`the networks disagree on the number of classes: ${[...classes].join(', ')}`);
    const channels = plan.configuration.normalization.length;
    for (const network of networks) {
      if (network.config.inputChannels !== channels) throw new RangeError(`a network takes ${network.config.inputChannels} channel(s), the plan ${channels}`);
      network.deepSupervision = false;
    }
    checkPrecision(options);
    this.networks = networks;
    this.plan = plan;
    this.numClasses = networks[0]!.config.numClasses;
    this.options = {
      device: options.device ?? CPU_DEVICE,
      precision: options.precision ?? SLIDING_WINDOW_DEFAULTS.precision,
      mirrorAxes: options.mirrorAxes ?? ALL_MIRROR_AXES,
      stepFraction: options.stepFraction ?? SLIDING_WINDOW_DEFAULTS.stepFraction,
      windowsPerBatch: options.windowsPerBatch ?? SLIDING_WINDOW_DEFAULTS.windowsPerBatch,
      accumulateOn: options.accumulateOn ?? 'device',
      progress: options.progress,
      logger: options.logger ?? SILENT_LOGGER,
    };
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
    let plan: Plan | null = null;
    let first: InferenceCheckpoint | null = null;
    try {
      for (const file of files) {
        const checkpoint = readInferenceCheckpoint(file, options.configuration !== undefined ? { configuration: options.configuration } : {});
        if (plan === null) {
          plan = checkpoint.plan;
          first = checkpoint;
        } else if (JSON.stringify(checkpoint.plan.configuration) !== JSON.stringify(plan.configuration)) {
          throw new CheckpointError(`its plan differs from ${files[0]}'s: an ensemble must share preprocessing, patch and network`, { file: checkpoint.sidecarFile });
        }
        const network = buildInferenceNetwork(checkpoint, device);
        networks.push(network);
        if (network.config.numClasses !== networks[0]!.config.numClasses) {
          throw new CheckpointError(`it predicts ${network.config.numClasses} classes, ${files[0]} ${networks[0]!.config.numClasses}`, { file: checkpoint.file });
        }
      }
    } catch (error) {
      for (const network of networks) network.dispose();
      throw error;
    }
    // As nnU-Net: the first fold's mirroring axes, unless the caller chose.
    const mirrorAxes = options.mirrorAxes ?? first?.mirrorAxes ?? ALL_MIRROR_AXES;
    const predictor = new Predictor(networks, plan!, { ...options, device, mirrorAxes });
    predictor.description = `${first!.description}${files.length > 1 ? ` (ensemble of ${files.length})` : ''}`;
    return predictor;
  }

  /** The spatial axes mirrored for test-time augmentation ([] none). */
  get mirrorAxes(): readonly SpatialAxis[] {
    return this.options.mirrorAxes;
  }

  /** The channel names the plan expects, in order. */
  get channelNames(): string[] {
    return this.plan.configuration.normalization.map((n) => n.channel);
  }

  /** Logits [K, z, y, x] float32 of a preprocessed case [C, z, y, x] (a tensor on the device). */
  predictLogits(data: Tensor, accumulatorDevice?: Device): Tensor {
    const forwards: LogitsFunction[] = this.networks.map((network) => (x: Tensor) => network.forward(x)[0]!);
    return slidingWindowPredict(forwards, data, {
      patchSize: this.plan.configuration.patchSize,
      numClasses: this.numClasses,
      stepFraction: this.options.stepFraction,
      mirrorAxes: this.options.mirrorAxes,
      windowsPerBatch: this.options.windowsPerBatch,
      precision: this.options.precision,
      accumulatorDevice: accumulatorDevice ?? (this.options.accumulateOn === 'cpu' ? CPU_DEVICE : this.options.device),
      ...(this.options.progress !== undefined ? { progress: this.options.progress } : {}),
    });
  }

  /** Predict one case given as one volume per channel (the plan's channel order). */
  predictCase(images: readonly Volume[], options: PredictCaseOptions = {}): CasePrediction {
    const caseId = options.caseId ?? 'case';
    const expected = this.channelNames;
    if (images.length !== expected.length) {
      throw new InputError(
        `case '${caseId}' has ${images.length} channel image(s), the model's plan expects ${expected.length} (${expected.join(', ')})`,
        { code: 'channel-mismatch' },
      );
    }
    const t0 = now();
    const preprocessed = preprocessCase(images, null, this.plan, { caseId });
    const t1 = now();
    let t2 = t1;
    const exported = scope(() => {
      const data = fromArray(preprocessed.data, preprocessed.shape, { device: this.options.device });
      let logits: Tensor;
      try {
        logits = this.predictLogits(data);
      } catch (error) {
        // As nnU-Net: when the accumulators do not fit on the GPU, retry with them on the host.
        if (!(error instanceof TorchError) || this.options.device.type === 'cpu' || this.options.accumulateOn === 'cpu') throw error;
        this.options.logger.warn(`case '${caseId}': sliding window on the ${this.options.device.type} device failed (${error.message}); retrying with host accumulators`);
        logits = this.predictLogits(data, CPU_DEVICE);
      }
      data.dispose();
      t2 = now();
      // Classes go to the host one at a time, so the export holds one class of logits at a time.
      const classLogits = (k: number): Float32Array => scope(() => contiguous(narrow(logits, 0, k, 1)).toFloat32Array());
      return exportPrediction(classLogits, this.numClasses, preprocessed.properties, { probabilities: options.probabilities === true });
    });
    const t3 = now();
    return {
      segmentation: exported.segmentation,
      probabilities: exported.probabilities,
      properties: preprocessed.properties,
      seconds: { preprocess: t1 - t0, slidingWindow: t2 - t1, export: t3 - t2 },
    };
  }

  /** Release the networks' weights. */
  dispose(): void {
    for (const network of this.networks) network.dispose();
  }
}
