/**
 * nnU-Net's default training augmentation as one replayable pipeline (nnUNetTrainer
 * get_training_transforms, NNUNET.md section 4), in its order and with its probabilities:
 * spatial -> noise (0.1) -> blur (0.2) -> brightness (0.15) -> contrast (0.15) -> low resolution
 * (0.25) -> inverted gamma (0.1) -> gamma (0.3) -> mirror -> mask outside the nonzero region (when a
 * channel's normalisation used the mask) -> labels -1 -> 0; a cascade stage then appends the previous
 * stage's map as one-hot channels and augments them (cascade_transforms.ts).
 * `sampleAugmentation` draws every parameter (null = the transform is skipped this time);
 * `applyAugmentation` is a pure function of the patch and those parameters. Validation patches
 * (`finalizeSample` only) just get the label mapping.
 */
import type { Rng } from '../../core/index.js';
import { hostZeroNegative } from '../../tensor/index.js';
import type { AugmentMeta, ApplyContext, PatchSample, Transform } from './augment_types.js';
import { gaussianBlur, lowResolution, mirror, type BlurParams, type LowResolutionParams, type MirrorParams } from './filter_transforms.js';
import {
  brightness,
  contrast,
  gamma,
  gaussianNoise,
  invertedGamma,
  type ChannelFactor,
  type GammaParams,
  type NoiseParams,
} from './intensity_transforms.js';
import { spatialTransform, type SpatialParams } from './spatial_transform.js';
import { applyCascadeAugmentation, sampleCascadeAugmentation, type CascadeAugmentationParams } from './cascade_transforms.js';
import { withPreviousStage } from '../previous_stage.js';

export interface AugmentationParams {
  spatial: SpatialParams;
  gaussianNoise: NoiseParams | null;
  gaussianBlur: BlurParams | null;
  brightness: ChannelFactor[] | null;
  contrast: ChannelFactor[] | null;
  lowResolution: LowResolutionParams | null;
  invertedGamma: GammaParams | null;
  gamma: GammaParams | null;
  mirror: MirrorParams;
  /** Channels set to 0 where the label map is -1 (nnU-Net MaskImageTransform). */
  maskChannels: number[];
  /** A cascade stage's augmentation of the previous stage's one-hot channels (absent otherwise). */
  cascade?: CascadeAugmentationParams;
}

/** The randomly applied transforms with their apply probabilities (nnU-Net RandomTransform). */
const RANDOM_STEPS = [
  { key: 'gaussianNoise', transform: gaussianNoise, probability: 0.1 },
  { key: 'gaussianBlur', transform: gaussianBlur, probability: 0.2 },
  { key: 'brightness', transform: brightness, probability: 0.15 },
  { key: 'contrast', transform: contrast, probability: 0.15 },
  { key: 'lowResolution', transform: lowResolution, probability: 0.25 },
  { key: 'invertedGamma', transform: invertedGamma, probability: 0.1 },
  { key: 'gamma', transform: gamma, probability: 0.3 },
] as const;

export function sampleAugmentation(rng: Rng, meta: AugmentMeta): AugmentationParams {
  const spatial = spatialTransform.sample(rng, meta);
  const drawn: Record<string, unknown> = {};
  for (const step of RANDOM_STEPS) {
    drawn[step.key] = rng.float() < step.probability ? (step.transform as Transform<unknown>).sample(rng, meta) : null;
  }
  const mirrorParams = mirror.sample(rng, meta);
  const maskChannels = meta.useMaskForNorm.flatMap((used, channel) => (used ? [channel] : []));
  const cascade = meta.previousLabels > 0 ? { cascade: sampleCascadeAugmentation(rng, meta.previousLabels) } : {};
  return { spatial, ...(drawn as Omit<AugmentationParams, 'spatial' | 'mirror' | 'maskChannels'>), mirror: mirrorParams, maskChannels, ...cascade };
}

/** The -1 marker mapped to background 0 (in `seg` itself when `inPlace`; in the addon: any negative label -> 0). */
function withoutOutside(seg: Int8Array, inPlace: boolean): Int8Array {
  const out = inPlace ? seg : seg.slice();
  hostZeroNegative(out);
  return out;
}

/**
 * Set masked channels to 0 outside the nonzero region and map the -1 marker to background 0; a
 * cascade's sample (`previousLabels` > 0) gets the previous stage's map as that many one-hot channels
 * after the image's. `inPlace`: the sample's arrays are overwritten instead of copied.
 */
export function finalizeSample(sample: PatchSample, maskChannels: readonly number[] = [], previousLabels = 0, inPlace = false): PatchSample {
  const voxels = sample.shape[0] * sample.shape[1] * sample.shape[2];
  let image = sample.image;
  if (maskChannels.length > 0) {
    if (!inPlace) image = image.slice();
    for (const channel of maskChannels) {
      const offset = channel * voxels;
      for (let i = 0; i < voxels; i++) if (sample.seg[i]! < 0) image[offset + i] = 0;
    }
  }
  const seg = withoutOutside(sample.seg, inPlace);
  if (previousLabels === 0) return { ...sample, image, seg };
  if (sample.previous === undefined) throw new RangeError('a cascade sample needs the previous stage\'s label map');
  const { previous: _previous, ...rest } = sample;
  const stacked = withPreviousStage(image, [sample.channels, ...sample.shape], sample.previous, previousLabels + 1);
  return { ...rest, image: stacked.data, seg, channels: stacked.shape[0] };
}

/**
 * The augmented sample. Every step after the spatial one works in place on the spatial step's new
 * arrays (`context.output` when given), or on `sample`'s own when the spatial step kept them and
 * `context.reuseInput` gives them up.
 */
export function applyAugmentation(sample: PatchSample, params: AugmentationParams, context: ApplyContext): PatchSample {
  let x = spatialTransform.apply(sample, params.spatial, context);
  const owned: ApplyContext = { device: context.device, reuseInput: context.reuseInput === true || x.image !== sample.image };
  for (const step of RANDOM_STEPS) {
    const stepParams = params[step.key];
    if (stepParams !== null) x = (step.transform as Transform<unknown>).apply(x, stepParams, owned);
  }
  x = mirror.apply(x, params.mirror, owned);
  const labels = params.cascade?.labels ?? 0;
  const done = finalizeSample(x, params.maskChannels, labels, owned.reuseInput);
  return params.cascade === undefined ? done : { ...done, image: applyCascadeAugmentation(done.image, done.channels, done.shape, params.cascade) };
}
