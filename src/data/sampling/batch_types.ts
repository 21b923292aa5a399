/**
 * The batch contract between the data loader and the trainer (HostBatch, BatchLoader,
 * LoaderOptions), plus the plain-JSON records a batch is drawn into (BatchSpec, BatchRecord), which
 * is what makes batch k reproducible in any thread and replayable from its parameters.
 */
import type { Device } from '../../core/index.js';
import type { Plan } from '../planning_schema.js';
import type { Triple } from '../planning_topology.js';
import type { AugmentationParams } from './augment_pipeline.js';

/** One training batch on the host. */
export interface HostBatch {
  /** float32 [B, C, z, y, x] (the final patch size, after augmentation; a cascade's C counts the previous stage's one-hot channels). */
  image: Float32Array;
  /** int8 [B, 1, z, y, x]; class ids >= 0 (the -1 "outside" marker is already mapped to 0). */
  seg: Int8Array;
  shape: [number, number, number, number, number];
  /** Task (dataset) index of each sample, for multi-head models; all 0 for a single dataset. */
  tasks: number[];
  /**
   * The task of every sample of the global batch, when this is a data-parallel rank's share of
   * it (the ranks' multi-task losses then agree on which tasks the batch has); else absent.
   */
  batchTasks?: number[];
  caseIds: string[];
}

/** Deterministic given (seed, batchIndex): batch k is the same whichever worker makes it and whenever. */
export interface BatchLoader {
  /** The batch with this global index (0, 1, 2, ...). Prefetches the following ones in the background. */
  next(): Promise<HostBatch>;
  /** Index of the batch the next call to next() returns. */
  readonly position: number;
  /** Jump so that the next batch returned has this index (used on resume). */
  seek(batchIndex: number): void;
  /** Seconds the caller spent waiting inside next() so far (the trainer logs it). */
  readonly waitSeconds: number;
  /**
   * Hand a batch from next() back once its arrays are no longer read (copied to the device): the
   * loader writes a later batch into them instead of new arrays (no fresh memory per batch, which
   * V8 would have to collect). The batch must not be read afterwards (with worker threads its
   * arrays are detached: length 0). Optional, for a consumer and for a loader.
   */
  release?(batch: HostBatch): void;
  close(): Promise<void>;
}

export interface LoaderOptions {
  /** One per dataset (task); each holds the preprocessed cache of that dataset under the shared plan. */
  preprocessedDirs: string[];
  /** Per dataset: the cases to draw from (training split). */
  caseIds: string[][];
  /** Patch size and batch size come from plan.configuration. */
  plan: Plan;
  seed: number;
  /** false for validation batches (final patch size, no augmentation). */
  augment: boolean;
  /** nnU-Net's 0.33. */
  oversampleForeground: number;
  /**
   * Per dataset (task): its ignore label, or null (default: none). Forced-foreground patches are
   * never centred on it.
   */
  ignoreLabels?: (number | null)[];
  /** 0 = in the main thread; N = worker_threads prefetching. */
  workers: number;
  /** Batches in flight (default 2 * max(workers, 1)). */
  prefetch?: number;
  /** For the libtorch-based augmentation (default cpu). */
  device?: Device;
  /** Case arrays each loader thread keeps in memory (default 2 GiB), least recently used evicted. */
  cacheBytes?: number;
  /**
   * Data-parallel rank: this loader makes only the rank's samples of every (global) batch, see
   * rankBatchShare. Default: the whole batch.
   */
  shard?: { rank: number; worldSize: number };
  /**
   * A cascade stage (one dataset): the folder of the previous stage's label maps of the cases
   * (data's previousStageFile) and its foreground label count, appended as one-hot channels.
   */
  previousStage?: PreviousStageInput | null;
}

export interface PreviousStageInput {
  dir: string;
  labels: number;
}

/** Everything a thread needs to draw and render batches: plain JSON, sent to workers once. */
export interface BatchSpec {
  preprocessedDirs: string[];
  caseIds: string[][];
  /** The plan's (global) batch size. */
  batchSize: number;
  /** The samples [first, end) of each global batch this loader makes (all of them without a shard). */
  sampleRange: [number, number];
  channels: number;
  finalPatchSize: Triple;
  sampledPatchSize: Triple;
  dummy2d: boolean;
  rotationRangeRad: [number, number];
  mirrorAxes: number[];
  /** 2: a 2d configuration (patch one slice deep; blur over the slice only). */
  spatialDims?: 2;
  useMaskForNorm: boolean[];
  seed: number;
  augment: boolean;
  oversampleForeground: number;
  /** Per task: the dataset's ignore label, or null. */
  ignoreLabels: (number | null)[];
  device: Device;
  previousStage: PreviousStageInput | null;
}

/** How one sample of a batch was drawn. */
export interface SampleRecord {
  task: number;
  caseId: string;
  forcedForeground: boolean;
  /** The label the patch was centred on (null: random patch). */
  foregroundLabel: number | null;
  /** Lower corner [z, y, x] of the sampled (enlarged) patch. */
  lowerBound: Triple;
  /** null for validation batches. */
  augmentation: AugmentationParams | null;
}

export interface BatchRecord {
  batchIndex: number;
  samples: SampleRecord[];
  /** The task of every sample of the global batch (a data-parallel share has only some of them). */
  batchTasks?: number[];
}
