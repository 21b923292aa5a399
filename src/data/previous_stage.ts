/**
 * nnU-Net's cascade input (3d_cascade_fullres), shared by training (data/sampling) and prediction
 * (infer/configurations.ts): the previous stage's label map on the case's preprocessed grid becomes
 * one channel per foreground label after the image channels (nnU-Net's convert_labelmap_to_one_hot
 * in prediction, MoveSegAsOneHotToDataTransform in training; -1 and background give 0). A cascade
 * run keeps the previous stage's map of each training case as `<dir>/<case>.npy` (int8 [1, z, y, x]).
 */
import * as path from 'node:path';

/** Extra input channels of a cascade stage: one per foreground label of its `numClasses` (incl. background). */
export function previousStageChannelCount(previousStage: string | undefined, numClasses: number): number {
  return previousStage === undefined ? 0 : numClasses - 1;
}

/**
 * `data` [C, z, y, x] followed by the one-hot channels of `segmentation` [z, y, x] (the previous
 * stage's labels on the same grid) for labels 1 .. numClasses - 1, as float32 [C + K - 1, z, y, x].
 */
export function withPreviousStage(data: Float32Array, shape: readonly number[], segmentation: Int8Array, numClasses: number): { data: Float32Array; shape: [number, number, number, number] } {
  const voxels = shape[1]! * shape[2]! * shape[3]!;
  if (segmentation.length !== voxels || data.length !== shape[0]! * voxels) {
    throw new RangeError(`the previous stage's segmentation has ${segmentation.length} voxels, the case [${shape.join(', ')}]`);
  }
  const extra = numClasses - 1;
  const out = new Float32Array(data.length + extra * voxels);
  out.set(data);
  for (let i = 0; i < voxels; i++) {
    const label = segmentation[i]!;
    if (label >= 1 && label <= extra) out[data.length + (label - 1) * voxels + i] = 1;
  }
  return { data: out, shape: [shape[0]! + extra, shape[1]!, shape[2]!, shape[3]!] };
}

/** The previous stage's label map of `caseId` in a cascade run's folder of them. */
export function previousStageFile(dir: string, caseId: string): string {
  return path.join(dir, `${caseId}.npy`);
}
