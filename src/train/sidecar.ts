/**
 * The trainer's part of a checkpoint sidecar (src/checkpoint writes and reads the set; what only
 * the trainer reads back to resume exactly is declared here, as a zod schema): the training
 * settings (their type inferred), the trainer state after the completed epochs and the epoch
 * history (schemas checked against TrainerState and EpochRecord of trainer.ts). A resume reads the
 * sidecar through readTrainingSidecar, so a sidecar edited or written by another version is
 * refused with every problem named, before any weight is loaded.
 */
import { CheckpointError, integer, parseJson, PRECISIONS, z, type RngState } from '../core/index.js';
import type { CheckpointSidecar, SidecarContent } from '../checkpoint/index.js';
import type { RunEnvironment } from './environment.js';
import type { GradScalerState } from './step.js';
import type { EpochRecord, TrainerState } from './trainer.js';

const count = integer().min(0);
const nullableNumber = z.number().nullable();

export const TrainingSettingsSchema = z.object({
  numEpochs: integer().min(1),
  iterationsPerEpoch: integer().min(1),
  validationIterations: count,
  seed: integer(),
  precision: z.enum(PRECISIONS),
  device: z.string().min(1),
  threads: integer().min(1).nullable(),
  schedule: z.object({ kind: z.literal('poly'), initialLr: z.number().positive(), exponent: z.number(), totalEpochs: integer().min(1), startEpoch: count }),
  optimizer: z.object({ kind: z.literal('sgd'), momentum: z.number(), nesterov: z.boolean(), weightDecay: z.number() }),
  clipNorm: z.number().positive(),
});

const RngStateSchema: z.ZodType<RngState> = z.tuple([z.number(), z.number(), z.number(), z.number()]);
const GradScalerSchema: z.ZodType<GradScalerState> = z.object({ scale: z.number().positive(), goodSteps: count });

export const TrainerStateSchema: z.ZodType<TrainerState> = z.object({
  epoch: count,
  ema: nullableNumber,
  bestEma: nullableNumber,
  scaler: GradScalerSchema.nullable(),
  rng: RngStateSchema,
  epochSeconds: z.array(z.number().min(0)),
});

export const EpochRecordSchema: z.ZodType<EpochRecord> = z.object({
  epoch: count,
  train_loss: z.number(),
  val_loss: nullableNumber,
  pseudo_dice: nullableNumber,
  pseudo_dice_per_class: z.array(nullableNumber),
  ema_pseudo_dice: nullableNumber,
  is_best: z.boolean(),
  lr: z.number(),
  epoch_seconds: z.number(),
  loader_wait_seconds: z.number(),
  skipped_steps: count,
});

const TrainingRecordSchema = z.looseObject({
  training: TrainingSettingsSchema,
  state: TrainerStateSchema,
  history: z.array(EpochRecordSchema),
});

export interface TrainingSidecar extends CheckpointSidecar {
  training: z.output<typeof TrainingSettingsSchema>;
  /** CPU, thread count and library versions the numbers depend on (train/environment.ts; absent in older runs). */
  environment?: RunEnvironment;
  /** The trainer state after `state.epoch` completed epochs. */
  state: TrainerState;
  history: EpochRecord[];
}

export type TrainingSidecarContent = SidecarContent<TrainingSidecar>;

/** The sidecar of a checkpoint to resume, with its trainer's record checked; CheckpointError lists every problem. */
export function readTrainingSidecar(sidecar: CheckpointSidecar, file: string): TrainingSidecar {
  const result = parseJson(TrainingRecordSchema, sidecar, file);
  if (!result.ok) throw new CheckpointError(`the trainer's record cannot be resumed: ${result.issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`, { file });
  return sidecar as TrainingSidecar;
}
