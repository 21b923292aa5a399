/**
 * nnU-Net's cascade trained here (issue 23): a 3d_lowres stage (two fold runs on a plan at a
 * coarser spacing, one iteration each) and a 3d_cascade_fullres run after it, on four tiny
 * phantoms, in process. The cascade's previous-stage inputs are the lowres predictions of the fold
 * that held each case out, equal to what our Predictor gives for that case and fold; its batches
 * carry them one-hot after the image; its network takes C + K - 1 channels; the run predicts
 * directly; and lowres runs that cannot serve are refused before anything is written. The same
 * with the planner's own 3d_lowres and 3d_cascade_fullres entries (train --configuration), whose
 * export keys each stage by its nnU-Net name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CPU, InputError } from '../core/index.js';
import { writeSynthDataset } from '../synth/index.js';
import { batchSpecFromOptions, CaseStore, checkDatasets, cropSample, makeBatch, planDatasets, previousStageFile, type Plan } from '../data/index.js';
import { listRawCases, readNifti, readNpy } from '../io/index.js';
import { SCRATCH, trainCommand, type TrainCommandOptions } from '../train/index.js';
import { lowresPreviousStage, Predictor, previousStageLabelMap } from '../infer/index.js';
import { PREVIOUS_STAGE_RECORD, readPreviousStageRecord, resolveCheckpoints } from '../checkpoint/index.js';
import { exportNnunet, exportOnnx } from '../export/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cascade-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

/** The shared fixture: dataset, plans, a 2-fold split, the lowres folds and the cascade's fold 0. */
async function fixture() {
  const dataset = at('covid');
  const { caseIds } = await writeSynthDataset({ kind: 'covid', cases: 4, out: dataset, seed: 11, size: 'tiny' });
  const [checked] = await checkDatasets([dataset]);
  const plan = await planDatasets(checked!, 'tiny');
  fs.writeFileSync(at('plan.json'), JSON.stringify(plan));
  // The lowres stage: the same plan at twice the spacing (what planning's 3d_lowres search coarsens).
  const lowres: Plan = { ...plan, configuration: { ...plan.configuration, targetSpacing: plan.configuration.targetSpacing.map((s) => s * 2) as [number, number, number] } };
  fs.writeFileSync(at('lowres-plan.json'), JSON.stringify(lowres));
  const ids = [...caseIds].sort();
  const split = { folds: [{ train: ids.slice(0, 2), test: ids.slice(2) }, { train: ids.slice(2), test: ids.slice(0, 2) }] };
  fs.writeFileSync(at('split.json'), JSON.stringify(split));
  const base = (out: string, planFile: string, fold: number, cache: string): TrainCommandOptions => ({
    dataset, out, strategy: SCRATCH, pretrained: null, split: at('split.json'), fold, validationFraction: 0, preprocessed: cache,
    preset: null, plan: planFile, epochs: 1, iterationsPerEpoch: 1, validationIterations: 0, seed: 0, device: CPU, precision: 'fp32',
    threads: 1, resume: false, force: false, workers: 0,
  });
  for (const fold of [0, 1]) await trainCommand(base(at('lowres', `fold_${fold}`), at('lowres-plan.json'), fold, at('lowres-cache')));
  await trainCommand({ ...base(at('cascade', 'fold_0'), at('plan.json'), 0, at('cascade-cache')), previousStage: lowresPreviousStage(at('lowres')) });
  return { dataset, plan, ids, split, base };
}

/**
 * The exported dataset folder `out`, run as 3d_cascade_fullres, gives the cascade run's mask and
 * probabilities on `raw`. Same options on both sides: no mirroring, every window (nnU-Net models
 * skip none by default); the same float32 weights, plan and operations, so equal to the last bit.
 */
