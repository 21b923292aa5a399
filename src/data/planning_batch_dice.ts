/**
 * Whether the 3d_fullres configuration trains with batch Dice, by nnU-Net v2's rule
 * (MIC-DKFZ/nnUNet @0e495086, nnunetv2/experiment_planning/experiment_planners/
 * default_experiment_planner.py, ExperimentPlanner.plan_experiment): 3d_fullres gets
 * batch_dice True exactly when the planner also makes a 3d_lowres configuration, False otherwise
 * (3d_lowres itself always gets False and 2d always True; planning.ts sets those). The ResEnc planners
 * (residual_unets/residual_encoder_unet_planners.py) inherit plan_experiment unchanged, so the
 * rule is the same for them.
 *
 * The 3d_lowres search, as plan_experiment runs it: while the patch covers less than a quarter
 * (lowres_creation_threshold 0.25) of the median case's voxels, raise the spacing by 3 % (first
 * only the axes more than 2x finer than the coarsest one, then all axes), shrink the median shape
 * by the same factors and plan a patch for that spacing; then drop the 3d_lowres again when its
 * median case has no less than half the voxels of the full-resolution one.
 *
 * The search runs with the preset's patch rule (the patch the preset would choose at each lower
 * resolution); its last spacing is the 3d_lowres configuration's (planning.ts).
 */
import { InputError } from '../core/index.js';
import { roundHalfEven } from './resample.js';
import type { Triple } from './planning_topology.js';

/** nnU-Net's ExperimentPlanner.lowres_creation_threshold. */
export const LOWRES_CREATION_THRESHOLD = 0.25;
/** nnU-Net's spacing_increase_factor of the 3d_lowres search. */
export const LOWRES_SPACING_INCREASE = 1.03;

export interface LowresSearch {
  /** True when nnU-Net would keep a 3d_lowres configuration (then 3d_fullres uses batch Dice). */
  lowres: boolean;
  /** The last spacing tried (the fullres spacing when no search was needed). */
  lowresSpacing: Triple;
  /** Iterations of the search. */
  steps: number;
}

const product = (values: readonly number[]): number => values.reduce((a, b) => a * b, 1);

/**
 * The 3d_lowres search of plan_experiment (see the file comment). `patchFor(spacing, medianShape)`
 * is the patch the planner chooses for a spacing and a (rounded) median shape.
 */
export function searchLowres(
  fullresSpacing: Triple,
  medianShape: readonly number[],
  fullresPatch: readonly number[],
  patchFor: (spacing: Triple, medianShape: Triple) => readonly number[],
): LowresSearch {
  const fullresVoxels = product(medianShape);
  let medianVoxels = fullresVoxels;
  let patchVoxels = product(fullresPatch);
  const spacing: Triple = [...fullresSpacing];
  let planned = false;
  let steps = 0;
  while (patchVoxels / medianVoxels < LOWRES_CREATION_THRESHOLD) {
    if (++steps > 100_000) throw new InputError('the 3d_lowres search did not end (patch rule never covers a quarter of the median case)', { code: 'bad-plan' });
    const coarsest = Math.max(...spacing);
    const anisotropic = spacing.map((s) => coarsest / s > 2);
    const any = anisotropic.some(Boolean);
    for (let axis = 0; axis < 3; axis++) if (!any || anisotropic[axis]) spacing[axis] = spacing[axis]! * LOWRES_SPACING_INCREASE;
    // fullres spacing / lowres spacing * median shape, per axis (float), as numpy computes it
    const shape = [0, 1, 2].map((axis) => (fullresSpacing[axis]! / spacing[axis]!) * medianShape[axis]!);
    medianVoxels = product(shape);
    patchVoxels = product(patchFor([...spacing], shape.map(roundHalfEven) as Triple));
    planned = true;
  }
  const lowres = planned && fullresVoxels / medianVoxels >= 2;
  return { lowres, lowresSpacing: spacing, steps };
}
