/**
 * The training input of a lesionseg cascade stage (`train --configuration 3d_cascade_fullres
 * --previous-stage LOWRES`): nnU-Net's `predicted_next_stage`, the lowres cross-validation
 * predictions of every training case on the cascade's preprocessed grid, each case predicted by
 * the lowres fold that did not train on it (the fold whose recorded test cases hold it).
 *
 * Our Predictor gives them exactly as it gives the cascade's input in prediction: the lowres fold
 * predicts the case into its input geometry, and that mask is preprocessed with the cascade's plan
 * as a label map (configurations.ts previousStageLabelMap). nnU-Net's trainer instead resamples
 * the lowres logits straight to the fullres grid and takes their argmax (resample_and_save);
 * the two differ only on boundary voxels, and ours keeps training and prediction inputs the same.
 * The maps are written one .npy per case (atomically; a resumed run predicts only those missing).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, SILENT_PROGRESS, type Device, type ProgressReporter } from '../core/index.js';
import { listRawCases, readNifti, writeNpy } from '../io/index.js';
import { previousStageFile, type CheckedDataset, type Plan } from '../data/index.js';
import { readInferenceCheckpoint, resolveCheckpoints } from '../checkpoint/index.js';
import { previousStageLabelMap } from './configurations.js';
import { Predictor } from './predictor.js';

/** nnU-Net's name of the configuration before the cascade. */
export const LOWRES_CONFIGURATION = '3d_lowres';

interface LowresFold {
  fold: number;
  file: string;
  dataset: string;
  test: string[];
  labels: Record<string, number | number[]>;
}

/** The lowres folder's fold_K runs with what each recorded: its dataset, labels and held-out cases. */
function readLowresFolds(dir: string): LowresFold[] {
  const files = resolveCheckpoints(dir);
  return files.map((file) => {
    const checkpoint = readInferenceCheckpoint(file);
    const data = checkpoint.sidecar?.data ?? null;
    const match = /^fold_(\d+)$/.exec(path.basename(path.dirname(file)));
    const fold = match !== null ? Number(match[1]) : typeof data?.fold === 'number' ? data.fold : null;
    if (checkpoint.kind !== 'lesionseg' || data === null || fold === null || !Array.isArray(data.test) || typeof data.dataset !== 'string') {
      throw new InputError('--previous-stage: expected a folder of lesionseg fold_K runs (each recording its dataset and held-out cases)', { file: checkpoint.sidecarFile, code: 'bad-model' });
    }
    const planDataset = checkpoint.plan.datasets.find((d) => d.name === data.dataset);
    return { fold, file, dataset: data.dataset, test: data.test as string[], labels: (planDataset?.labels ?? {}) as Record<string, number | number[]> };
  });
}

export interface CascadeTrainingInputOptions {
  device?: Device;
  progress?: ProgressReporter;
}

/**
 * The previous stage of a cascade run from the lowres folder `dir` (fold_K runs): `check` refuses
 * (before anything is written) a lowres run of another dataset, with other labels, or without the
 * fold that held out a case; `prepare` writes the missing label maps.
 */
export function lowresPreviousStage(dir: string, options: CascadeTrainingInputOptions = {}) {
  const run = path.resolve(dir);
  let folds: LowresFold[] | null = null;
  const lowresFolds = (): LowresFold[] => (folds ??= readLowresFolds(run));
  return {
    configuration: LOWRES_CONFIGURATION,
    run,
    /** The lowres fold predicting each case; InputError when the lowres run cannot give them. */
    check(plan: Plan, datasetName: string, caseIds: readonly string[]): Record<string, number> {
      const all = lowresFolds();
      const other = all.find((f) => f.dataset !== datasetName);
      if (other !== undefined) throw new InputError(`--previous-stage: fold_${other.fold} was trained on dataset '${other.dataset}', this cascade trains '${datasetName}'`, { file: other.file, code: 'plan-mismatch' });
      const labels = plan.datasets.find((d) => d.name === datasetName)?.labels ?? {};
      const differing = all.find((f) => JSON.stringify(f.labels) !== JSON.stringify(labels));
      if (differing !== undefined) {
        throw new InputError(`--previous-stage: fold_${differing.fold} predicts the labels ${JSON.stringify(differing.labels)}, this cascade trains ${JSON.stringify(labels)}`, { file: differing.file, code: 'plan-mismatch' });
      }
      const byCase: Record<string, number> = {};
      const missing: string[] = [];
      for (const id of caseIds) {
        const fold = all.find((f) => f.test.includes(id));
        if (fold === undefined) missing.push(id);
        else byCase[id] = fold.fold;
      }
      if (missing.length > 0) {
        throw new InputError(
          `--previous-stage: no fold held out case${missing.length > 1 ? 's' : ''} ${missing.slice(0, 3).map((id) => `'${id}'`).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''} (it has ${all.map((f) => `fold_${f.fold}`).join(', ')}): train the lowres fold that did not train on ${missing.length > 1 ? 'them' : 'it'}`,
          { file: run, code: 'bad-fold' },
        );
      }
      return byCase;
    },
    /** Write `out/<case>.npy` for every case of `byCase` not there yet, one lowres fold at a time. */
    async prepare(plan: Plan, dataset: CheckedDataset, byCase: Readonly<Record<string, number>>, out: string): Promise<number> {
      const raw = new Map(listRawCases(dataset.dir).map((c) => [c.id, c]));
      const todo = Object.entries(byCase).filter(([id]) => !fs.existsSync(previousStageFile(out, id)));
      fs.mkdirSync(out, { recursive: true });
      const progress = options.progress ?? SILENT_PROGRESS;
      progress.start(`previous stage (${LOWRES_CONFIGURATION}) predictions`, todo.length);
      for (const fold of lowresFolds()) {
        const cases = todo.filter(([, f]) => f === fold.fold).map(([id]) => id);
        if (cases.length === 0) continue;
        const predictor = Predictor.fromCheckpoints([fold.file], options.device !== undefined ? { device: options.device } : {});
        try {
          for (const id of cases) {
            const images = await Promise.all(raw.get(id)!.images.map((file) => readNifti(file)));
            const mask = predictor.predictCase(images, { caseId: id }).segmentation;
            const map = previousStageLabelMap(images, mask, plan, id);
            writeNpy(previousStageFile(out, id), map.seg!, [1, ...map.shape.slice(1)]);
            progress.tick(1, id);
          }
        } finally {
          predictor.dispose();
        }
      }
      progress.stop();
      return todo.length;
    },
  };
}

export type LowresPreviousStage = ReturnType<typeof lowresPreviousStage>;
