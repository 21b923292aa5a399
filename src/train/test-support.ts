/**
 * Test helpers for the trainer: an in-memory BatchLoader whose batch k is a pure function of
 * (seed, k) (bright spheres labelled 1 in noise), and a tiny valid plan (a 2-stage U-Net on 8x16x16
 * patches) so that trainer tests run in seconds without a dataset.
 */
import { CPU, Rng } from '../core/index.js';
import { DATA_RESAMPLING, SEGMENTATION_RESAMPLING, type Plan } from '../data/index.js';
import type { BatchLoader, HostBatch } from './batches.js';
import { rankBatchShare } from '../data/index.js';
import type { DataParallel } from './distributed.js';
import { runTraining, type RunMode, type TrainingRunResult } from './run.js';
import { SCRATCH } from './strategy.js';
import type { TrainerHook } from './trainer.js';

export const TINY_PATCH: [number, number, number] = [8, 16, 16];

/** Batch `index` of an endless deterministic stream of sphere patches. */
export function sphereHostBatch(seed: number, index: number, batchSize = 2, patch: readonly number[] = TINY_PATCH): HostBatch {
  const rng = new Rng(seed).fork(index);
  const [z, y, x] = patch as [number, number, number];
  const voxels = z * y * x;
  const image = new Float32Array(batchSize * voxels);
  const seg = new Int8Array(batchSize * voxels);
  for (let b = 0; b < batchSize; b++) {
    const centre = [rng.uniform(2, z - 2), rng.uniform(4, y - 4), rng.uniform(4, x - 4)];
    const radius = rng.uniform(2.5, 5);
    for (let k = 0; k < z; k++) for (let j = 0; j < y; j++) for (let i = 0; i < x; i++) {
      const at = b * voxels + (k * y + j) * x + i;
      const inside = (2 * (k - centre[0]!)) ** 2 + (j - centre[1]!) ** 2 + (i - centre[2]!) ** 2 < radius * radius;
      seg[at] = inside ? 1 : 0;
      image[at] = (inside ? 1 : 0) + 0.7 * rng.normal();
    }
  }
  return { image, seg, shape: [batchSize, 1, z, y, x], tasks: Array.from({ length: batchSize }, () => 0), caseIds: Array.from({ length: batchSize }, (_, b) => `sphere_${index}_${b}`) };
}

/** The contract's loader over `sphereHostBatch`; counts the batches it made (tests check seeking). */
export class MemoryBatchLoader implements BatchLoader {
  private next_ = 0;
  made = 0;
  closed = false;
  constructor(private readonly seed: number, protected readonly batchSize = 2) {}
  get position(): number {
    return this.next_;
  }
  get waitSeconds(): number {
    return 0;
  }
  seek(batchIndex: number): void {
    this.next_ = batchIndex;
  }
  async next(): Promise<HostBatch> {
    this.made++;
    return sphereHostBatch(this.seed, this.next_++, this.batchSize);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * The samples [first, end) of every batch of `MemoryBatchLoader(seed, batchSize)` that rank
 * `rank` of `worldSize` makes, split as the data layer splits a batch (rankBatchShare): together
 * the ranks see exactly the one-process batches.
 */
export class ShardedSphereLoader extends MemoryBatchLoader {
  constructor(seed: number, batchSize: number, private readonly rank: number, private readonly worldSize: number) {
    super(seed, batchSize);
  }
  override async next(): Promise<HostBatch> {
    const whole = await super.next();
    const [first, end] = rankBatchShare(this.batchSize, this.worldSize, this.rank);
    const voxels = whole.seg.length / this.batchSize;
    const [, c, z, y, x] = whole.shape;
    return {
      image: whole.image.slice(first * c * voxels, end * c * voxels),
      seg: whole.seg.slice(first * voxels, end * voxels),
      shape: [end - first, c, z, y, x],
      tasks: whole.tasks.slice(first, end),
      caseIds: whole.caseIds.slice(first, end),
    };
  }
}

/** A valid plan for one single-channel dataset `Spheres` with labels background/lesion and a 2-stage U-Net. */
export function tinyPlan(): Plan {
  return {
    version: 1,
    preset: 'tiny',
    datasets: [{ name: 'Spheres', labels: { background: 0, lesion: 1 }, channelNames: { '0': 'CT' }, numTraining: 6, fileEnding: '.nii.gz' }],
    fingerprint: {
      numCases: 6,
      medianSpacing: [2, 1, 1],
      medianShapeAfterCrop: [16, 32, 32],
      medianRelativeSizeAfterCropping: 1,
      foregroundIntensityPropertiesPerChannel: [{ mean: 0, median: 0, std: 1, min: -3, max: 3, percentile_00_5: -2.5, percentile_99_5: 2.5 }],
      intensitySampling: { samplesPerCase: 10, seed: 1234, generator: 'test' },
      cases: [],
    },
    configuration: {
      patchSize: TINY_PATCH,
      batchSize: 2,
      targetSpacing: [2, 1, 1],
      medianShape: [16, 32, 32],
      transpose: { forward: [0, 1, 2], backward: [0, 1, 2] },
      normalization: [{ channel: 'CT', scheme: 'zscore', useMaskForNorm: false }],
      resampling: { data: { ...DATA_RESAMPLING }, segmentation: { ...SEGMENTATION_RESAMPLING } },
      network: {
        architecture: 'PlainConvUNet',
        nStages: 2,
        featuresPerStage: [4, 8],
        kernelSizes: [[1, 3, 3], [3, 3, 3]],
        strides: [[1, 1, 1], [1, 2, 2]],
        nConvPerStage: 2,
        nConvPerStageDecoder: 2,
        convBias: true,
        norm: { kind: 'instance', eps: 1e-5, affine: true },
        nonlin: { kind: 'leaky_relu', negativeSlope: 0.01 },
      },
      deepSupervision: true,
      batchDice: true,
      vramEstimate: 0,
    },
  };
}

export interface TinyRunOptions {
  runDir: string;
  mode: RunMode;
  numEpochs?: number;
  seed?: number;
  hooks?: TrainerHook[];
  /** The plan's (global) batch size (default 2). */
  batchSize?: number;
  /** One rank of a data-parallel run: its loaders make its share of every batch. */
  dataParallel?: DataParallel;
}

/** A whole scratch run on the tiny plan with in-memory spheres: 3 iterations and 2 validation batches per epoch, 1 thread. */
export function runTinyTraining(options: TinyRunOptions): Promise<TrainingRunResult> {
  const seed = options.seed ?? 11;
  const batchSize = options.batchSize ?? 2;
  const plan = tinyPlan();
  plan.configuration.batchSize = batchSize;
  const dp = options.dataParallel;
  const loader = (loaderSeed: number): BatchLoader => (dp === undefined ? new MemoryBatchLoader(loaderSeed, batchSize) : new ShardedSphereLoader(loaderSeed, batchSize, dp.rank, dp.worldSize));
  return runTraining({
    ...(dp !== undefined ? { dataParallel: dp } : {}),
    runDir: options.runDir,
    mode: options.mode,
    plan,
    datasetName: 'Spheres',
    strategy: SCRATCH,
    pretrained: null,
    numEpochs: options.numEpochs ?? 5,
    iterationsPerEpoch: 3,
    validationIterations: 2,
    seed,
    device: CPU,
    precision: 'fp32',
    threads: 1,
    data: { split: 'in-memory spheres', fold: 0 },
    createLoaders: () => ({ train: loader(seed), validation: loader(seed + 1000) }),
    hooks: options.hooks ?? [],
  });
}
