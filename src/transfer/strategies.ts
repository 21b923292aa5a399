/**
 * The transfer strategies as the trainer's TrainingStrategy (src/train/strategy.ts): each builds
 * the network of its TransferPlan, executes the plan on the pre-trained checkpoint (applyTransfer:
 * copy by prefix, heads new, freeze, map the momentum buffers) and says how the optimizer and the
 * poly schedule start. Continual learning continues the pre-training schedule: its length is the
 * pre-training run's epochs plus this run's, and this run starts at the pre-training's end, so the
 * target phase trains at the schedule's small tail learning rates with the carried momentum.
 */
import { CheckpointError } from '../core/index.js';
import { type LoadReport } from '../nn/index.js';
import { type UNetConfig } from '../models/index.js';
import { polySchedule, SCRATCH, type PretrainedSource, type StrategyModel, type TrainingStrategy } from '../train/index.js';
import { applyTransfer, isPretrainedArchitecture, PRETRAINED_ARCHITECTURES, topologyDifferences, type PretrainedArchitectureName, type PretrainedCheckpoint, type TransferModel, type TransferReport } from './apply.js';
import { buildModelForPlan } from './build.js';
import { transferPlan, transferPlanShape, type DecoderInit, type TransferStrategy } from './plan.js';
import { type FuseLevels } from '../models/index.js';

export interface TransferStrategyOptions {
  /** frozen-encoder: initialise the decoder from the pre-trained one (default) or randomly. */
  decoderInit?: DecoderInit;
  /** hybrid: fuse at every skip level (default) or at the bottleneck only. */
  fuseLevels?: FuseLevels;
}

/** The pre-trained run (ours or an nnU-Net fold) as applyTransfer reads it. */
export function pretrainedFromCheckpoint(checkpoint: PretrainedSource): PretrainedCheckpoint {
  const { architecture } = checkpoint;
  const source: PretrainedCheckpoint = {
    state: checkpoint.weights,
    epochs: checkpoint.numEpochs,
    architecture: { name: architecture.name as PretrainedArchitectureName, config: architecture.config, ...(architecture.taskClasses ? { taskClasses: architecture.taskClasses } : {}) },
    file: checkpoint.file,
  };
  if (checkpoint.optimizer !== null) source.optimizerState = checkpoint.optimizer;
  return source;
}

/** The copies of a transfer report as one LoadReport (what the sidecar's `loadReport` holds). */
export function mergedLoadReport(report: TransferReport): LoadReport {
  const merged: LoadReport = { loaded: [], missing: [], unexpected: [], shapeMismatch: [], skipped: [] };
  for (const copy of report.copies) {
    merged.loaded.push(...copy.load.loaded);
    merged.missing.push(...copy.load.missing);
    merged.unexpected.push(...copy.load.unexpected);
    merged.shapeMismatch.push(...copy.load.shapeMismatch);
  }
  // Model parameters nothing was loaded into (the new heads; for hybrid also the Dedicated encoder, fusion and decoder).
  merged.skipped.push(...report.randomInit);
  return merged;
}

/** Every reason a checkpoint cannot serve `strategy` for a model of `config` (empty: it can). */
export function pretrainedProblems(strategy: TransferStrategy, checkpoint: PretrainedSource, config: UNetConfig): string[] {
  const { architecture } = checkpoint;
  if (!isPretrainedArchitecture(architecture.name)) {
    return [`architecture '${architecture.name}': transfer reads ${PRETRAINED_ARCHITECTURES.join(' or ')} checkpoints`];
  }
  const problems = topologyDifferences(architecture.config, config);
  if (strategy === 'continual' && checkpoint.optimizer === null) {
    problems.push(`continual carries the optimizer state, and ${checkpoint.name} checkpoints have no SGD momentum buffers (use checkpoint_final or checkpoint_latest)`);
  }
  return problems;
}

function assertPretrainedFits(strategy: TransferStrategy, pretrained: PretrainedSource, config: UNetConfig): void {
  const problems = pretrainedProblems(strategy, pretrained, config);
  if (problems.length > 0) {
    throw new CheckpointError(`the pre-trained checkpoint cannot start '${strategy}'`, { file: pretrained.describedBy, items: problems });
  }
}

/** The TrainingStrategy of a transfer strategy ('scratch' is the trainer's own SCRATCH). */
export function transferTrainingStrategy(strategy: TransferStrategy, options: TransferStrategyOptions = {}): TrainingStrategy {
  if (strategy === 'scratch') return SCRATCH;
  // Validate the options now (the plan is rebuilt in prepare, where continual knows its pre-training length).
  const planOptions = { ...(options.decoderInit !== undefined ? { decoderInit: options.decoderInit } : {}), ...(options.fuseLevels !== undefined ? { fuseLevels: options.fuseLevels } : {}) };
  const shape = transferPlanShape(strategy, planOptions);
  const planFor = (source: PretrainedCheckpoint) => (strategy === 'continual' ? transferPlan(strategy, { ...planOptions, pretrainEpochs: source.epochs }) : shape);
  return {
    name: strategy,
    requiresPretrained: true,
    architecture: shape.model.kind,
    buildModel: (config, device) => buildModelForPlan(shape, config, config.numClasses, { device }) as StrategyModel,
    checkPretrained(pretrained, config) {
      assertPretrainedFits(strategy, pretrained, config);
      // The weights themselves, as prepare will load them (names, shapes, momentum buffers): into a
      // model built on the CPU and dropped, so that a checkpoint that does not fit is refused
      // before the run folder and the preprocessed cache are written.
      const source = pretrainedFromCheckpoint(pretrained);
      const model = buildModelForPlan(shape, config, config.numClasses, { device: { type: 'cpu' } });
      try {
        applyTransfer(model, source, planFor(source));
      } finally {
        model.dispose();
      }
    },
    prepare(context) {
      if (context.pretrained === null) throw new CheckpointError(`strategy '${strategy}' needs a pre-trained checkpoint`);
      assertPretrainedFits(strategy, context.pretrained, context.model.config as UNetConfig);
      const source = pretrainedFromCheckpoint(context.pretrained);
      const plan = planFor(source);
      const { report, momentum } = applyTransfer(context.model as unknown as TransferModel, source, plan);
      const schedule =
        plan.schedule.kind === 'continue'
          ? polySchedule(context.numEpochs, { totalEpochs: plan.schedule.pretrainEpochs + context.numEpochs, startEpoch: plan.schedule.pretrainEpochs })
          : polySchedule(context.numEpochs);
      return {
        loadReport: mergedLoadReport(report),
        frozenPrefixes: [...plan.freeze],
        optimizerState: plan.optimizer === 'carry' ? momentum : null,
        schedule,
        details: { transfer: report },
      };
    },
  };
}
