/**
 * lesionseg predict on model folders the real nnU-Net v2 trained (issue 23, "Done when"): a small
 * synthetic dataset in nnU-Net's raw layout (synth covid phantoms; labels: the five lobes 1-5 and the
 * infection 6 over them), nnU-Net's own pipeline run from its source on the CPU
 * (nnUNetv2_plan_and_preprocess, nnUNetv2_train -device cpu for 3d_lowres, 3d_cascade_fullres,
 * 3d_fullres and 2d on fold `all`), then nnUNetv2_predict (mirroring on, step 0.5, the network in fp32
 * on the CPU, its window sums in float16 as nnU-Net 2.8.1 keeps them; see bench/nnunet_accumulators.py)
 * and `lesionseg predict` on held-out phantoms, compared mask to mask: % equal voxels and per-label
 * DSC between the two, per configuration and case, with each side's wall seconds. lesionseg runs
 * three ways per configuration: -m the model folder (default flags: adaptive mirroring), -m the
 * nnUNet_results dataset folder with --configuration, and -m the model folder with --tta full
 * (nnU-Net's every-window mirroring); and an ensemble of 2d and 3d_fullres (-m A -m B) against
 * nnUNetv2_ensemble.
 *
 * How nnU-Net runs here without what Debian lacks (all written into the work folder at run time,
 * nothing of nnU-Net committed):
 * - bench/nnunet-source.ts's sitecustomize.py (stand-ins for blosc2, SimpleITK, ...; version shims for
 *   torch 1.13 and acvl_utils 0.2.5; torch's threads capped at --threads, lesionseg given the same).
 * - Preprocessed data stored as nnU-Net's own numpy format (nnUNetDatasetNumpy, .npz + .pkl) instead
 *   of blosc2: a module imported before nnUNetv2_preprocess's entry point makes the plans'
 *   DefaultPreprocessor a subclass whose run_case_save stores run_case's arrays with
 *   nnUNetDatasetNumpy.save_case (preprocessing itself unchanged; plans.json still names
 *   DefaultPreprocessor). nnU-Net's trainer infers the numpy dataset class from the files, and writes
 *   the 3d_lowres predictions for the cascade (predicted_next_stage) in the same format.
 * - The trainer, nnUNetTrainer_lesionsegBench, found through nnU-Net's nnUNet_extTrainer: nnU-Net's
 *   nnUNetTrainerNoDeepSupervision (at this size nnU-Net plans 2-stage networks, whose deep
 *   supervision weights nnUNetTrainer makes 0/0 = NaN: every loss NaN) with --epochs epochs of
 *   --iterations iterations (--val-iterations validation ones), whose final validation runs only
 *   where a next stage needs its predictions (3d_lowres on fold all predicts every training case for
 *   the cascade, as nnU-Net's own validation does). The network and checkpoint are nnUNetTrainer's.
 * - Small and cheap: the tiny phantom (32x64x64) subsampled 2x in-plane (32x32x32, ~10 x 12 x 12 mm;
 *   nnU-Net transposes it to put the coarsest axis first), since a shared 2-core CPU runs even these
 *   networks at tens of ms per window. nnU-Net plans a 3d_lowres only when the 3d_fullres patch
 *   covers under a quarter of the median image and the lowres image has under half its voxels; at this
 *   size that takes a small patch: --gpu-memory-target (GB, nnUNetv2_plan_and_preprocess's
 *   -gpu_memory_target) 0.01 gives the 3d_fullres patch 16x14x14 and a 3d_lowres at 1.4x the spacing.
 * --work DIR keeps everything there and reuses what is done (the dataset, plans, preprocessed data,
 * trained folds, nnU-Net's predictions); without it a temporary folder is removed at the end.
 * Usage: npx tsx bench/nnunet-trained.ts --nnunet-src DIR [--work DIR] [--cases 6] [--test-cases 2]
 *        [--epochs 8] [--iterations 40] [--val-iterations 4] [--gpu-memory-target 0.01] [--threads 1]
 *        [--subsample 1,2,2] [--configurations 2d,3d_fullres,3d_lowres,3d_cascade_fullres] [--plan-only] [--python /usr/bin/python3] [--out FILE]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo, type Affine, type Shape3, type Volume } from '../src/core/index.js';
import { generatePhantom, LOBE_LABEL } from '../src/synth/index.js';
import { readNifti, writeNifti } from '../src/io/index.js';
import { args, ints, option, report } from './support.js';
import { nnunetEnvironment, nnunetSource, refuse as refuseAs, sourceVersions } from './nnunet-source.js';

const SCRIPT = 'bench/nnunet-trained';
const refuse = (message: string): never => refuseAs(SCRIPT, message);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin/lesionseg.js');
const { source, python } = nnunetSource(SCRIPT);

function count(name: string, fallback: string, minimum: number): number {
  const value = Number(option(name, fallback));
  if (!Number.isInteger(value) || value < minimum) refuse(`--${name} ${option(name, fallback)}: an integer >= ${minimum}`);
  return value;
}
const cases = count('cases', '6', 2);
const testCases = count('test-cases', '2', 1);
const epochs = count('epochs', '8', 1);
const iterations = count('iterations', '40', 1);
const valIterations = count('val-iterations', '4', 1);
const threads = count('threads', '1', 1);
// Every k-th voxel along each axis (Z,Y,X) of the tiny phantom (32x64x64): 1,2,2 gives 32x32x32.
const subsample = ints(option('subsample', '1,2,2'));
if (subsample.length !== 3 || subsample.some((k) => !Number.isInteger(k) || k < 1)) refuse(`--subsample ${option('subsample', '1,2,2')}: three positive integers Z,Y,X`);
const gpuTarget = Number(option('gpu-memory-target', '0.01'));
if (!(gpuTarget > 0)) refuse(`--gpu-memory-target ${option('gpu-memory-target', '0.01')}: a positive number of GB`);
const ALL = ['3d_lowres', '3d_cascade_fullres', '3d_fullres', '2d'];
const wanted = option('configurations', ALL.join(',')).split(',');
for (const name of wanted) if (!ALL.includes(name)) refuse(`--configurations: '${name}' is not one of ${ALL.join(', ')}`);
if (wanted.includes('3d_cascade_fullres') && !wanted.includes('3d_lowres')) refuse('--configurations: 3d_cascade_fullres needs 3d_lowres');
const configurations = ALL.filter((name) => wanted.includes(name));

const DATASET_ID = 977;
const DATASET = `Dataset${DATASET_ID}_LesionsegLobes`;
const TRAINER = 'nnUNetTrainer_lesionsegBench';
const LABELS: Record<string, number> = { background: 0, ...LOBE_LABEL, infection: 6 };

const workOption = option('work', '');
const work = workOption === '' ? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nnunet-trained-')) : path.resolve(workOption);
fs.mkdirSync(path.join(work, 'logs'), { recursive: true });

/** nnU-Net's preprocessing stored as its numpy dataset format (see the comment at the top). */
const NUMPY_STORAGE = `# Written by lesionseg's bench/nnunet-trained.ts: nnU-Net's DefaultPreprocessor, storing run_case's
# arrays with nnUNetDatasetNumpy.save_case (.npz + .pkl) instead of blosc2, which Debian lacks.
import numpy as np
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetNumpy
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager

class NumpyStoringPreprocessor(DefaultPreprocessor):
    def run_case_save(self, output_filename_truncated, image_files, seg_file, plans_manager, configuration_manager, dataset_json):
        data, seg, properties = self.run_case(image_files, seg_file, plans_manager, configuration_manager, dataset_json)
        nnUNetDatasetNumpy.save_case(data.astype(np.float32, copy=False), seg.astype(np.int16, copy=False), properties, output_filename_truncated)

_planned = ConfigurationManager.preprocessor_class
def _numpy_storing(self):
    chosen = _planned.fget(self)
    if chosen is not DefaultPreprocessor: raise RuntimeError(f'{chosen.__name__}: only DefaultPreprocessor is stored as numpy by the lesionseg bench')
    return NumpyStoringPreprocessor
ConfigurationManager.preprocessor_class = property(_numpy_storing)
`;

