/**
 * Region-based nnU-Net models (dataset.json `regions_class_order`, labels as lists; nnU-Net's
 * LabelManager with has_regions): each output head is one region, its nonlinearity a sigmoid
 * (torch.sigmoid) instead of the softmax over classes, and the mask is written head by head in
 * `regions_class_order`: where head i's probability is above 0.5 the voxel gets regions_class_order[i],
 * a later head overwriting an earlier one; voxels no head claims stay 0. Outside the crop box the
 * probabilities are 0 for every head (revert_cropping_on_probabilities sets background 1 only
 * without regions). The regions themselves come from io's nnunetRegionsOf.
 */

/** sigmoid(x) in float32, in place: 1 / (1 + exp(-x)) rounded to float32 (torch.sigmoid of a float32 tensor, up to its last ulp). */
export function sigmoidInPlace(values: Float32Array): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] = 1 / (1 + Math.exp(-values[i]!));
  return values;
}

/** One head's step of LabelManager.convert_probabilities_to_segmentation: `label` where `probabilities` > 0.5. */
export function writeRegion(segmentation: Uint8Array, probabilities: Float32Array, label: number): void {
  if (probabilities.length !== segmentation.length) throw new RangeError(`writeRegion: ${probabilities.length} probabilities for ${segmentation.length} voxels`);
  for (let i = 0; i < segmentation.length; i++) if (probabilities[i]! > 0.5) segmentation[i] = label;
}

/** The mask of per-head probabilities, heads written in order (`classOrder[i]` for head i). */
export function regionsToSegmentation(probabilities: readonly Float32Array[], classOrder: readonly number[]): Uint8Array {
  if (probabilities.length !== classOrder.length) throw new RangeError(`${probabilities.length} region heads, ${classOrder.length} entries in regions_class_order`);
  const segmentation = new Uint8Array(probabilities[0]?.length ?? 0);
  probabilities.forEach((head, i) => writeRegion(segmentation, head, classOrder[i]!));
  return segmentation;
}
