/**
 * The built-in studies (`lesionseg experiment --preset demo|synthetic|paper`), written as spec JSON
 * and validated like a user's spec:
 * - demo: small phantoms (64x128x128 at ~5x3x3 mm: 8 COVID-like, 4 of each source kind) with the
 *   tiny plan (patch 16x32x32, features 4..32), multi-lesion pre-training (48 x 25 iterations),
 *   every strategy on one limited-annotation fold (4 train, of which 1 validates / 4 test),
 *   32 x 25 iterations each. Sized so that the models learn (scratch needs ~400 iterations before
 *   its Dice leaves 0 on these lesions; pre-trained starts are there within ~100) and the whole
 *   study takes about 4-5 minutes on 2 idle CPU cores. On tiny phantoms (6x6x10 mm voxels) the
 *   COVID lesions are too small and faint to learn within minutes.
 * - synthetic: the paper's whole grid on small phantoms: 20 COVID-like cases in 5 folds of 4 train /
 *   16 test, 12 cases of each source, single- and multi-lesion models, every strategy, and one
 *   variant arm, Hybrid-encoder Learning from a random decoder with the multi-lesion model
 *   ('hybrid-random-decoder', so that the decoder comparison comes from the same spec run): 4
 *   pre-training runs, 90 target runs. It uses the demo's tiny plan and schedule: at the CPU preset (patch
 *   28x96x96, ~1 s per iteration here) the same grid with enough iterations to learn would take
 *   about a day on 2 cores; with the tiny plan it takes about 1.5 hours. It runs two steps at
 *   once with one thread each (jobs 2, threads 1): the tiny network's ops are too small to keep
 *   two threads busy, so two one-thread processes do about twice the work of one two-thread one
 *   (measured here: ~105 s per target run, training + prediction of 16 cases, in each of two
 *   processes, against ~115 s per run with one two-thread process).
 * - paper: the real datasets as imported (relative to the working folder), the benchmark's 5-fold
 *   split (shipped in data/covid19_ctseg_5fold_split.json), the paper preset and nnU-Net's
 *   1000 x 250 schedule. For a GPU.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/index.js';
import { TRANSFER_STRATEGIES } from '../transfer/index.js';
import { validateExperimentSpec, type ExperimentSpec } from './spec.js';

export const EXPERIMENT_PRESET_NAMES = ['demo', 'synthetic', 'paper'] as const;
export type ExperimentPresetName = (typeof EXPERIMENT_PRESET_NAMES)[number];

const ALL_STRATEGIES = [...TRANSFER_STRATEGIES];

/** The COVID-19-CT-Seg benchmark's 5-fold split, shipped with the package (src/ or dist/ -> ../../data). */
export const COVID19_CTSEG_SPLIT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../data/covid19_ctseg_5fold_split.json');

export const EXPERIMENT_PRESETS: Readonly<Record<ExperimentPresetName, Record<string, unknown>>> = {
  demo: {
    version: 1,
    name: 'demo',
    datasets: {
      covid: { synth: { kind: 'covid', cases: 8, size: 'small', seed: 11 } },
      tumor: { synth: { kind: 'tumor', cases: 4, size: 'small', seed: 12 } },
      gtv: { synth: { kind: 'gtv', cases: 4, size: 'small', seed: 13 } },
      effusion: { synth: { kind: 'effusion', cases: 4, size: 'small', seed: 14 } },
    },
    sources: ['tumor', 'gtv', 'effusion'],
    target: { dataset: 'covid', split: { limited: { folds: 2, seed: 0 } }, folds: [0], label: 1, toleranceMm: 3 },
    pretrained: ['none', 'multi'],
    strategies: ALL_STRATEGIES,
    preset: 'tiny',
    pretraining: { epochs: 48, iterationsPerEpoch: 25, validationIterations: 2 },
    training: { epochs: 32, iterationsPerEpoch: 25, validationIterations: 2 },
    seed: 0,
    threads: 2,
    workers: 0,
  },
  synthetic: {
    version: 1,
    name: 'synthetic',
    datasets: {
      covid: { synth: { kind: 'covid', cases: 20, size: 'small', seed: 21 } },
      tumor: { synth: { kind: 'tumor', cases: 12, size: 'small', seed: 22 } },
      gtv: { synth: { kind: 'gtv', cases: 12, size: 'small', seed: 23 } },
      effusion: { synth: { kind: 'effusion', cases: 12, size: 'small', seed: 24 } },
    },
    sources: ['tumor', 'gtv', 'effusion'],
    target: { dataset: 'covid', split: { limited: { folds: 5, seed: 0 } }, folds: [0, 1, 2, 3, 4], label: 1, toleranceMm: 3 },
    pretrained: ['none', 'tumor', 'gtv', 'effusion', 'multi'],
    strategies: [...ALL_STRATEGIES, { strategy: 'hybrid', name: 'hybrid-random-decoder', options: { decoderInit: 'random' }, pretrained: ['multi'] }],
    preset: 'tiny',
    pretraining: { epochs: 48, iterationsPerEpoch: 25, validationIterations: 2 },
    training: { epochs: 32, iterationsPerEpoch: 25, validationIterations: 2 },
    seed: 0,
    threads: 1,
    jobs: 2,
    workers: 0,
  },
  paper: {
    version: 1,
    name: 'paper',
    datasets: {
      covid: { path: 'raw/covid19-ctseg' },
      msd: { path: 'raw/msd-lung' },
      structseg: { path: 'raw/structseg-gtv' },
      nsclc: { path: 'raw/nsclc-effusion' },
    },
    sources: ['msd', 'structseg', 'nsclc'],
    target: { dataset: 'covid', split: COVID19_CTSEG_SPLIT, folds: [0, 1, 2, 3, 4], label: 1, toleranceMm: 3 },
    pretrained: ['none', 'msd', 'structseg', 'nsclc', 'multi'],
    strategies: ALL_STRATEGIES,
    preset: 'paper',
    pretraining: { epochs: 1000, iterationsPerEpoch: 250, validationIterations: 50 },
    training: { epochs: 1000, iterationsPerEpoch: 250, validationIterations: 50 },
    seed: 0,
    device: 'cuda',
    precision: 'fp16',
    threads: 8,
    workers: 4,
    prediction: { tta: true },
  },
};

/** A built-in study; relative paths (paper) resolve against `baseDir` (the working folder). */
export function experimentPreset(name: string, baseDir: string): ExperimentSpec {
  if (!(EXPERIMENT_PRESET_NAMES as readonly string[]).includes(name)) {
    throw new InputError(`unknown experiment preset '${name}' (valid: ${EXPERIMENT_PRESET_NAMES.join(', ')})`, { code: 'unknown-preset' });
  }
  return validateExperimentSpec(EXPERIMENT_PRESETS[name as ExperimentPresetName], `preset '${name}'`, baseDir);
}