const TRAINER_MODULE = `# Written by lesionseg's bench/nnunet-trained.ts: nnU-Net's nnUNetTrainerNoDeepSupervision on a short
# schedule; the final validation runs only where a next stage (the cascade) needs its predictions.
import torch
from nnunetv2.training.nnUNetTrainer.variants.network_architecture.nnUNetTrainerNoDeepSupervision import nnUNetTrainerNoDeepSupervision

class ${TRAINER}(nnUNetTrainerNoDeepSupervision):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = ${epochs}
        self.num_iterations_per_epoch = ${iterations}
        self.num_val_iterations_per_epoch = ${valIterations}

    def perform_actual_validation(self, save_probabilities: bool = False):
        if self.configuration_manager.next_stage_names is None:
            self.print_to_log_file('lesionseg bench: final validation skipped (no next stage needs its predictions)')
            return
        super().perform_actual_validation(save_probabilities)
`;

/** Every `subsample`-th voxel along each axis, from the first; the affine's columns scaled, its origin kept. */
function subsampled<T extends Int16Array | Uint8Array>(volume: Volume<T>): Volume<T> {
  const [Z, Y, X] = volume.shape;
  const [kz, ky, kx] = subsample as [number, number, number];
  const shape = volume.shape.map((n, axis) => Math.ceil(n / subsample[axis]!)) as Shape3;
  const data = new (volume.data.constructor as new (n: number) => T)(shape[0] * shape[1] * shape[2]);
  let k = 0;
  for (let z = 0; z < Z; z += kz) for (let y = 0; y < Y; y += ky) for (let x = 0; x < X; x += kx) data[k++] = volume.data[(z * Y + y) * X + x]!;
  // Affine columns are voxel x, y, z.
  const affine = volume.affine.map((row) => [row[0]! * kx, row[1]! * ky, row[2]! * kz, row[3]!]) as Affine;
  return { data, shape, spacing: volume.spacing.map((s, axis) => s * subsample[axis]!) as Shape3, affine };
}

