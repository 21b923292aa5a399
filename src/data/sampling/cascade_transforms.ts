/**
 * nnU-Net's cascade augmentations (nnUNetTrainer.get_training_transforms with is_cascaded;
 * batchgeneratorsv2 transforms/nnunet/random_binary_operator.py and remove_connected_components.py,
 * read, not translated), applied to the previous stage's one-hot channels after the image channels
 * (MoveSegAsOneHotToDataTransform, data's withPreviousStage), so that the cascade learns not to
 * trust the low-resolution mask blindly:
 * - random binary operator, apply probability 0.4: the K - 1 channels in random order, each with
 *   probability 0.5: dilation, erosion, closing or opening (uniform) with skimage's `ball(r)`,
 *   r ~ U(1, 8) (a float; `disk(r)` for a one-slice patch; ballRows). As nnU-Net's FFT
 *   convolution with padding 'same', the structuring element of n points covers the offsets
 *   -floor((n - 1) / 2) .. ceil((n - 1) / 2), and voxels outside the patch count as background for
 *   the dilation (erosion = not dilate(not x), opening = dilate(erode), closing = erode(dilate)).
 *   Voxels a channel gained are cleared in the other one-hot channels.
 * - remove a random connected component, apply probability 0.2: channels in random order, each with
 *   probability 0.5: one of its components (26-connected, as skimage's label with full
 *   connectivity, numbered in raster order) smaller than 15 % of the patch, chosen uniformly, set to
 *   0 (fill_with_other_class_p 0).
 * Parameters are drawn as plain data (the component as a fraction `pick`, as the components are
 * only known on the patch) and applied as a pure function.
 */
import type { Rng } from '../../core/index.js';
import type { Triple } from '../planning_topology.js';

export const CASCADE_AUGMENTATION = {
  binaryOperator: { probability: 0.4, perLabel: 0.5, radius: [1, 8] as const },
  removeComponent: { probability: 0.2, perLabel: 0.5, maxFraction: 0.15 },
} as const;

export const BINARY_OPERATORS = ['dilation', 'erosion', 'closing', 'opening'] as const;
export type BinaryOperator = (typeof BINARY_OPERATORS)[number];

export interface CascadeAugmentationParams {
  /** The previous stage's foreground labels: the one-hot channels at the end of the image. */
  labels: number;
  /** Per chosen one-hot channel (0: label 1), in the order applied; null: not this time. */
  binaryOperator: { channel: number; operator: BinaryOperator; radius: number }[] | null;
  /** Per chosen channel: the component is the floor(pick * n)-th of its n small ones. */
  removeComponent: { channel: number; pick: number }[] | null;
}

/** The channels in random order, each kept with probability p. */
function chosenChannels(rng: Rng, count: number, p: number): number[] {
  return rng.shuffled(Array.from({ length: count }, (_, c) => c)).filter(() => rng.float() < p);
}

export function sampleCascadeAugmentation(rng: Rng, labels: number): CascadeAugmentationParams {
  const { binaryOperator: op, removeComponent: rc } = CASCADE_AUGMENTATION;
  const binaryOperator = rng.float() < op.probability
    ? chosenChannels(rng, labels, op.perLabel).map((channel) => ({ channel, operator: BINARY_OPERATORS[rng.int(0, BINARY_OPERATORS.length)]!, radius: rng.uniform(op.radius[0], op.radius[1]) }))
    : null;
  const removeComponent = rng.float() < rc.probability ? chosenChannels(rng, labels, rc.perLabel).map((channel) => ({ channel, pick: rng.float() })) : null;
  return { labels, binaryOperator, removeComponent };
}

/** A structuring element as rows: offsets (dz, dy) and the x offsets [x0, x1] it covers there. */
export type StructuringRows = { dz: number; dy: number; x0: number; x1: number }[];

/**
 * skimage's ball(radius) (or disk(radius) when `planar`) as offset rows, aligned as a 'same'
 * convolution aligns it. ball: floor(2r + 1) points per axis spread evenly over [-r, r] (numpy's
 * ogrid with a complex step); disk: the points of np.arange(-r, r + 1), -r + j (not symmetric for
 * a non-integer r); kept where the squared norm is <= r^2, summed x^2 + y^2 (+ z^2) in that order.
 */
export function ballRows(radius: number, planar: boolean): StructuringRows {
  const n = planar ? Math.ceil(2 * radius + 1) : Math.floor(2 * radius + 1);
  const step = planar ? 1 : n === 1 ? 0 : (radius - -radius) / (n - 1);
  const coordinate = (j: number): number => j * step + -radius;
  const before = Math.floor((n - 1) / 2);
  const rows: StructuringRows = [];
  for (let jz = 0; jz < (planar ? 1 : n); jz++) {
    for (let jy = 0; jy < n; jy++) {
      let x0 = -1;
      let x1 = -1;
      for (let jx = 0; jx < n; jx++) {
        const inPlane = coordinate(jx) ** 2 + coordinate(jy) ** 2;
        const s = planar ? inPlane : inPlane + coordinate(jz) ** 2;
        if (s <= radius * radius) {
          if (x0 < 0) x0 = jx;
          x1 = jx;
        }
      }
      if (x0 >= 0) rows.push({ dz: planar ? 0 : jz - before, dy: jy - before, x0: x0 - before, x1: x1 - before });
    }
  }
  return rows;
}

