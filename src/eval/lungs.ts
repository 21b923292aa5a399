/**
 * Lung involvement: how much of each lung an infection mask covers (COVID-19-CT-Seg convention:
 * lung mask label 1 = left lung, 2 = right lung; infection mask non-zero = infection).
 *
 * Percentages are of lung volume: infection voxels inside the left lung / left lung voxels * 100,
 * and so on; NaN when that lung is empty in the mask. Infection outside both lungs is reported
 * separately (it is not part of any percentage).
 */
import { InputError } from '../core/index.js';
import { voxelVolumeMl, type BinaryMask } from './mask.js';

export interface LungInvolvement {
  infectionVolumeMl: number;
  leftLungVolumeMl: number;
  rightLungVolumeMl: number;
  infectionInLeftMl: number;
  infectionInRightMl: number;
  infectionOutsideLungsMl: number;
  percentLeftInvolved: number;
  percentRightInvolved: number;
  percentBothInvolved: number;
}

export const LUNG_LABELS = { left: 1, right: 2 } as const;

export function lungInvolvement(
  lungLabels: { data: ArrayLike<number>; shape: readonly [number, number, number] },
  infection: BinaryMask,
  spacingMm: readonly number[],
): LungInvolvement {
  const [nz, ny, nx] = lungLabels.shape;
  if (lungLabels.data.length !== nz * ny * nx || infection.data.length !== lungLabels.data.length) {
    throw new InputError(
      `lungInvolvement: lung mask (${lungLabels.data.length} voxels, shape [${lungLabels.shape.join(', ')}]) and infection mask (${infection.data.length} voxels) must have one shape`,
    );
  }
  if (infection.shape.some((d, axis) => d !== lungLabels.shape[axis])) {
    throw new InputError(`lungInvolvement: infection shape [${infection.shape.join(', ')}] differs from lung shape [${lungLabels.shape.join(', ')}]`);
  }
  const voxelMl = voxelVolumeMl(spacingMm, 'lungInvolvement');
  let left = 0;
  let right = 0;
  let infected = 0;
  let infectedLeft = 0;
  let infectedRight = 0;
  const lungs = lungLabels.data;
  const inf = infection.data;
  for (let i = 0; i < lungs.length; i++) {
    const label = lungs[i];
    const isInfected = inf[i] !== 0;
    if (isInfected) infected++;
    if (label === LUNG_LABELS.left) {
      left++;
      if (isInfected) infectedLeft++;
    } else if (label === LUNG_LABELS.right) {
      right++;
      if (isInfected) infectedRight++;
    }
  }
  const percent = (part: number, whole: number): number => (whole === 0 ? NaN : (100 * part) / whole);
  return {
    infectionVolumeMl: infected * voxelMl,
    leftLungVolumeMl: left * voxelMl,
    rightLungVolumeMl: right * voxelMl,
    infectionInLeftMl: infectedLeft * voxelMl,
    infectionInRightMl: infectedRight * voxelMl,
    infectionOutsideLungsMl: (infected - infectedLeft - infectedRight) * voxelMl,
    percentLeftInvolved: percent(infectedLeft, left),
    percentRightInvolved: percent(infectedRight, right),
    percentBothInvolved: percent(infectedLeft + infectedRight, left + right),
  };
}
