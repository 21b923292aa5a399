/**
 * The five training strategies of the study as plain data (STYLE rule 5): which pre-trained weights
 * go where (prefix mappings), what is never copied (the heads), what is frozen, whether the
 * optimizer state is carried over, and how the poly learning-rate schedule runs. `transferPlan` is
 * pure; applyTransfer (apply.ts) executes a plan and reports what it did. DESIGN.md, "The paper's
 * method, pinned down", defines each strategy:
 *
 * - scratch: random initialisation, fresh optimizer and schedule.
 * - continual: every weight but the heads and the SGD momentum buffers come from the pre-trained
 *   run; the schedule continues over pre-training + target epochs as one poly schedule.
 * - finetune (Body Fine-tuning): every weight but the heads; fresh optimizer, fresh schedule.
 * - frozen-encoder (Pre-trained Lesion Representations): the encoder is copied and frozen; the
 *   decoder is initialised from the pre-trained decoder (default) or randomly (`decoderInit`).
 * - hybrid (Hybrid-encoder Learning): a HybridUNet whose Adapted encoder receives the pre-trained
 *   encoder and is frozen; the Dedicated encoder and the fusion units start random; the decoder
 *   starts as the pre-trained decoder (the fused features have the encoder's widths, so its
 *   weights fit) or, with `decoderInit: 'random'`, random. Measured on the synthetic study
 *   (multi-lesion model, 5 folds): pre-trained decoder DSC 0.409 / NSD 0.337, random decoder
 *   0.242 / 0.176 (a random decoder + fusion starts learning as late as training from scratch).
 */
import { InputError } from '../core/index.js';
import { polyLr, POLY_DEFAULTS } from '../nn/index.js';
import { isStrategyName, STRATEGIES, strategiesTaking, STRATEGY_NAMES, type StrategyName, type StrategyOption } from '../train/index.js';
import { ARCHITECTURES, type FuseLevels } from '../models/index.js';

/** The strategies (train's one table, STRATEGIES). */
export const TRANSFER_STRATEGIES: readonly StrategyName[] = STRATEGY_NAMES;
export type TransferStrategy = StrategyName;

/** Checkpoint names starting with `from` load into model names starting with `to` (rest unchanged). */
export interface PrefixMapping {
  from: string;
  to: string;
}

export type DecoderInit = 'pretrained' | 'random';

export type TransferSchedule = { kind: 'fresh' } | { kind: 'continue'; pretrainEpochs: number };

export type TransferModelSpec = { kind: 'PlainConvUNet' } | { kind: 'HybridUNet'; fuseLevels: FuseLevels };

export interface TransferPlan {
  strategy: TransferStrategy;
  model: TransferModelSpec;
  copy: PrefixMapping[];
  /** Model prefixes never loaded from the checkpoint (the heads: the target label space is new). */
  skip: string[];
  /** Model prefixes frozen after loading: no gradient, not in the optimizer. */
  freeze: string[];
  /** 'carry': the SGD momentum buffers of the copied weights come from the pre-trained run. */
  optimizer: 'fresh' | 'carry';
  schedule: TransferSchedule;
  /** Recorded for frozen-encoder and hybrid, where it is a choice. */
  decoderInit?: DecoderInit;
}

export interface TransferPlanOptions {
  /** continual only (required there): epochs of the pre-training run. */
  pretrainEpochs?: number;
  /** frozen-encoder and hybrid: initialise the decoder from the pre-trained one (default) or randomly. */
  decoderInit?: DecoderInit;
  /** hybrid only: fuse at every level whose features feed the decoder (default) or at the bottleneck only. */
  fuseLevels?: FuseLevels;
}

export const TRANSFER_DEFAULTS = { decoderInit: 'pretrained', fuseLevels: 'all' } as const satisfies { decoderInit: DecoderInit; fuseLevels: FuseLevels };

// Where the parts live, as the registry declares them (the pre-trained checkpoint is a
// PlainConvUNet or MultiHeadUNet: the same encoder and decoder names).
const PLAIN = ARCHITECTURES.PlainConvUNet.keys;
const HYBRID = ARCHITECTURES.HybridUNet.keys;
const BODY: PrefixMapping[] = [
  { from: PLAIN.encoder, to: PLAIN.encoder },
  { from: PLAIN.decoder, to: PLAIN.decoder },
];

export function isTransferStrategy(value: string): value is TransferStrategy {
  return isStrategyName(value);
}

/** Whether the strategy reads a pre-trained checkpoint. */
export function needsPretrained(strategy: TransferStrategy): boolean {
  return STRATEGIES[strategy].pretrained;
}

/** Whether strategy option `option` applies to `strategy` (the table's `options`). */
function takes(strategy: TransferStrategy, option: StrategyOption): boolean {
  return (STRATEGIES[strategy].options as readonly StrategyOption[]).includes(option);
}