async function assertExportPredictsAsRun(out: string, run: string, raw: ReturnType<typeof listRawCases>[number]): Promise<void> {
  const options = { mirrorAxes: [], skipBackground: false } as const;
  const exported = Predictor.fromCheckpoints(resolveCheckpoints(out, undefined, { configuration: '3d_cascade_fullres' }), { ...options, configuration: '3d_cascade_fullres' });
  const ours = Predictor.fromCheckpoints([path.join(run, 'checkpoint_final.safetensors')], options);
  try {
    assert.equal(exported.engines[0]!.inputChannels, ours.engines[0]!.inputChannels);
    const images = await Promise.all(raw.images.map((file) => readNifti(file)));
    const a = exported.predictCase(images, { probabilities: true });
    const b = ours.predictCase(images, { probabilities: true });
    assert.deepEqual(a.segmentation.data, b.segmentation.data);
    a.probabilities!.forEach((volume, k) => assert.deepEqual(volume.data, b.probabilities![k]!.data, `class ${k}`));
  } finally {
    exported.dispose();
    ours.dispose();
  }
}

let shared: ReturnType<typeof fixture> | null = null;
const setup = () => (shared ??= fixture());

test('the cascade trains on the lowres prediction of the fold that held each case out, as our Predictor gives it', async () => {
  const { dataset, split } = await setup();
  const record = readPreviousStageRecord(at('cascade', 'fold_0'));
  assert.equal(record.configuration, '3d_lowres');
  assert.equal(record.run, at('lowres'));
  // Fold 0 of the cascade trains on fold 0's training cases, which lowres fold 1 held out.
  assert.deepEqual(record.casesByFold, Object.fromEntries(split.folds[0]!.train.map((id) => [id, 1])));
  const runPlan = JSON.parse(fs.readFileSync(at('cascade', 'fold_0', 'plan.json'), 'utf8')) as Plan;
  assert.equal(runPlan.configuration.previousStage, '3d_lowres');
  const predictor = Predictor.fromCheckpoints([at('lowres', 'fold_1', 'checkpoint_final.safetensors')]);
  try {
    for (const raw of listRawCases(dataset).filter((c) => c.id in record.casesByFold)) {
      const images = await Promise.all(raw.images.map((file) => readNifti(file)));
      const expected = previousStageLabelMap(images, predictor.predictCase(images, { caseId: raw.id }).segmentation, runPlan, raw.id).seg!;
      const stored = readNpy(previousStageFile(at('cascade', 'fold_0', 'previous_stage'), raw.id));
      assert.equal(stored.dtype, '|i1');
      assert.deepEqual(stored.data, expected, raw.id);
    }
  } finally {
    predictor.dispose();
  }
  // Resumable: a missing map is predicted again, the others are kept.
  const dir = at('cascade', 'fold_0', 'previous_stage');
  const [first] = Object.keys(record.casesByFold);
  const before = fs.readFileSync(previousStageFile(dir, first!));
  fs.rmSync(previousStageFile(dir, first!));
  const [checked] = await checkDatasets([dataset]);
  assert.equal(await lowresPreviousStage(at('lowres')).prepare(runPlan, checked!, record.casesByFold, dir), 1);
  assert.deepEqual(fs.readFileSync(previousStageFile(dir, first!)), before);
});

test('the cascade network takes the image channels and one per foreground label; its batches carry the previous stage one-hot', async () => {
  const { plan, split } = await setup();
  const sidecar = JSON.parse(fs.readFileSync(at('cascade', 'fold_0', 'checkpoint_final.json'), 'utf8')) as { architecture: { config: { inputChannels: number; numClasses: number } } };
  const { inputChannels, numClasses } = sidecar.architecture.config;
  assert.equal(numClasses, 2);
  assert.equal(inputChannels, plan.configuration.normalization.length + numClasses - 1);
  const runPlan = JSON.parse(fs.readFileSync(at('cascade', 'fold_0', 'plan.json'), 'utf8')) as Plan;
  const spec = batchSpecFromOptions({
    preprocessedDirs: [at('cascade-cache')], caseIds: [split.folds[0]!.train], plan: runPlan, seed: 3, augment: false, oversampleForeground: 0.33, workers: 0,
    previousStage: { dir: at('cascade', 'fold_0', 'previous_stage'), labels: 1 },
  });
  const store = new CaseStore();
  const { batch, record } = makeBatch(spec, 0, store);
  const [b, c, z, y, x] = batch.shape;
  assert.equal(c, inputChannels);
  const voxels = z * y * x;
  // Validation batches (no augmentation): the extra channel is 1 exactly where the cropped previous-stage map says label 1.
  for (let s = 0; s < b; s++) {
    const previous = cropSample(spec, record.samples[s]!, store).previous!;
    const extra = batch.image.subarray((s * c + c - 1) * voxels, (s * c + c) * voxels);
    assert.deepEqual(Array.from(extra), Array.from(previous, (label) => (label === 1 ? 1 : 0)));
  }
});

