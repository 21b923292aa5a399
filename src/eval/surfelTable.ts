/**
 * Surfel areas per 2x2x2 neighbourhood code, for a given voxel spacing: what NSD and HD95 weigh
 * each surface point with.
 *
 * The triangles come from surfelNormals.ts, which test/fixtures/eval/make_surfel_table.py derives by
 * triangulating each of the 256 cell configurations with marching cubes (edge-midpoint vertices,
 * a cell with more than 4 foreground voxels triangulated as its complement). Each triangle is kept
 * as its area vector at unit spacing. These areas reproduce the surface-distance convention that
 * the published NSD numbers use (checked against test/fixtures/eval/surface-dice-golden.json).
 */
import { SURFEL_NORMALS_IN_EIGHTHS } from './surfelNormals.js';

/** Number of distinct 2x2x2 neighbourhood codes. */
export const NEIGHBOUR_CODE_COUNT = 256;

/**
 * Surface area in mm^2 of the surfels of each neighbourhood code at the given spacing [sz, sy, sx].
 * An area vector (n0, n1, n2) at unit spacing scales to (n0*sy*sx, n1*sz*sx, n2*sz*sy): each
 * component is the area of the triangle's projection on a plane perpendicular to that axis. A
 * code's area is the sum of its triangles' areas (the lengths, not the length of their sum).
 */
export function surfelAreaTable(spacingMm: readonly [number, number, number]): Float64Array {
  const [s0, s1, s2] = spacingMm;
  const areas = new Float64Array(NEIGHBOUR_CODE_COUNT);
  for (let code = 0; code < NEIGHBOUR_CODE_COUNT; code++) {
    const flat = SURFEL_NORMALS_IN_EIGHTHS[code]!;
    let sum = 0;
    for (let k = 0; k < flat.length; k += 3) {
      const a = (flat[k]! / 8) * s1 * s2;
      const b = (flat[k + 1]! / 8) * s0 * s2;
      const c = (flat[k + 2]! / 8) * s0 * s1;
      sum += Math.sqrt(a * a + b * b + c * c);
    }
    areas[code] = sum;
  }
  return areas;
}