/** Run a command, its output into logs/`label`.log; resolves to its wall seconds, rejects with the log's tail. */
function run(label: string, command: string, argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const log = path.join(work, 'logs', `${label}.log`);
  process.stderr.write(`${SCRIPT}: ${label} ...\n`);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const out = fs.openSync(log, 'w');
    const child = spawn(command, argv, { env, stdio: ['ignore', out, out] });
    child.on('error', reject);
    child.on('close', (code) => {
      fs.closeSync(out);
      const seconds = (performance.now() - started) / 1000;
      if (code === 0) return resolve(seconds);
      const text = fs.readFileSync(log, 'utf8');
      reject(new Error(`${label}: ${command} ${argv.join(' ')} exited ${code}:\n${text.slice(-4000)}`));
    });
  });
}

const pythonMain = (entry: string) => ['-c', `from ${entry.split(':')[0]} import ${entry.split(':')[1]} as entry; entry()`];
const raw = path.join(work, 'raw', DATASET);
const pre = path.join(work, 'pre', DATASET);
const results = path.join(work, 'results', DATASET);
const timesFile = path.join(work, 'seconds.json');
const seconds: Record<string, number> = fs.existsSync(timesFile) ? JSON.parse(fs.readFileSync(timesFile, 'utf8')) as Record<string, number> : {};
const timed = async (label: string, command: string, argv: string[], env: NodeJS.ProcessEnv) => {
  seconds[label] = await run(label, command, argv, env);
  fs.writeFileSync(timesFile, JSON.stringify(seconds, null, 1));
};

