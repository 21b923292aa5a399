/**
 * Types of the synthetic chest-CT phantom: lesion kinds, size presets, tissue codes and the
 * generated Phantom with its per-case metadata.
 *
 * World coordinates are NIfTI RAS+ millimetres: +x = patient RIGHT, +y = ANTERIOR, +z = SUPERIOR.
 * So the patient's left lung lies at world x < 0 and "posterior" (the dependent side of a supine
 * patient) is low world y.
 */
import type { Volume } from '../core/index.js';

export const LESION_KINDS = ['covid', 'tumor', 'gtv', 'effusion'] as const;
export type LesionKind = (typeof LESION_KINDS)[number];

export const SYNTH_SIZES = ['tiny', 'small', 'paper'] as const;
export type SynthSize = (typeof SYNTH_SIZES)[number];

/**
 * How image values are stored: `hu` = Hounsfield units; `radiopaedia` = the COVID-19-CT-Seg
 * Radiopaedia convention, HU windowed to [-1250, 250] and rescaled to 0..255
 * (v = round((clamp(HU) + 1250) * 255 / 1500), back: HU ~ v * 1500 / 255 - 1250).
 */
export type IntensityConvention = 'hu' | 'radiopaedia';

export const RADIOPAEDIA_WINDOW_HU: readonly [number, number] = [-1250, 250];

/** The label name each kind writes as label 1 in dataset.json. */
export const LESION_LABEL_NAME: Readonly<Record<LesionKind, string>> = {
  covid: 'infection',
  tumor: 'cancer',
  gtv: 'GTV',
  effusion: 'effusion',
};

/** Tissue codes of `Phantom.tissues` (what each voxel was drawn as, before blur and noise). */
export const TISSUE = {
  air: 0,
  fat: 1,
  muscle: 2,
  bone: 3,
  mediastinum: 4,
  heart: 5,
  lung: 6,
  vessel: 7,
  abdomen: 8,
  lesion: 9,
  fluid: 10,
  airway: 11,
} as const;
export type TissueName = keyof typeof TISSUE;

/** Lung mask values (COVID-19-CT-Seg Lung_Mask convention). */
export const LUNG_LABEL = { left: 1, right: 2 } as const;
export type Side = keyof typeof LUNG_LABEL;

export type Vec3 = [number, number, number];

/** One drawn lesion (effusion: one per affected side). */
export interface LesionRecord {
  /** covid: 'ggo' | 'ggo+consolidation'; tumor: 'nodule'; gtv: 'central-mass'; effusion: 'effusion'. */
  type: string;
  side: Side;
  /** Centre of the drawing envelope, world RAS mm [x, y, z]. */
  centerMm: Vec3;
  /** Voxels this lesion added to the label (overlaps count to the first lesion), in mL. */
  volumeMl: number;
  /** Equivalent-sphere diameter of those voxels, mm. */
  equivalentDiameterMm: number;
}

export interface PhantomMeta {
  generator: 'lesionseg-synth';
  generatorVersion: number;
  kind: LesionKind;
  size: SynthSize;
  seed: number;
  /** Case index when generated as case `caseIndex` of a dataset (Rng(seed).fork(caseIndex)). */
  caseIndex: number | null;
  intensity: IntensityConvention;
  /** Only for `radiopaedia`: the window and output range used. */
  intensityMapping: { windowHu: [number, number]; outputRange: [number, number] } | null;
  shape: Vec3;
  spacingMm: Vec3;
  labelName: string;
  lesionCount: number;
  lesions: LesionRecord[];
  /** Whole label volume, mL. */
  lesionVolumeMl: number;
  lungVolumeMl: { left: number; right: number };
  /** Hilum points (where the vessel trees start), world RAS mm. */
  hilumMm: { left: Vec3; right: Vec3 };
  /** Standard deviation of the added scanner noise, HU. */
  noiseStdHu: number;
}

export interface Phantom {
  /** int16 HU (or 0..255 in the radiopaedia convention). */
  image: Volume<Int16Array>;
  /** 1 = lesion, 0 = background. */
  label: Volume<Uint8Array>;
  /** 1 = left lung, 2 = right lung (lesions inside a lung belong to it; effusion does not). */
  lungs: Volume<Uint8Array>;
  /** The five lobes (lobes.ts LOBE_LABEL, 1..5), each lung split by fissure-like surfaces; 0 outside the lungs. */
  lobes: Volume<Uint8Array>;
  /** TISSUE codes, for tests and inspection. */
  tissues: Volume<Uint8Array>;
  meta: PhantomMeta;
}

export interface GeneratePhantomOptions {
  seed: number;
  size: SynthSize;
  /** Generate case `caseIndex` of a dataset: the generator is seeded with new Rng(seed).fork(caseIndex). */
  caseIndex?: number;
  /** Default 'hu'. */
  intensity?: IntensityConvention;
}
