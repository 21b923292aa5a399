/**
 * Drawing and rendering one batch, nnU-Net's nnUNetDataLoader.generate_train_batch in two halves:
 * `drawBatch` makes every random choice for batch k from `new Rng(seed).fork(k)` into a plain-JSON
 * BatchRecord (dataset uniform, then case uniform, with replacement; sample j forced foreground iff
 * j >= round(B (1 - p)); patch position; augmentation parameters), and `renderBatch` turns a record
 * into the HostBatch deterministically. So batch k is the same in every thread, after a seek, and
 * when replayed from its record.
 *
 * Data-parallel ranks (LoaderOptions.shard) split every global batch as nnU-Net's DDP does
 * (nnUNetTrainer._set_batch_size_and_oversample: per-rank sizes differ by at most one, the first
 * ranks take the extra samples) and keep the global batch's foreground share: a rank's sample j of
 * the global batch is forced foreground by the same rule j >= round(B (1 - p)) as in one process.
 * Each rank draws the (cheap) dataset and case choice of every sample, so the streams stay
 * aligned, and then only its own samples, each from its own stream `fork(k).fork('sample j')`:
 * the ranks' samples never repeat one another, and together they are exactly the one-process batch.
 */
import { InputError, Rng } from '../../core/index.js';
import { applyAugmentation, finalizeSample, sampleAugmentation } from './augment_pipeline.js';
import type { AugmentMeta, PatchSample } from './augment_types.js';
import type { Triple } from '../planning_topology.js';
import type { BatchRecord, BatchSpec, HostBatch, LoaderOptions, SampleRecord } from './batch_types.js';
import type { CaseStore } from './case_store.js';
import { choosePatch, cropAndPad, isForcedForeground } from './patch_sampler.js';
import { augmentationGeometry } from './patch_size.js';
import { centreCropCorner, isPlainCrop } from './spatial_transform.js';

/** Samples [first, end) of a global batch of `batchSize` that rank `rank` of `worldSize` makes. */
export function rankBatchShare(batchSize: number, worldSize: number, rank: number): [number, number] {
  const base = Math.floor(batchSize / worldSize);
  const sizeOf = (r: number): number => base + (base * worldSize + r < batchSize ? 1 : 0);
  let first = 0;
  for (let r = 0; r < rank; r++) first += sizeOf(r);
  return [first, first + sizeOf(rank)];
}

/** Validate the loader options and turn them into the spec every thread works from. */
export function batchSpecFromOptions(options: LoaderOptions): BatchSpec {
  const { preprocessedDirs, caseIds, plan } = options;
  const problems: string[] = [];
  if (preprocessedDirs.length === 0) problems.push('preprocessedDirs is empty');
  if (caseIds.length !== preprocessedDirs.length) {
    problems.push(`caseIds has ${caseIds.length} list(s) for ${preprocessedDirs.length} preprocessed folder(s)`);
  }
  caseIds.forEach((ids, task) => {
    if (ids.length === 0) problems.push(`caseIds[${task}] (${preprocessedDirs[task]}) is empty`);
  });
  if (!(options.oversampleForeground >= 0 && options.oversampleForeground <= 1)) {
    problems.push(`oversampleForeground must be in [0, 1], got ${options.oversampleForeground}`);
  }
  if (!Number.isInteger(options.workers) || options.workers < 0) problems.push(`workers must be an integer >= 0, got ${options.workers}`);
  const ignoreLabels = options.ignoreLabels ?? preprocessedDirs.map(() => null);
  if (ignoreLabels.length !== preprocessedDirs.length) {
    problems.push(`ignoreLabels has ${ignoreLabels.length} entries for ${preprocessedDirs.length} preprocessed folder(s)`);
  }
  if (!ignoreLabels.every((label) => label === null || (Number.isInteger(label) && label > 0))) {
    problems.push(`ignoreLabels must be positive integers or null, got ${JSON.stringify(ignoreLabels)}`);
  }
  if (!Number.isFinite(options.seed)) problems.push(`seed must be a finite number, got ${options.seed}`);
  const shard = options.shard ?? { rank: 0, worldSize: 1 };
  if (!(Number.isInteger(shard.worldSize) && shard.worldSize >= 1 && Number.isInteger(shard.rank) && shard.rank >= 0 && shard.rank < shard.worldSize)) {
    problems.push(`shard must be a rank in [0, worldSize), got ${JSON.stringify(options.shard)}`);
  } else if (plan.configuration.batchSize < shard.worldSize) {
    problems.push(`the plan's batch size ${plan.configuration.batchSize} is smaller than the ${shard.worldSize} ranks: every rank needs a sample`);
  }
  const previousStage = options.previousStage ?? null;
  if (previousStage !== null && (preprocessedDirs.length !== 1 || !(Number.isInteger(previousStage.labels) && previousStage.labels >= 1))) {
    problems.push(`a previous stage needs one preprocessed folder and at least one foreground label, got ${preprocessedDirs.length} folder(s) and ${previousStage.labels} label(s)`);
  }
  if (problems.length > 0) throw new InputError(`invalid batch loader options: ${problems.join('; ')}`, { code: 'bad-arguments' });
  const configuration = plan.configuration;
  const geometry = augmentationGeometry(configuration.patchSize, options.augment, configuration.spatialDims ?? 3);
  return {
    preprocessedDirs: [...preprocessedDirs],
    caseIds: caseIds.map((ids) => [...ids]),
    batchSize: configuration.batchSize,
    sampleRange: rankBatchShare(configuration.batchSize, shard.worldSize, shard.rank),
    channels: configuration.normalization.length,
    finalPatchSize: [...configuration.patchSize],
    sampledPatchSize: geometry.sampledPatchSize,
    dummy2d: geometry.dummy2d,
    rotationRangeRad: [...geometry.rotationRangeRad],
    mirrorAxes: geometry.mirrorAxes,
    ...(geometry.spatialDims === 2 ? { spatialDims: 2 as const } : {}),
    useMaskForNorm: configuration.normalization.map((channel) => channel.useMaskForNorm),
    seed: options.seed,
    augment: options.augment,
    oversampleForeground: options.oversampleForeground,
    ignoreLabels: [...ignoreLabels],
    device: options.device ?? { type: 'cpu' },
    previousStage: previousStage === null ? null : { ...previousStage },
  };
}