try {
  // 1. The dataset: cases 0..N-1 train, the next ones held out (imagesTs, labelsTs).
  const caseId = (index: number) => `case_${String(index).padStart(3, '0')}`;
  const held = Array.from({ length: testCases }, (_, k) => caseId(cases + k));
  if (!fs.existsSync(path.join(raw, 'dataset.json'))) {
    for (const folder of ['imagesTr', 'labelsTr', 'imagesTs', 'labelsTs']) fs.mkdirSync(path.join(raw, folder), { recursive: true });
    for (let index = 0; index < cases + testCases; index++) {
      const phantom = generatePhantom('covid', { seed: 0, size: 'tiny', caseIndex: index });
      const labels = new Uint8Array(phantom.lobes.data.length);
      for (let k = 0; k < labels.length; k++) labels[k] = phantom.label.data[k] ? LABELS.infection! : phantom.lobes.data[k]!;
      const split = index < cases ? 'Tr' : 'Ts';
      await writeNifti(path.join(raw, `images${split}`, `${caseId(index)}_0000.nii.gz`), subsampled(phantom.image), { datatype: 'int16' });
      await writeNifti(path.join(raw, `labels${split}`, `${caseId(index)}.nii.gz`), subsampled({ ...phantom.lobes, data: labels }), { datatype: 'uint8' });
    }
    fs.writeFileSync(path.join(raw, 'dataset.json'), JSON.stringify({
      channel_names: { 0: 'CT' }, labels: LABELS, numTraining: cases, file_ending: '.nii.gz',
      description: `lesionseg synth covid tiny, seed 0: lobes 1-5, infection 6 (bench/nnunet-trained.ts)`,
    }, null, 1));
  }

  // 2. What nnU-Net runs with.
  const py = path.join(work, 'py');
  const trainers = path.join(work, 'trainers');
  fs.mkdirSync(py, { recursive: true });
  fs.mkdirSync(trainers, { recursive: true });
  fs.writeFileSync(path.join(py, 'lesionseg_numpy_storage.py'), NUMPY_STORAGE);
  fs.writeFileSync(path.join(trainers, 'lesionseg_bench_trainer.py'), TRAINER_MODULE);
  const env = { ...nnunetEnvironment(work, source, threads, [py], true), nnUNet_compile: 'false', nnUNet_def_n_proc: '1', nnUNet_extTrainer: trainers };
  // nnUNet_n_proc_DA 0: augmentation in the training process (the planner needs it unset).
  const trainEnv = { ...env, nnUNet_n_proc_DA: '0' };

  // 3. Planning (fingerprint + plans), then preprocessing stored as numpy.
  const plansFile = path.join(pre, 'nnUNetPlans.json');
  if (!fs.existsSync(plansFile)) {
    await timed('plan', python, [...pythonMain('nnunetv2.experiment_planning.plan_and_preprocess_entrypoints:plan_and_preprocess_entry'),
      '-d', String(DATASET_ID), '--no_pp', '-npfp', '1', '-gpu_memory_target', String(gpuTarget), '--no_pbar'], env);
  }
  const plans = JSON.parse(fs.readFileSync(plansFile, 'utf8')) as { configurations: Record<string, { patch_size?: number[]; spacing?: number[]; batch_size?: number; inherits_from?: string }> };
  if (args.includes('--plan-only')) {
    for (const [name, c] of Object.entries(plans.configurations)) process.stdout.write(`${name}: ${JSON.stringify({ patch_size: c.patch_size, spacing: c.spacing, batch_size: c.batch_size, inherits_from: c.inherits_from })}\n`);
    process.exit(0);
  }
  const missingPlans = configurations.filter((name) => plans.configurations[name] === undefined);
  if (missingPlans.length > 0) refuse(`nnU-Net planned no ${missingPlans.join(', ')} for this dataset at --gpu-memory-target ${gpuTarget} (${plansFile}); a smaller target gives a smaller 3d_fullres patch`);
  const toPreprocess = ['2d', '3d_fullres', '3d_lowres'].filter((name) => configurations.includes(name) || (name === '3d_fullres' && configurations.includes('3d_cascade_fullres')))
    .filter((name) => !fs.existsSync(path.join(pre, `nnUNetPlans_${name}`, `${caseId(cases - 1)}.pkl`)));
  if (toPreprocess.length > 0) {
    await timed('preprocess', python, ['-c', 'import lesionseg_numpy_storage; from nnunetv2.experiment_planning.plan_and_preprocess_entrypoints import preprocess_entry as entry; entry()',
      '-d', String(DATASET_ID), '-c', ...toPreprocess, '-np', '1', '--no_pbar'], env);
  }

  // 4. Training on fold all, the 3d_lowres first (its validation writes predicted_next_stage for the cascade).
  const modelFolder = (configuration: string) => path.join(results, `${TRAINER}__nnUNetPlans__${configuration}`);
  for (const configuration of configurations) {
    if (fs.existsSync(path.join(modelFolder(configuration), 'fold_all', 'checkpoint_final.pth'))) continue;
    await timed(`train_${configuration}`, python, [...pythonMain('nnunetv2.run.run_training:run_training_entry'),
      String(DATASET_ID), configuration, 'all', '-tr', TRAINER, '-device', 'cpu'], trainEnv);
  }

  // 5. nnUNetv2_predict on the held-out images (2d and 3d_fullres also save probabilities for the ensemble).
  const imagesTs = path.join(raw, 'imagesTs');
  const predictions = path.join(work, 'predictions');
  const complete = (folder: string) => held.every((id) => fs.existsSync(path.join(folder, `${id}.nii.gz`)));
  const ensemble = configurations.includes('2d') && configurations.includes('3d_fullres');
  for (const configuration of configurations) {
    const out = path.join(predictions, 'nnunet', configuration);
    if (complete(out) && seconds[`nnunet_${configuration}`] !== undefined) continue;
    fs.rmSync(out, { recursive: true, force: true });
    await timed(`nnunet_${configuration}`, python, [...pythonMain('nnunetv2.inference.predict_from_raw_data:predict_entry_point'),
      '-i', imagesTs, '-o', out, '-d', String(DATASET_ID), '-c', configuration, '-f', 'all', '-tr', TRAINER, '-device', 'cpu',
      '-npp', '1', '-nps', '1', '--disable_progress_bar',
      ...(ensemble && (configuration === '2d' || configuration === '3d_fullres') ? ['--save_probabilities'] : []),
      ...(configuration === '3d_cascade_fullres' ? ['-prev_stage_predictions', path.join(predictions, 'nnunet', '3d_lowres')] : [])], env);
  }
  if (ensemble && !(complete(path.join(predictions, 'nnunet', 'ensemble')) && seconds.nnunet_ensemble !== undefined)) {
    await timed('nnunet_ensemble', python, [...pythonMain('nnunetv2.ensembling.ensemble:entry_point_ensemble_folders'),
      '-i', path.join(predictions, 'nnunet', '2d'), path.join(predictions, 'nnunet', '3d_fullres'), '-o', path.join(predictions, 'nnunet', 'ensemble'), '-np', '1'], env);
  }

  // 6. lesionseg predict, three ways per configuration, and the ensemble.
  const ours = { ...process.env };
  const WAYS: Record<string, (configuration: string) => string[]> = {
    model_folder: (c) => ['-m', modelFolder(c), '--configuration', c],
    dataset_folder: (c) => ['-m', results, '--configuration', c],
    model_folder_tta_full: (c) => ['-m', modelFolder(c), '--configuration', c, '--tta', 'full'],
  };
  const lesionsegRuns: { name: string; configuration: string; way: string; argv: string[] }[] = [];
  for (const configuration of configurations) {
    for (const [way, argv] of Object.entries(WAYS)) lesionsegRuns.push({ name: `${configuration}_${way}`, configuration, way, argv: argv(configuration) });
  }
  if (ensemble) {
    lesionsegRuns.push({ name: 'ensemble_model_folders', configuration: 'ensemble', way: 'model_folders', argv: ['-m', modelFolder('2d'), '-m', modelFolder('3d_fullres')] });
    lesionsegRuns.push({ name: 'ensemble_model_folders_tta_full', configuration: 'ensemble', way: 'model_folders_tta_full', argv: ['-m', modelFolder('2d'), '-m', modelFolder('3d_fullres'), '--tta', 'full'] });
  }
  for (const job of lesionsegRuns) {
    const out = path.join(predictions, 'lesionseg', job.name);
    fs.rmSync(out, { recursive: true, force: true });
    await timed(`lesionseg_${job.name}`, process.execPath, [cli, 'predict', ...job.argv, '-i', imagesTs, '-o', out, '--device', 'cpu', '--threads', String(threads)], ours);
  }

  // 7. Mask against mask.
  const top = Math.max(...Object.values(LABELS));
  const compare = async (reference: string, mask: string) => {
    const a = await readNifti(reference);
    const b = await readNifti(mask);
    if (a.shape.join() !== b.shape.join()) throw new Error(`${mask}: shape ${b.shape.join('x')}, the reference's ${a.shape.join('x')}`);
    let equal = 0;
    const inA = new Float64Array(top + 1);
    const inB = new Float64Array(top + 1);
    const inBoth = new Float64Array(top + 1);
    for (let i = 0; i < a.data.length; i++) {
      const x = Number(a.data[i]);
      const y = Number(b.data[i]);
      inA[x]! += 1;
      inB[y]! += 1;
      if (x === y) { equal++; inBoth[x]! += 1; }
    }
    const dsc: Record<string, number | null> = {};
    for (const [name, value] of Object.entries(LABELS)) {
      if (value !== 0) dsc[name] = inA[value]! + inB[value]! === 0 ? null : (2 * inBoth[value]!) / (inA[value]! + inB[value]!);
    }
    return { equal_voxels_percent: (100 * equal) / a.data.length, differing_voxels: a.data.length - equal, voxels: a.data.length, dsc_per_label: dsc };
  };
  const comparisons: Record<string, unknown> = {};
  for (const job of lesionsegRuns) {
    const perCase: Record<string, unknown> = {};
    for (const id of held) perCase[id] = await compare(path.join(predictions, 'nnunet', job.configuration, `${id}.nii.gz`), path.join(predictions, 'lesionseg', job.name, `${id}.nii.gz`));
    comparisons[job.name] = {
      configuration: job.configuration, lesionseg_args: job.argv.map((a) => a.startsWith(work) ? path.relative(work, a) : a).join(' '),
      nnunet_wall_seconds: seconds[`nnunet_${job.configuration}`], lesionseg_wall_seconds: seconds[`lesionseg_${job.name}`],
      min_equal_voxels_percent: Math.min(...Object.values(perCase).map((c) => (c as { equal_voxels_percent: number }).equal_voxels_percent)),
      cases: perCase,
    };
  }
  // How the trained models do against the phantoms' truth (nnU-Net's masks): weak models, as expected.
  const truth: Record<string, unknown> = {};
  for (const configuration of [...configurations, ...(ensemble ? ['ensemble'] : [])]) {
    truth[configuration] = Object.fromEntries(await Promise.all(held.map(async (id) => [id,
      (await compare(path.join(raw, 'labelsTs', `${id}.nii.gz`), path.join(predictions, 'nnunet', configuration, `${id}.nii.gz`))).dsc_per_label])));
  }
  const planned = Object.fromEntries(configurations.map((name) => {
    const c = plans.configurations[name]!;
    const parent = c.inherits_from ? plans.configurations[c.inherits_from]! : {};
    return [name, { patch_size: c.patch_size ?? parent.patch_size, spacing: c.spacing ?? parent.spacing, batch_size: c.batch_size ?? parent.batch_size }];
  }));
  report({
    benchmark: 'nnunet-trained',
    cpu: cpuInfo(),
    load_average_at_end: os.loadavg(),
    nnunet_sources: sourceVersions(source),
    dataset: { name: DATASET, training_cases: cases, held_out: held, image: `synth covid tiny (32x64x64), seed 0, case index = number, every ${subsample.join(',')}th voxel along z,y,x`, labels: LABELS },
    training: { trainer: TRAINER, fold: 'all', epochs, iterations_per_epoch: iterations, val_iterations_per_epoch: valIterations, gpu_memory_target_gb: gpuTarget, wall_seconds: Object.fromEntries(configurations.map((c) => [c, seconds[`train_${c}`]])) },
    plans: planned,
    config: { threads, nnunet: '-device cpu -f all -npp 1 -nps 1 (mirroring on, step 0.5, fp32)', lesionseg: `--device cpu --threads ${threads}, default flags otherwise`, args: args.join(' ') },
    comparisons,
    nnunet_dsc_against_truth: truth,
  });
} finally {
  if (workOption === '') fs.rmSync(work, { recursive: true, force: true });
}
