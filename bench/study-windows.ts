/**
 * What the mirroring benchmarks (tta-margin.ts, tta-rules.ts) share: each test case of each arm's
 * fold-0 model of a finished study, preprocessed by the model's plan and padded for the sliding
 * window at step 0.5, with the model's forward pass in the given precision and a walk over the
 * windows (each inside its own scope, under noGrad).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Precision, Volume } from '../src/core/index.js';
import { preprocessCase } from '../src/data/index.js';
import { readNifti } from '../src/io/index.js';
import { Predictor, paddedShape, paddingToPatch, slidingWindowBoxes, type Triple, type WindowBox } from '../src/infer/index.js';
import { autocast, fromArray, narrow, noGrad, pad, scope, type Tensor } from '../src/tensor/index.js';

export interface StudyCase {
  arm: string;
  caseId: string;
  numClasses: number;
  patch: Triple;
  /** The padded case's spatial shape. */
  shape: Triple;
  boxes: WindowBox[];
  /** The network on x [B, C, z, y, x], in the precision asked for. */
  forward: (x: Tensor) => Tensor;
  /** Calls f on every window [C, z, y, x] of the padded case, in `boxes` order. */
  forEachWindow: (f: (window: Tensor, index: number) => void) => void;
}

/** The arms of a study: `all` (every runs/<model>/<strategy>) or a comma-separated list. */
export function studyArms(study: string, option: string): string[] {
  return option === 'all'
    ? fs.readdirSync(path.join(study, 'runs')).sort().flatMap((model) => fs.readdirSync(path.join(study, 'runs', model)).sort().map((s) => `${model}/${s}`))
    : option.split(',');
}

export async function* studyCases(study: string, arms: readonly string[], caseLimit: number, precision: Precision): AsyncGenerator<StudyCase> {
  const device = { type: 'cpu' } as const;
  for (const arm of arms) {
    const run = path.join(study, 'runs', arm, 'fold_0');
    const sidecar = JSON.parse(fs.readFileSync(path.join(run, 'checkpoint_final.json'), 'utf8')) as { data: { test: string[] } };
    const predictor = Predictor.fromCheckpoints([path.join(run, 'checkpoint_final.safetensors')], { precision });
    try {
      const engine = predictor.engines[0]!;
      const patch = predictor.plan.configuration.patchSize as Triple;
      const forward = (x: Tensor): Tensor => (precision === 'fp32' ? engine.run(x) as Tensor : autocast({ device, dtype: 'bfloat16' }, () => engine.run(x) as Tensor));
      for (const caseId of sidecar.data.test.slice(0, caseLimit)) {
        const image: Volume = await readNifti(path.join(study, 'datasets/covid/imagesTr', `${caseId}_0000.nii.gz`));
        const pre = preprocessCase([image], null, predictor.plan, { caseId });
        const padding = paddingToPatch(pre.shape.slice(1), patch);
        const shape = paddedShape(pre.shape.slice(1), padding);
        const boxes = slidingWindowBoxes(shape, patch, 0.5);
        const forEachWindow = (f: (window: Tensor, index: number) => void): void => noGrad(() => scope(() => {
          const data = fromArray(pre.data, pre.shape, { device });
          const padded = pad(data, [padding[2].before, padding[2].after, padding[1].before, padding[1].after, padding[0].before, padding[0].after]);
          boxes.forEach((box, w) => scope(() => {
            let window = padded;
            for (let a = 0; a < 3; a++) window = narrow(window, a + 1, box.start[a]!, patch[a]!);
            f(window, w);
          }));
        }));
        yield { arm, caseId, numClasses: predictor.numClasses, patch, shape, boxes, forward, forEachWindow };
      }
    } finally {
      predictor.dispose();
    }
  }
}