/** The channels of a batch's images: the plan's, and a cascade's one-hot previous stage. */
export function batchChannels(spec: BatchSpec): number {
  return spec.channels + (spec.previousStage?.labels ?? 0);
}

export function augmentMeta(spec: BatchSpec): AugmentMeta {
  return {
    channels: spec.channels,
    sampledPatchSize: spec.sampledPatchSize,
    finalPatchSize: spec.finalPatchSize,
    dummy2d: spec.dummy2d,
    rotationRangeRad: spec.rotationRangeRad,
    mirrorAxes: spec.mirrorAxes,
    ...(spec.spatialDims === 2 ? { spatialDims: 2 as const } : {}),
    useMaskForNorm: spec.useMaskForNorm,
    previousLabels: spec.previousStage?.labels ?? 0,
  };
}

/** Every random choice of batch `batchIndex`. */
export function drawBatch(spec: BatchSpec, batchIndex: number, store: CaseStore): BatchRecord {
  const rng = new Rng(spec.seed).fork(batchIndex);
  const picks = Array.from({ length: spec.batchSize }, () => {
    const task = rng.int(0, spec.caseIds.length);
    return { task, caseId: rng.choice(spec.caseIds[task]!) };
  });
  const meta = augmentMeta(spec);
  const [first, end] = spec.sampleRange;
  const samples = picks.slice(first, end).map(({ task, caseId }, offset): SampleRecord => {
    const j = first + offset;
    const sampleRng = rng.fork(`sample ${j}`);
    const loaded = store.get(spec.preprocessedDirs[task]!, caseId, spec.previousStage?.dir ?? null);
    const forcedForeground = isForcedForeground(j, spec.batchSize, spec.oversampleForeground);
    const choice = choosePatch(sampleRng, loaded.shape, spec.sampledPatchSize, spec.finalPatchSize, forcedForeground, loaded.classLocations, spec.ignoreLabels[task] ?? null);
    return {
      task,
      caseId,
      forcedForeground,
      foregroundLabel: choice.foregroundLabel,
      lowerBound: choice.lowerBound,
      augmentation: spec.augment ? sampleAugmentation(sampleRng, meta) : null,
    };
  });
  const sharded = first !== 0 || end !== spec.batchSize;
  return { batchIndex, samples, ...(sharded ? { batchTasks: picks.map((pick) => pick.task) } : {}) };
}

/**
 * The cropped, not yet augmented sample of one record (image padded 0, labels -1): the sampled
 * patch, or with `centreTo` only its centre crop of that shape, read from the case directly (the
 * same voxels as cropping the sampled patch and then its centre, one copy fewer); written into
 * `into` when given (arrays of the crop's size), else into new arrays.
 */
export function cropSample(spec: BatchSpec, record: SampleRecord, store: CaseStore, centreTo?: Triple, into?: { image: Float32Array; seg: Int8Array }): PatchSample {
  const dir = spec.preprocessedDirs[record.task]!;
  const loaded = store.get(dir, record.caseId, spec.previousStage?.dir ?? null);
  if (loaded.channels !== spec.channels) {
    throw new InputError(`case '${record.caseId}' has ${loaded.channels} channel(s), the plan has ${spec.channels}`, { file: dir, code: 'channel-mismatch' });
  }
  const patch = centreTo ?? spec.sampledPatchSize;
  const corner = centreCropCorner(spec.sampledPatchSize, patch);
  const lowerBound = record.lowerBound.map((lb, axis) => lb + corner[axis]!) as Triple;
  return {
    image: cropAndPad(loaded.data, loaded.channels, loaded.shape, lowerBound, patch, 0, into?.image),
    seg: cropAndPad(loaded.seg, 1, loaded.shape, lowerBound, patch, -1, into?.seg),
    ...(loaded.previous !== undefined ? { previous: cropAndPad(loaded.previous, 1, loaded.shape, lowerBound, patch, -1) } : {}),
    channels: loaded.channels,
    shape: [...patch],
  };
}