/** Binary dilation of `mask` [z, y, x] by `rows`: out[p] = 1 iff some covered offset o has mask[p + o] = 1 (outside: 0). */
export function dilate(mask: Uint8Array, shape: Triple, rows: StructuringRows): Uint8Array {
  const [Z, Y, X] = shape;
  // Prefix counts per x row: the covered span of a row is one subtraction.
  const prefix = new Int32Array(Z * Y * (X + 1));
  for (let r = 0; r < Z * Y; r++) {
    for (let x = 0; x < X; x++) prefix[r * (X + 1) + x + 1] = prefix[r * (X + 1) + x]! + mask[r * X + x]!;
  }
  const out = new Uint8Array(mask.length);
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      const target = (z * Y + y) * X;
      for (const row of rows) {
        const zz = z + row.dz;
        const yy = y + row.dy;
        if (zz < 0 || zz >= Z || yy < 0 || yy >= Y) continue;
        const base = (zz * Y + yy) * (X + 1);
        if (prefix[base + X] === 0) continue;
        for (let x = 0; x < X; x++) {
          if (out[target + x] === 1) continue;
          const lo = Math.max(0, x + row.x0);
          const hi = Math.min(X - 1, x + row.x1);
          if (lo <= hi && prefix[base + hi + 1]! - prefix[base + lo]! > 0) out[target + x] = 1;
        }
      }
    }
  }
  return out;
}

function complement(mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] === 1 ? 0 : 1;
  return out;
}

/** nnU-Net's four operators in terms of the dilation (erosion keeps voxels at the patch border: outside counts as foreground there). */
export function binaryOperator(operator: BinaryOperator, mask: Uint8Array, shape: Triple, rows: StructuringRows): Uint8Array {
  const erode = (m: Uint8Array): Uint8Array => complement(dilate(complement(m), shape, rows));
  switch (operator) {
    case 'dilation':
      return dilate(mask, shape, rows);
    case 'erosion':
      return erode(mask);
    case 'opening':
      return dilate(erode(mask), shape, rows);
    case 'closing':
      return erode(dilate(mask, shape, rows));
  }
}

/** 26-connected components of `mask`, numbered 1, 2, ... in raster order of their first voxel; sizes[k - 1] is component k's. */
export function connectedComponents(mask: Uint8Array, shape: Triple): { labels: Int32Array; sizes: number[] } {
  const [Z, Y, X] = shape;
  const labels = new Int32Array(mask.length);
  const sizes: number[] = [];
  const stack: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] !== 1 || labels[start] !== 0) continue;
    const id = sizes.length + 1;
    let size = 0;
    labels[start] = id;
    stack.push(start);
    while (stack.length > 0) {
      const i = stack.pop()!;
      size++;
      const z = Math.floor(i / (Y * X));
      const y = Math.floor(i / X) % Y;
      const x = i % X;
      for (let dz = -1; dz <= 1; dz++) {
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const zz = z + dz;
            const yy = y + dy;
            const xx = x + dx;
            if (zz < 0 || zz >= Z || yy < 0 || yy >= Y || xx < 0 || xx >= X) continue;
            const j = (zz * Y + yy) * X + xx;
            if (mask[j] === 1 && labels[j] === 0) {
              labels[j] = id;
              stack.push(j);
            }
          }
        }
      }
    }
    sizes.push(size);
  }
  return { labels, sizes };
}

/**
 * The drawn cascade augmentations applied to a copy of `image` [channels, z, y, x], whose last
 * `params.labels` channels are the previous stage's one-hot map.
 */
export function applyCascadeAugmentation(image: Float32Array, channels: number, shape: Triple, params: CascadeAugmentationParams): Float32Array {
  const labels = params.labels;
  const voxels = shape[0] * shape[1] * shape[2];
  const out = image.slice();
  const first = channels - labels;
  const view = (c: number): Float32Array => out.subarray((first + c) * voxels, (first + c + 1) * voxels);
  const maskOf = (c: number): Uint8Array => {
    const m = new Uint8Array(voxels);
    const v = view(c);
    for (let i = 0; i < voxels; i++) m[i] = v[i] !== 0 ? 1 : 0;
    return m;
  };
  for (const step of params.binaryOperator ?? []) {
    const before = maskOf(step.channel);
    const after = binaryOperator(step.operator, before, shape, ballRows(step.radius, shape[0] === 1));
    for (let other = 0; other < labels; other++) {
      if (other === step.channel) continue;
      const v = view(other);
      for (let i = 0; i < voxels; i++) if (after[i] === 1 && before[i] === 0) v[i] = 0;
    }
    const v = view(step.channel);
    for (let i = 0; i < voxels; i++) v[i] = after[i]!;
  }
  for (const step of params.removeComponent ?? []) {
    const mask = maskOf(step.channel);
    if (!mask.includes(1)) continue;
    const { labels: components, sizes } = connectedComponents(mask, shape);
    const small = sizes.flatMap((size, k) => (size < voxels * CASCADE_AUGMENTATION.removeComponent.maxFraction ? [k + 1] : []));
    if (small.length === 0) continue;
    const removed = small[Math.min(small.length - 1, Math.floor(step.pick * small.length))]!;
    const v = view(step.channel);
    for (let i = 0; i < voxels; i++) if (components[i] === removed) v[i] = 0;
  }
  return out;
}
