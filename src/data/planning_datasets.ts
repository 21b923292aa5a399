/**
 * `lesionseg plan DATASET... --preset NAME`: fingerprint one or several raw datasets (pooled for
 * one shared plan) and plan them with a preset.
 */
import type { ProgressReporter } from '../core/index.js';
import { computeFingerprint } from './fingerprint.js';
import { planExperiment } from './planning.js';
import { getPreset, type PlanPreset, type PresetName } from './planning_presets.js';
import type { Plan } from './planning_schema.js';

export interface PlanDatasetsOptions {
  progress?: ProgressReporter;
  /** Foreground intensities drawn over all cases (nnU-Net: 1e8). */
  sampleBudget?: number;
}

export async function planDatasets(
  datasetDirs: string | readonly string[],
  preset: PresetName | PlanPreset,
  options: PlanDatasetsOptions = {},
): Promise<Plan> {
  const resolved = typeof preset === 'string' ? getPreset(preset) : preset;
  const fingerprint = await computeFingerprint(datasetDirs, {
    ...(options.progress ? { progress: options.progress } : {}),
    sampleBudget: options.sampleBudget ?? resolved.fingerprintSamples,
  });
  return planExperiment(fingerprint, resolved);
}