/** The plan of a strategy. Pure; options that do not apply to the strategy are refused, all at once. */
export function transferPlan(strategy: TransferStrategy, options: TransferPlanOptions = {}): TransferPlan {
  if (!isTransferStrategy(strategy)) {
    throw new InputError(`unknown transfer strategy '${String(strategy)}'; valid: ${TRANSFER_STRATEGIES.join(', ')}`);
  }
  const problems: string[] = [];
  if (options.pretrainEpochs !== undefined && strategy !== 'continual') problems.push(`pretrainEpochs applies only to continual, not ${strategy}`);
  for (const option of ['decoderInit', 'fuseLevels'] as const) {
    if (options[option] !== undefined && !takes(strategy, option)) problems.push(`${option} applies only to ${strategiesTaking(option).join(' and ')}, not ${strategy}`);
  }
  if (strategy === 'continual') {
    const epochs = options.pretrainEpochs;
    if (epochs === undefined) problems.push('continual needs pretrainEpochs (the length of the pre-training schedule it continues)');
    else if (!Number.isInteger(epochs) || epochs < 1) problems.push(`pretrainEpochs must be a positive integer, got ${epochs}`);
  }
  if (options.decoderInit !== undefined && options.decoderInit !== 'pretrained' && options.decoderInit !== 'random') problems.push(`decoderInit must be 'pretrained' or 'random', got '${String(options.decoderInit)}'`);
  if (options.fuseLevels !== undefined && options.fuseLevels !== 'all' && options.fuseLevels !== 'bottleneck') problems.push(`fuseLevels must be 'all' or 'bottleneck', got '${String(options.fuseLevels)}'`);
  if (problems.length) throw new InputError(`invalid options for the ${strategy} strategy: ${problems.join('; ')}`);

  const plain: TransferModelSpec = { kind: 'PlainConvUNet' };
  switch (strategy) {
    case 'scratch':
      return { strategy, model: plain, copy: [], skip: [], freeze: [], optimizer: 'fresh', schedule: { kind: 'fresh' } };
    case 'continual':
      return { strategy, model: plain, copy: BODY.map((m) => ({ ...m })), skip: [...PLAIN.heads], freeze: [], optimizer: 'carry', schedule: { kind: 'continue', pretrainEpochs: options.pretrainEpochs! } };
    case 'finetune':
      return { strategy, model: plain, copy: BODY.map((m) => ({ ...m })), skip: [...PLAIN.heads], freeze: [], optimizer: 'fresh', schedule: { kind: 'fresh' } };
    case 'frozen-encoder': {
      const decoderInit = options.decoderInit ?? TRANSFER_DEFAULTS.decoderInit;
      const copy = decoderInit === 'pretrained' ? BODY.map((m) => ({ ...m })) : [{ from: PLAIN.encoder, to: PLAIN.encoder }];
      return { strategy, model: plain, copy, skip: [...PLAIN.heads], freeze: [PLAIN.encoder], optimizer: 'fresh', schedule: { kind: 'fresh' }, decoderInit };
    }
    case 'hybrid': {
      const decoderInit = options.decoderInit ?? TRANSFER_DEFAULTS.decoderInit;
      const copy: PrefixMapping[] = [{ from: PLAIN.encoder, to: HYBRID.adaptedEncoder }];
      if (decoderInit === 'pretrained') copy.push({ from: PLAIN.decoder, to: HYBRID.decoder });
      return {
        strategy,
        model: { kind: 'HybridUNet', fuseLevels: options.fuseLevels ?? TRANSFER_DEFAULTS.fuseLevels },
        copy,
        skip: [...HYBRID.heads],
        freeze: [HYBRID.adaptedEncoder],
        optimizer: 'fresh',
        schedule: { kind: 'fresh' },
        decoderInit,
      };
    }
  }
}

/** The plan where the pre-training length does not matter (model, copies, frozen prefixes): continual's schedule gets a placeholder length. */
export function transferPlanShape(strategy: TransferStrategy, options: Omit<TransferPlanOptions, 'pretrainEpochs'> = {}): TransferPlan {
  return transferPlan(strategy, strategy === 'continual' ? { ...options, pretrainEpochs: 1 } : options);
}

/**
 * Learning rate of target epoch `epoch` (0-based) of `targetEpochs`: a fresh poly schedule, or for
 * continual the tail of one schedule over pre-training + target epochs,
 * polyLr(pretrainEpochs + epoch, pretrainEpochs + targetEpochs).
 */
export function transferLearningRate(schedule: TransferSchedule, epoch: number, targetEpochs: number, initialLr: number = POLY_DEFAULTS.initialLr): number {
  if (schedule.kind === 'fresh') return polyLr(epoch, targetEpochs, initialLr);
  return polyLr(schedule.pretrainEpochs + epoch, schedule.pretrainEpochs + targetEpochs, initialLr);
}
