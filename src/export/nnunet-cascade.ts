/**
 * `export --format nnunet` of a lesionseg cascade: the 3d_cascade_fullres run(s) and the 3d_lowres
 * folds their RUN/previous_stage.json names, as one nnUNet_results dataset folder that
 * nnUNetv2_predict runs (-c 3d_lowres, then -c 3d_cascade_fullres -prev_stage_predictions):
 *
 *   OUT/nnUNetTrainer__nnUNetPlans__3d_lowres/{plans.json, dataset.json, fold_K/checkpoint_X.pth}
 *   OUT/nnUNetTrainer__nnUNetPlans__3d_cascade_fullres/{the same plans.json and dataset.json, fold_K/...}
 *
 * plans.json holds 3d_fullres (the cascade's preprocessing and network), 3d_lowres (the lowres
 * run's, with next_stage) and 3d_cascade_fullres as nnU-Net's planner writes it:
 * { inherits_from: 3d_fullres, previous_stage: 3d_lowres }. The cascade's weights take C + K - 1
 * input channels, which nnU-Net derives from the configuration (determine_num_input_channels), so
 * plans.json does not state them. The two stages must share the dataset, labels, axis order and
 * intensity statistics (one plans file describes both); the lowres folds must include the cascade's.
 */
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import { readPreviousStageRecord } from '../checkpoint/index.js';
import type { Plan } from '../data/index.js';
import { EXPORT_PLANS_NAME, exportConfiguration, nnunetPlansFromPlan, type NnunetFiles } from './nnunet-plans.js';
import { readExportModel, type ExportModel } from './model.js';
import { NNUNET_TRAINER_NAME, writeNnunetModelFolder, writeStaged, type NnunetExportResult } from './nnunet.js';

export const CASCADE_CONFIGURATION = '3d_cascade_fullres';
/** The configuration a cascade inherits its preprocessing and network from, in nnU-Net's plans. */
const FULLRES_CONFIGURATION = '3d_fullres';

/** The lowres model of a cascade model: the folds of the same numbers from the run its folds recorded. */
export function readCascadeLowres(cascade: ExportModel): ExportModel {
  const records = cascade.folds.map((fold) => ({ fold, record: readPreviousStageRecord(path.dirname(fold.file)) }));
  const runs = [...new Set(records.map((r) => r.record.run))];
  if (runs.length > 1) throw new InputError(`the cascade's folds name different previous stages (${runs.join(', ')}): export folds of one cascade`, { file: records[0]!.fold.file, code: 'inconsistent-folds' });
  const lowres = readExportModel(runs[0]!, { checkpoint: cascade.checkpoint, option: 'the previous stage' });
  const folds = cascade.folds.map((fold) => {
    const found = lowres.folds.find((l) => l.fold === fold.fold);
    if (found === undefined) throw new InputError(`the previous stage has no fold ${fold.fold} for the cascade's (it has ${lowres.folds.map((l) => `fold_${l.fold}`).join(', ')})`, { file: runs[0]!, code: 'bad-fold' });
    return found;
  });
  return { ...lowres, folds };
}

/** The cascade's plan as the 3d_fullres configuration its plans entry inherits from. */
function asFullres(plan: Plan): Plan {
  const { previousStage: _previousStage, ...configuration } = plan.configuration;
  return { ...plan, configuration: { ...configuration, name: FULLRES_CONFIGURATION } };
}

/** plans.json with the three configurations and the shared dataset.json; refuses stages one plans file cannot describe. */
export function cascadePlans(cascade: ExportModel, lowres: ExportModel): NnunetFiles {
  const previousStage = cascade.plan.configuration.previousStage!;
  const full = nnunetPlansFromPlan(asFullres(cascade.plan), cascade.architecture, cascade.config, cascade.dataset);
  const low = nnunetPlansFromPlan(lowres.plan, lowres.architecture, lowres.config, lowres.dataset);
  const shared = (files: NnunetFiles): string => JSON.stringify({ ...files.plans, configurations: null, experiment_planner_used: null, dataset: files.datasetJson });
  if (shared(full) !== shared(low)) {
    throw new InputError(`the previous stage was planned for another dataset, labels, axis order or intensity statistics than the cascade: one nnU-Net plans file cannot hold both`, { file: lowres.folds[0]!.file, code: 'plan-mismatch' });
  }
  const lowConfiguration = (low.plans.configurations as Record<string, Record<string, unknown>>)[exportConfiguration(lowres.plan)]!;
  const configurations = {
    ...(full.plans.configurations as Record<string, unknown>),
    [previousStage]: { ...lowConfiguration, data_identifier: `${EXPORT_PLANS_NAME}_${previousStage}`, next_stage: CASCADE_CONFIGURATION },
    [CASCADE_CONFIGURATION]: { inherits_from: FULLRES_CONFIGURATION, previous_stage: previousStage },
  };
  return { plans: { ...full.plans, configurations }, datasetJson: full.datasetJson };
}

/** nnUNetv2_train's folder name of a configuration's model. */
export function nnunetModelFolderName(configuration: string): string {
  return `${NNUNET_TRAINER_NAME}__${EXPORT_PLANS_NAME}__${configuration}`;
}

/** Write the dataset folder `out` of an already read cascade model (see the file comment). */
export function writeNnunetCascade(cascade: ExportModel, out: string): NnunetExportResult & { lowresFolds: number[] } {
  const lowres = readCascadeLowres(cascade);
  const files = cascadePlans(cascade, lowres);
  const previousStage = cascade.plan.configuration.previousStage!;
  const written = writeStaged(out, (staging) => {
    const low = writeNnunetModelFolder(lowres, files, previousStage, path.join(staging, nnunetModelFolderName(previousStage)), path.join(out, nnunetModelFolderName(previousStage)));
    const high = writeNnunetModelFolder(cascade, files, CASCADE_CONFIGURATION, path.join(staging, nnunetModelFolderName(CASCADE_CONFIGURATION)), path.join(out, nnunetModelFolderName(CASCADE_CONFIGURATION)));
    return { files: [...low.files, ...high.files], keys: high.keys };
  });
  return {
    out,
    folds: cascade.folds.map((f) => f.fold),
    lowresFolds: lowres.folds.map((f) => f.fold),
    files: written.files,
    architecture: cascade.architecture,
    task: cascade.task,
    parameters: cascade.folds[0]!.weights.size,
    stateDictKeys: written.keys,
  };
}
