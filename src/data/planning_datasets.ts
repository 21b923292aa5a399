/**
 * `lesionseg plan DATASET... --preset NAME`: fingerprint one or several raw datasets (pooled for
 * one shared plan) and plan them with a preset. Every dataset first passes the dataset check that
 * `check` and `train` run (validate_datasets.ts), unless the caller hands datasets it checked.
 */
import type { ProgressReporter } from '../core/index.js';
import { computeFingerprint } from './fingerprint.js';
import { planExperiment } from './planning.js';
import { getPreset, type PlanPreset, type PresetName } from './planning_presets.js';
import type { Plan } from './planning_schema.js';
import { ensureChecked, type DatasetInput } from './validate_datasets.js';

export interface PlanDatasetsOptions {
  progress?: ProgressReporter;
  /** Foreground intensities drawn over all cases (nnU-Net: 1e8). */
  sampleBudget?: number;
}

export async function planDatasets(
  datasets: DatasetInput | readonly DatasetInput[],
  preset: PresetName | PlanPreset,
  options: PlanDatasetsOptions = {},
): Promise<Plan> {
  const resolved = typeof preset === 'string' ? getPreset(preset) : preset;
  const checked = await ensureChecked(Array.isArray(datasets) ? datasets : [datasets as DatasetInput]);
  const fingerprint = await computeFingerprint(checked.map((d) => d.dir), {
    ...(options.progress ? { progress: options.progress } : {}),
    sampleBudget: options.sampleBudget ?? resolved.fingerprintSamples,
  });
  return planExperiment(fingerprint, resolved);
}
