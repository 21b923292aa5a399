/**
 * The batch contract between the data loader (src/data) and the trainer, and the conversion of a
 * host batch into device tensors with deep-supervision targets. The interfaces mirror the shared
 * contract structurally, so data's `createBatchLoader` result is accepted as is.
 */
import { fromArray, scope, type Device, type Tensor } from '../tensor/index.js';
import { deepSupervisionTargets } from '../nn/index.js';

/** One training batch on the host (see the data layer's contract). */
export interface HostBatch {
  /** float32 [B, C, z, y, x]. */
  image: Float32Array;
  /** int8 [B, 1, z, y, x], class ids >= 0. */
  seg: Int8Array;
  shape: [number, number, number, number, number];
  /** Task (dataset) index of each sample. */
  tasks: number[];
  caseIds: string[];
}

/** Batch k is a pure function of (seed, k), so a resumed run sees the same data. */
export interface BatchLoader {
  next(): Promise<HostBatch>;
  readonly position: number;
  seek(batchIndex: number): void;
  readonly waitSeconds: number;
  close(): Promise<void>;
}

export interface DeviceBatch {
  input: Tensor;
  /** Label maps for each deep-supervision output, full resolution first. */
  targets: Tensor[];
}

/** Image and label tensors of a host batch (created in the caller's scope). */
export function batchTensors(batch: HostBatch, device: Device, strides: readonly (readonly number[])[], numOutputs: number): DeviceBatch {
  return scope(() => {
    const [b, c, z, y, x] = batch.shape;
    if (batch.image.length !== b * c * z * y * x) throw new Error(`batch image has ${batch.image.length} values, shape [${batch.shape.join(', ')}] needs ${b * c * z * y * x}`);
    if (batch.seg.length !== b * z * y * x) throw new Error(`batch seg has ${batch.seg.length} values, shape needs ${b * z * y * x}`);
    const input = fromArray(batch.image, [b, c, z, y, x], { device });
    const label = fromArray(batch.seg, [b, 1, z, y, x], { device });
    return { input, targets: deepSupervisionTargets(label, strides, numOutputs) };
  });
}
