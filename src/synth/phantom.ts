/**
 * generatePhantom: one deterministic synthetic chest CT with its lesion label, lung and lobe masks.
 * Pipeline: geometry -> healthy anatomy -> vessels -> lesions -> scanner (slice-profile blur
 * along z, in-plane PSF blur where voxels are small, noise) -> int16 HU (or 0..255).
 * Every stage draws from its own fork of the case Rng, so changing one stage's sampling does not
 * reshuffle the others.
 */
import { InputError, Rng, type Volume } from '../core/index.js';
import { drawAnatomy, sampleAnatomyParams } from './anatomy.js';
import { addNoise, blurAxis, huToRadiopaedia } from './filters.js';
import { sampleGeometry, voxelVolumeMl, type CaseGeometry } from './geometry.js';
import { drawLesions } from './lesions.js';
import { splitLobes } from './lobes.js';
import {
  LESION_KINDS,
  LESION_LABEL_NAME,
  LUNG_LABEL,
  RADIOPAEDIA_WINDOW_HU,
  SYNTH_SIZES,
  type GeneratePhantomOptions,
  type LesionKind,
  type Phantom,
  type PhantomMeta,
} from './types.js';
import { drawVessels, growVessels } from './vessels.js';

/** Bumped whenever the same seed would give different volumes. */
export const GENERATOR_VERSION = 1;

/** CT values are stored clamped to the scanner's usual range. */
const HU_MIN = -1024;
const HU_MAX = 3071;

export function generatePhantom(kind: LesionKind, options: GeneratePhantomOptions): Phantom {
  if (!LESION_KINDS.includes(kind)) {
    throw new InputError(`unknown lesion kind '${String(kind)}': use one of ${LESION_KINDS.join(', ')}`, { code: 'bad-kind' });
  }
  if (!SYNTH_SIZES.includes(options.size)) {
    throw new InputError(`unknown size '${String(options.size)}': use one of ${SYNTH_SIZES.join(', ')}`, { code: 'bad-arguments' });
  }
  if (!Number.isSafeInteger(options.seed)) {
    throw new InputError(`seed must be an integer, got ${options.seed}`, { code: 'bad-arguments' });
  }
  const caseIndex = options.caseIndex;
  if (caseIndex !== undefined && !(Number.isSafeInteger(caseIndex) && caseIndex >= 0)) {
    throw new InputError(`caseIndex must be a non-negative integer, got ${caseIndex}`, { code: 'bad-arguments' });
  }
  const intensity = options.intensity ?? 'hu';
  const rng = caseIndex === undefined ? new Rng(options.seed) : new Rng(options.seed).fork(caseIndex);

  const geometry = sampleGeometry(rng.fork('geometry'), options.size);
  const params = sampleAnatomyParams(rng.fork('anatomy'), geometry);
  const anatomy = drawAnatomy(rng.fork('texture'), geometry, params);
  drawVessels(geometry, anatomy, growVessels(rng.fork('vessels'), geometry, anatomy));
  const label = new Uint8Array(anatomy.hu.length);
  const lesions = drawLesions(kind, rng.fork('lesions'), geometry, anatomy, label);
  applyScanner(geometry, anatomy.hu, rng.fork('scanner'));

  const image = new Int16Array(anatomy.hu.length);
  const hu = anatomy.hu;
  if (intensity === 'hu') {
    for (let n = 0; n < hu.length; n++) {
      const v = Math.round(hu[n]!);
      image[n] = v < HU_MIN ? HU_MIN : v > HU_MAX ? HU_MAX : v;
    }
  } else {
    for (let n = 0; n < hu.length; n++) image[n] = huToRadiopaedia(hu[n]!);
  }

  const voxelMl = voxelVolumeMl(geometry);
  let left = 0;
  let right = 0;
  let labelled = 0;
  for (let n = 0; n < label.length; n++) {
    const lung = anatomy.lungs[n];
    if (lung === LUNG_LABEL.left) left++;
    else if (lung === LUNG_LABEL.right) right++;
    labelled += label[n]!;
  }
  const meta: PhantomMeta = {
    generator: 'lesionseg-synth',
    generatorVersion: GENERATOR_VERSION,
    kind,
    size: options.size,
    seed: options.seed,
    caseIndex: caseIndex ?? null,
    intensity,
    intensityMapping: intensity === 'radiopaedia' ? { windowHu: [...RADIOPAEDIA_WINDOW_HU] as [number, number], outputRange: [0, 255] } : null,
    shape: [...geometry.shape],
    spacingMm: [...geometry.spacingMm],
    labelName: LESION_LABEL_NAME[kind],
    lesionCount: lesions.length,
    lesions,
    lesionVolumeMl: round4(labelled * voxelMl),
    lungVolumeMl: { left: round4(left * voxelMl), right: round4(right * voxelMl) },
    hilumMm: { left: [...params.hilum.left], right: [...params.hilum.right] },
    noiseStdHu: geometry.noiseStdHu,
  };
  return {
    image: volume(geometry, image),
    label: volume(geometry, label),
    lungs: volume(geometry, anatomy.lungs),
    lobes: volume(geometry, splitLobes(anatomy.lungs, geometry.shape, geometry.worldY, geometry.worldZ)),
    tissues: volume(geometry, anatomy.tissues),
    meta,
  };
}

/**
 * Slice profile: a Gaussian along z with FWHM = slice spacing; in-plane PSF: FWHM 1 mm (only
 * where that is at least ~0.7 voxel); then scanner noise.
 */
function applyScanner(geometry: CaseGeometry, hu: Float32Array, rng: Rng): void {
  const fwhmToSigma = 1 / (2 * Math.sqrt(2 * Math.log(2)));
  blurAxis(hu, geometry.shape, 0, fwhmToSigma, 3);
  const inPlaneSigma = (1.0 * fwhmToSigma) / geometry.spacingMm[1];
  if (inPlaneSigma >= 0.3) {
    blurAxis(hu, geometry.shape, 1, inPlaneSigma, 3);
    blurAxis(hu, geometry.shape, 2, inPlaneSigma, 3);
  }
  addNoise(hu, geometry.noiseStdHu, rng);
}

function volume<T extends Int16Array | Uint8Array>(geometry: CaseGeometry, data: T): Volume<T> {
  return {
    data,
    shape: [...geometry.shape],
    spacing: [...geometry.spacingMm],
    affine: geometry.affine.map((row) => [...row]) as Volume['affine'],
  };
}

const round4 = (v: number): number => Math.round(v * 10000) / 10000;