test('a cascade run predicts directly: its previous stage is the lowres fold of the same number', async () => {
  await setup();
  const predictor = Predictor.fromCheckpoints([at('cascade', 'fold_0', 'checkpoint_final.safetensors')]);
  try {
    assert.ok(predictor.previousStage !== null);
    assert.match(predictor.description, /after/);
  } finally {
    predictor.dispose();
  }
});

test('refused before anything is written: a lowres model without the fold that held a case out, of another dataset or other labels; a cascade plan without --previous-stage', async () => {
  const { plan, ids, base } = await setup();
  fs.mkdirSync(at('only0'));
  fs.cpSync(at('lowres', 'fold_0'), at('only0', 'fold_0'), { recursive: true });
  const source = lowresPreviousStage(at('only0'));
  const name = plan.datasets[0]!.name;
  // Fold 0 held out ids[2], ids[3]; ids[0] needs fold 1.
  assert.throws(() => source.check(plan, name, ids), (e: unknown) => e instanceof InputError && e.code === 'bad-fold' && /no fold held out cases '.*' \(it has fold_0\)/.test(e.message));
  assert.throws(() => source.check(plan, 'Dataset999_Other', ids.slice(2)), (e: unknown) => e instanceof InputError && e.code === 'plan-mismatch' && /trained on dataset/.test(e.message));
  const relabelled: Plan = { ...plan, datasets: [{ ...plan.datasets[0]!, labels: { background: 0, lesion: 1, other: 2 } }] };
  assert.throws(() => source.check(relabelled, name, ids.slice(2)), (e: unknown) => e instanceof InputError && e.code === 'plan-mismatch' && /predicts the labels/.test(e.message));
  const out = at('refused', 'fold_0');
  await assert.rejects(trainCommand({ ...base(out, at('plan.json'), 0, at('refused-cache')), previousStage: source }), (e: unknown) => e instanceof InputError && e.code === 'bad-fold');
  assert.equal(fs.existsSync(path.join(out, PREVIOUS_STAGE_RECORD)), false);
  assert.equal(fs.existsSync(at('refused-cache')), false);
  fs.writeFileSync(at('cascade-plan.json'), fs.readFileSync(at('cascade', 'fold_0', 'plan.json')));
  await assert.rejects(trainCommand(base(at('refused2', 'fold_0'), at('cascade-plan.json'), 0, at('refused2-cache'))), (e: unknown) => e instanceof InputError && /--previous-stage/.test(e.message));
});

test('export --format nnunet of the cascade: one dataset folder with 3d_lowres and 3d_cascade_fullres whose prediction equals the lesionseg runs\'', async () => {
  const { dataset } = await setup();
  const out = at('exported');
  const result = exportNnunet({ run: at('cascade'), out });
  assert.deepEqual(result.folds, [0]);
  assert.deepEqual(fs.readdirSync(out).sort(), ['nnUNetTrainer__nnUNetPlans__3d_cascade_fullres', 'nnUNetTrainer__nnUNetPlans__3d_lowres']);
  const plans = JSON.parse(fs.readFileSync(path.join(out, 'nnUNetTrainer__nnUNetPlans__3d_cascade_fullres', 'plans.json'), 'utf8')) as { configurations: Record<string, Record<string, unknown>> };
  assert.deepEqual(plans.configurations['3d_cascade_fullres'], { inherits_from: '3d_fullres', previous_stage: '3d_lowres' });
  assert.equal(plans.configurations['3d_lowres']!.next_stage, '3d_cascade_fullres');
  const lowresPlan = JSON.parse(fs.readFileSync(at('lowres-plan.json'), 'utf8')) as Plan;
  assert.deepEqual(plans.configurations['3d_lowres']!.spacing, lowresPlan.configuration.targetSpacing);
  assert.equal(fs.readFileSync(path.join(out, 'nnUNetTrainer__nnUNetPlans__3d_lowres', 'plans.json'), 'utf8'), fs.readFileSync(path.join(out, 'nnUNetTrainer__nnUNetPlans__3d_cascade_fullres', 'plans.json'), 'utf8'));

  await assertExportPredictsAsRun(out, at('cascade', 'fold_0'), listRawCases(dataset)[2]!);
});

