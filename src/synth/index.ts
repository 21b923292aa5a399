/**
 * synth: the deterministic synthetic chest-CT phantom (body, lungs with left/right masks, vessels)
 * with four lesion kinds (covid, tumor, gtv, effusion), and the writer of nnU-Net v2 raw datasets
 * made of it. Imports only core and io.
 */
export { generatePhantom, GENERATOR_VERSION } from './phantom.js';
export {
  writeSynthDataset,
  synthCaseId,
  caseIntensity,
  SYNTH_META_FILE,
  LOBES_LABELS_FILE,
  type WriteSynthDatasetOptions,
  type SynthDatasetSpec,
  type SynthDatasetMeta,
  type SynthCaseMeta,
} from './dataset.js';
export { LOBE_LABEL, OBLIQUE_FISSURE, HORIZONTAL_FISSURE_H, lobeOf, splitLobes, type SynthLobeName } from './lobes.js';
export { huToRadiopaedia, radiopaediaToHu } from './filters.js';
export { SIZE_PRESETS } from './geometry.js';
export {
  LESION_KINDS,
  SYNTH_SIZES,
  LESION_LABEL_NAME,
  RADIOPAEDIA_WINDOW_HU,
  TISSUE,
  LUNG_LABEL,
  type LesionKind,
  type SynthSize,
  type IntensityConvention,
  type TissueName,
  type Side,
  type Vec3,
  type LesionRecord,
  type PhantomMeta,
  type Phantom,
  type GeneratePhantomOptions,
} from './types.js';