/**
 * One sampled-patch crop per loader thread (keyed by its case store), reused by every sample the
 * spatial step resamples: that step only reads it, and the sample is done (copied into its batch
 * slot) before the next one is cropped. Saves a fresh 12 MB allocation per such sample at the paper patch.
 */
const sampledCrops = new WeakMap<CaseStore, { image: Float32Array; seg: Int8Array }>();

function sampledCropBuffers(store: CaseStore, channels: number, patch: Triple): { image: Float32Array; seg: Int8Array } {
  const voxels = patch[0] * patch[1] * patch[2];
  let buffers = sampledCrops.get(store);
  if (buffers === undefined || buffers.seg.length !== voxels || buffers.image.length !== channels * voxels) {
    buffers = { image: new Float32Array(channels * voxels), seg: new Int8Array(voxels) };
    sampledCrops.set(store, buffers);
  }
  return buffers;
}

/** A batch's image and label arrays, handed back by the consumer to be filled again (BatchLoader.release). */
export interface BatchBuffers {
  image: Float32Array;
  seg: Int8Array;
}

/** Whether `buffers` have the sizes of a batch of `samples` samples of the spec (else they are not reused). */
export function fitsBatch(spec: BatchSpec, samples: number, buffers: BatchBuffers): boolean {
  const voxels = spec.finalPatchSize[0] * spec.finalPatchSize[1] * spec.finalPatchSize[2];
  return buffers.image.length === samples * batchChannels(spec) * voxels && buffers.seg.length === samples * voxels;
}

/**
 * The batch a record describes: crop, augment (or only map -1 -> 0), stack. The crop is the
 * loader's own, so every step may overwrite it (ApplyContext.reuseInput); a sample whose crop
 * already has the final shape (a plain centre crop, a validation patch) without a cascade's extra
 * channels is cropped straight into its slot of the batch and finished there; a sampled patch goes
 * into the thread's reused crop buffers, and the spatial step resamples it straight into its slot
 * (ApplyContext.output). The batch is written into `into` when given and of the batch's sizes
 * (every value of it is overwritten), else into new arrays.
 */
export function renderBatch(spec: BatchSpec, record: BatchRecord, store: CaseStore, into?: BatchBuffers): HostBatch {
  const [z, y, x] = spec.finalPatchSize;
  const voxels = z * y * x;
  const batchSize = record.samples.length;
  const channels = batchChannels(spec);
  const reused = into !== undefined && fitsBatch(spec, batchSize, into);
  const image = reused ? into.image : new Float32Array(batchSize * channels * voxels);
  const seg = reused ? into.seg : new Int8Array(batchSize * voxels);
  record.samples.forEach((sampleRecord, j) => {
    const spatial = sampleRecord.augmentation?.spatial;
    // A spatial step that is a plain centre crop reads only the final patch from the case.
    const centreTo = spatial !== undefined && isPlainCrop(spatial) ? spatial.outputShape : undefined;
    const cropShape = centreTo ?? spec.sampledPatchSize;
    const slot = { image: image.subarray(j * channels * voxels, (j + 1) * channels * voxels), seg: seg.subarray(j * voxels, (j + 1) * voxels) };
    const direct = spec.previousStage === null && cropShape.join() === spec.finalPatchSize.join();
    const cropInto = direct ? slot : centreTo === undefined ? sampledCropBuffers(store, spec.channels, spec.sampledPatchSize) : undefined;
    const cropped = cropSample(spec, sampleRecord, store, centreTo, cropInto);
    // A cascade's slot also holds the previous stage's channels, which only the last step adds.
    const context = { device: spec.device, reuseInput: true, ...(spec.previousStage === null ? { output: slot } : {}) };
    const done = sampleRecord.augmentation === null
      ? finalizeSample(cropped, [], spec.previousStage?.labels ?? 0, true)
      : applyAugmentation(cropped, sampleRecord.augmentation, context);
    if (done.shape.join() !== spec.finalPatchSize.join()) {
      throw new RangeError(`augmented patch has shape [${done.shape.join(', ')}], expected [${spec.finalPatchSize.join(', ')}]`);
    }
    if (done.image !== slot.image) slot.image.set(done.image);
    if (done.seg !== slot.seg) slot.seg.set(done.seg);
  });
  return {
    image,
    seg,
    shape: [batchSize, channels, z, y, x],
    tasks: record.samples.map((s) => s.task),
    ...(record.batchTasks !== undefined ? { batchTasks: [...record.batchTasks] } : {}),
    caseIds: record.samples.map((s) => s.caseId),
  };
}

/** Batch `batchIndex` of the spec (draw + render), into `into` when given (see renderBatch). */
export function makeBatch(spec: BatchSpec, batchIndex: number, store: CaseStore, into?: BatchBuffers): { batch: HostBatch; record: BatchRecord } {
  const record = drawBatch(spec, batchIndex, store);
  return { batch: renderBatch(spec, record, store, into), record };
}
