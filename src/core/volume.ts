/**
 * Volumes on the host. Axis convention used everywhere in lesionseg:
 * - `shape` is in ARRAY order [z, y, x] (slowest to fastest in memory), which is the byte order of a
 *   NIfTI file (x fastest) and of a C-contiguous libtorch tensor of shape [z, y, x]; it is also the
 *   order nnU-Net works in (SimpleITK), so plans read "patch 50x160x192" as z, y, x.
 * - `spacing` is in mm in the same array order [sz, sy, sx].
 * - `affine` is the NIfTI voxel-to-world (RAS+ mm) 4x4 matrix, row-major, mapping the NIfTI index
 *   (i, j, k) = (x, y, z) to world coordinates: world = affine * [i, j, k, 1].
 */

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array;

export type Shape3 = [number, number, number];
/** Row-major 4x4 matrix. */
export type Affine = [
  [number, number, number, number],
  [number, number, number, number],
  [number, number, number, number],
  [number, number, number, number],
];

export interface Volume<T extends TypedArray = TypedArray> {
  data: T;
  /** [z, y, x]; data.length === z * y * x. */
  shape: Shape3;
  /** mm, [sz, sy, sx]. */
  spacing: Shape3;
  /** NIfTI voxel (x, y, z) -> world RAS mm. */
  affine: Affine;
}

export function voxelCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function identityAffine(spacingXyz: readonly [number, number, number] = [1, 1, 1]): Affine {
  return [
    [spacingXyz[0], 0, 0, 0],
    [0, spacingXyz[1], 0, 0],
    [0, 0, spacingXyz[2], 0],
    [0, 0, 0, 1],
  ];
}