test('export refuses a cascade whose previous stage lacks its fold, and --format onnx names what it exports', async () => {
  await setup();
  fs.mkdirSync(at('cascade-moved', 'fold_0'), { recursive: true });
  fs.cpSync(at('cascade', 'fold_0'), at('cascade-moved', 'fold_0'), { recursive: true });
  const record = readPreviousStageRecord(at('cascade-moved', 'fold_0'));
  fs.writeFileSync(path.join(at('cascade-moved', 'fold_0'), PREVIOUS_STAGE_RECORD), JSON.stringify({ ...record, run: at('only0-for-export') }));
  fs.mkdirSync(at('only0-for-export'));
  fs.cpSync(at('lowres', 'fold_1'), at('only0-for-export', 'fold_1'), { recursive: true });
  assert.throws(() => exportNnunet({ run: at('cascade-moved'), out: at('not-written') }), (e: unknown) => e instanceof InputError && e.code === 'bad-fold' && /no fold 0 for the cascade's \(it has fold_1\)/.test(e.message));
  assert.equal(fs.existsSync(at('not-written')), false);
  await assert.rejects(exportOnnx(at('cascade', 'fold_0'), at('cascade.onnx')), (e: unknown) => e instanceof InputError && e.code === 'not-exportable'
    && /3d_cascade_fullres stage after '3d_lowres'.*one ONNX model cannot hold; ONNX exports one-stage models \(3d_fullres, 3d_lowres, 2d\): export the cascade with --format nnunet$/.test(e.message));
  assert.equal(fs.existsSync(at('cascade.onnx')), false);
});

test("the planner's own 3d_lowres and 3d_cascade_fullres: lowres folds and the cascade trained by --configuration export as nnU-Net's pair and predict as the runs do", async () => {
  const { dataset, plan, base } = await setup();
  // The tiny preset on these phantoms plans a low resolution, so plan.json lists both stages.
  const planned = plan.configurations?.['3d_lowres'];
  assert.ok(planned !== undefined && plan.configurations?.['3d_cascade_fullres'] !== undefined, 'the plan lists 3d_lowres and 3d_cascade_fullres');
  for (const fold of [0, 1]) await trainCommand({ ...base(at('planned-lowres', `fold_${fold}`), at('plan.json'), fold, at('planned-lowres-cache')), configuration: '3d_lowres' });
  await trainCommand({ ...base(at('planned-cascade', 'fold_0'), at('plan.json'), 0, at('planned-cascade-cache')), configuration: '3d_cascade_fullres', previousStage: lowresPreviousStage(at('planned-lowres')) });
  const runPlan = JSON.parse(fs.readFileSync(at('planned-cascade', 'fold_0', 'plan.json'), 'utf8')) as Plan;
  assert.equal(runPlan.configuration.name, '3d_cascade_fullres');
  assert.equal(runPlan.configuration.previousStage, '3d_lowres');

  const out = at('planned-exported');
  exportNnunet({ run: at('planned-cascade'), out });
  const plans = JSON.parse(fs.readFileSync(path.join(out, 'nnUNetTrainer__nnUNetPlans__3d_cascade_fullres', 'plans.json'), 'utf8')) as { configurations: Record<string, Record<string, unknown>> };
  assert.deepEqual(Object.keys(plans.configurations).sort(), ['3d_cascade_fullres', '3d_fullres', '3d_lowres']);
  assert.deepEqual(plans.configurations['3d_cascade_fullres'], { inherits_from: '3d_fullres', previous_stage: '3d_lowres' });
  assert.deepEqual(plans.configurations['3d_lowres']!.spacing, planned.targetSpacing);
  assert.deepEqual(plans.configurations['3d_fullres']!.spacing, plan.configuration.targetSpacing);

  await assertExportPredictsAsRun(out, at('planned-cascade', 'fold_0'), listRawCases(dataset)[3]!);
});
