/**
 * The batch contract between the data loader (src/data: HostBatch, BatchLoader; batch k is a pure
 * function of the seed and k) and the trainer, and the conversion of a host batch into device
 * tensors with deep-supervision targets.
 */
import { fromArray, scope, type Device, type Tensor } from '../tensor/index.js';
import { deepSupervisionTargets } from '../nn/index.js';
import type { HostBatch } from '../data/index.js';

export type { HostBatch, BatchLoader } from '../data/index.js';

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
