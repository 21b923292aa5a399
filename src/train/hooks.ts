/**
 * The trainer's standard hooks: the JSON Lines epoch log, the checkpoints (best when the EMA of
 * the pseudo Dice improves, latest every epoch, final at the end) and progress on a reporter.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFileSync, type Logger, type ProgressReporter } from '../core/index.js';
import { writeCheckpoint, type CheckpointName } from '../checkpoint/index.js';
import type { TrainingSidecarContent } from './sidecar.js';
import type { EpochRecord, Trainer, TrainerHook } from './trainer.js';

export const RUN_FILES = { log: 'log.jsonl', plan: 'plan.json', split: 'split.json', previousStage: 'previous_stage.json', previousStageMaps: 'previous_stage' } as const;

export function checkpointBaseIn(runDir: string, name: CheckpointName): string {
  return path.join(runDir, `checkpoint_${name}`);
}

/** Append one JSON line per epoch (a whole line per write, so a kill leaves at most one partial line). */
export function jsonlLogHook(file: string): TrainerHook {
  return {
    onEpochEnd(_trainer, record) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.appendFileSync(file, `${JSON.stringify(record)}\n`);
    },
  };
}

/** The epoch records of a log, skipping a torn last line. */
export function readEpochLog(file: string): EpochRecord[] {
  if (!fs.existsSync(file)) return [];
  const records: EpochRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      records.push(JSON.parse(line) as EpochRecord);
    } catch {
      // A line cut by a kill: the epoch is redone after resume.
    }
  }
  return records;
}

/** Keep only the records of epochs before `epoch` (used on resume), rewritten atomically. */
export function truncateEpochLog(file: string, epoch: number): EpochRecord[] {
  const kept = readEpochLog(file).filter((record) => record.epoch < epoch);
  atomicWriteFileSync(file, kept.map((record) => `${JSON.stringify(record)}\n`).join(''));
  return kept;
}

export interface CheckpointHookOptions {
  runDir: string;
  /** The sidecar content for the trainer's current state. */
  content: (trainer: Trainer) => TrainingSidecarContent;
  /** Write `latest` every this many epochs (default 1, so a kill loses at most one epoch). */
  latestEvery?: number;
}

/**
 * best: whenever the EMA improves (weights only). latest: every `latestEvery` epochs, with the
 * momentum buffers. final: at the end of a finished run, with the momentum buffers (continual
 * learning carries them over). best is written before latest so that a resumed run never trusts a
 * best EMA whose weights were not saved.
 */
export function checkpointHook(options: CheckpointHookOptions): TrainerHook {
  const every = options.latestEvery ?? 1;
  return {
    onEpochEnd(trainer, record) {
      if (record.is_best) writeCheckpoint(checkpointBaseIn(options.runDir, 'best'), 'best', trainer.model, null, options.content(trainer));
      if ((record.epoch + 1) % every === 0 || trainer.finished) {
        writeCheckpoint(checkpointBaseIn(options.runDir, 'latest'), 'latest', trainer.model, trainer.optimizer, options.content(trainer));
      }
    },
    onTrainEnd(trainer) {
      if (trainer.finished) writeCheckpoint(checkpointBaseIn(options.runDir, 'final'), 'final', trainer.model, trainer.optimizer, options.content(trainer));
    },
  };
}

/** A bar (or plain lines) per epoch on a progress reporter. */
export function progressHook(progress: ProgressReporter): TrainerHook {
  return {
    onEpochStart(trainer, epoch) {
      progress.start(`epoch ${epoch + 1}/${trainer.options.numEpochs}`, trainer.options.iterationsPerEpoch);
    },
    onIteration(_trainer, _iteration, loss) {
      progress.tick(1, `loss ${loss.toFixed(4)}`);
    },
    onEpochEnd() {
      progress.stop();
    },
  };
}

const format = (value: number | null, digits = 4): string => (value === null ? '-' : value.toFixed(digits));

/** One summary line per epoch on a logger. */
export function epochSummaryHook(logger: Logger): TrainerHook {
  return {
    onEpochEnd(trainer, r) {
      logger.info(
        `epoch ${r.epoch + 1}/${trainer.options.numEpochs}: train loss ${format(r.train_loss)}, val loss ${format(r.val_loss)}, pseudo Dice ${format(r.pseudo_dice)} (EMA ${format(r.ema_pseudo_dice)}${r.is_best ? ', best' : ''}), lr ${r.lr.toExponential(3)}, ${r.epoch_seconds.toFixed(1)} s`,
      );
    },
  };
}

/**
 * Stop after the current epoch once `signal` aborts (the CLI aborts it on SIGTERM or SIGUSR1, as
 * Slurm sends before a time limit or on scancel): the epoch's checkpoint is written by then, so
 * the run resumes from it. Already aborted at the start: no epoch runs.
 */
export function stopOnAbortHook(signal: AbortSignal): TrainerHook {
  return {
    onTrainStart(trainer) {
      if (signal.aborted) trainer.requestStop();
    },
    onEpochEnd(trainer) {
      if (signal.aborted) trainer.requestStop();
    },
  };
}
