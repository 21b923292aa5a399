/**
 * By hand (issue 23 part 2): a lesionseg cascade exported with `export --format nnunet` runs in
 * nnU-Net v2's own predictor and gives our masks. Four synth phantoms; a 3d_lowres stage (the
 * planned `tiny` plan at twice the spacing, two folds of a 2-fold split) and a 3d_cascade_fullres
 * fold 0 after it, each trained for --iterations iterations through the CLI (`train --configuration
 * 3d_cascade_fullres --previous-stage LOWRES`; --cascade-iterations for the cascade); the pair exported into one dataset folder; then on
 * every case nnU-Net's `nnUNetv2_predict_from_modelfolder` runs 3d_lowres and then
 * 3d_cascade_fullres with -prev_stage_predictions (its cascade path), and `lesionseg predict -m
 * FOLDER --configuration 3d_lowres|3d_cascade_fullres --tta full` runs the same folder (nnU-Net's 8
 * mirrored passes, every window). Reported per stage and case: the fraction of equal voxels, the
 * foreground voxels of each side, and the differences of the class probabilities (max, 99th
 * percentile, median over voxels and classes; the largest sit at the volume's corners).
 * nnU-Net's sources are not part of lesionseg: --nnunet-src DIR names the folder holding nnUNet,
 * batchgeneratorsv2, batchgenerators, dynamic-network-architectures and acvl_utils; modules its
 * predict path imports but never calls and Debian lacks are stood in for as
 * bench/nnunet-source.ts provides (a sitecustomize.py in the run's temporary folder).
 * Usage: npx tsx bench/nnunet-cascade.ts --nnunet-src DIR [--iterations 3] [--cascade-iterations N] [--python /usr/bin/python3] [--out FILE]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { writeSynthDataset } from '../src/synth/index.js';
import { checkDatasets, planDatasets, type Plan } from '../src/data/index.js';
import { readNifti } from '../src/io/index.js';
import { args, option, report } from './support.js';
import { nnunetEnvironment, nnunetSource } from './nnunet-source.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin/lesionseg.js');

const { source, python } = nnunetSource('bench/nnunet-cascade');
const iterations = option('iterations', '3');
const cascadeIterations = option('cascade-iterations', iterations);


const lesionseg = (...argv: string[]): string => execFileSync(process.execPath, [cli, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nnunet-cascade-'));
try {
  const dataset = path.join(dir, 'covid');
  const { caseIds } = await writeSynthDataset({ kind: 'covid', cases: 4, out: dataset, seed: 11, size: 'tiny' });
  const [checked] = await checkDatasets([dataset]);
  const plan = await planDatasets(checked!, 'tiny');
  const lowresPlan: Plan = { ...plan, configuration: { ...plan.configuration, targetSpacing: plan.configuration.targetSpacing.map((s) => s * 2) as [number, number, number] } };
  fs.writeFileSync(path.join(dir, 'plan.json'), JSON.stringify(plan));
  fs.writeFileSync(path.join(dir, 'lowres-plan.json'), JSON.stringify(lowresPlan));
  const ids = [...caseIds].sort();
  fs.writeFileSync(path.join(dir, 'split.json'), JSON.stringify({ folds: [{ train: ids.slice(0, 2), test: ids.slice(2) }, { train: ids.slice(2), test: ids.slice(0, 2) }] }));
  const common = ['--dataset', dataset, '--split', path.join(dir, 'split.json'), '--epochs', '1', '--val-iters', '0', '--workers', '0'];
  for (const fold of ['0', '1']) {
    process.stderr.write(`bench/nnunet-cascade: 3d_lowres fold ${fold} ...\n`);
    lesionseg('train', ...common, '--iters-per-epoch', iterations, '--plan', path.join(dir, 'lowres-plan.json'), '--fold', fold, '--out', path.join(dir, 'lowres', `fold_${fold}`), '--preprocessed', path.join(dir, 'lowres-cache'));
  }
  process.stderr.write('bench/nnunet-cascade: 3d_cascade_fullres fold 0 ...\n');
  lesionseg('train', ...common, '--iters-per-epoch', cascadeIterations, '--plan', path.join(dir, 'plan.json'), '--fold', '0', '--out', path.join(dir, 'cascade', 'fold_0'), '--configuration', '3d_cascade_fullres', '--previous-stage', path.join(dir, 'lowres'));
  const exported = path.join(dir, 'results', plan.datasets[0]!.name);
  fs.mkdirSync(path.dirname(exported));
  lesionseg('export', path.join(dir, 'cascade'), '--format', 'nnunet', '--out', exported);

  const input = path.join(dir, 'in');
  fs.mkdirSync(input);
  for (const id of ids) fs.copyFileSync(path.join(dataset, 'imagesTr', `${id}_0000.nii.gz`), path.join(input, `${id}_0000.nii.gz`));

  const env = nnunetEnvironment(dir, source, 2);
  const nnunet = (configuration: string, out: string, extra: string[] = []): void => {
    process.stderr.write(`bench/nnunet-cascade: nnUNetv2_predict_from_modelfolder ${configuration} ...\n`);
    execFileSync(python, ['-c', 'from nnunetv2.inference.predict_from_raw_data import predict_entry_point_modelfolder as m; m()',
      '-i', input, '-o', out, '-m', path.join(exported, `nnUNetTrainer__nnUNetPlans__${configuration}`), '-f', '0', '-device', 'cpu', '-npp', '1', '-nps', '1', '--disable_progress_bar', '--save_probabilities', ...extra],
    { env, stdio: ['ignore', 'ignore', 'inherit'] });
  };
  nnunet('3d_lowres', path.join(dir, 'nnunet-lowres'));
  nnunet('3d_cascade_fullres', path.join(dir, 'nnunet-cascade'), ['-prev_stage_predictions', path.join(dir, 'nnunet-lowres')]);
  for (const configuration of ['3d_lowres', '3d_cascade_fullres']) {
    process.stderr.write(`bench/nnunet-cascade: lesionseg predict ${configuration} ...\n`);
    lesionseg('predict', '-m', exported, '--configuration', configuration, '-i', input, '-o', path.join(dir, `ours-${configuration}`), '--tta', 'full', '--device', 'cpu', '--save-probabilities');
  }

  const stages: Record<string, Record<string, { equal_voxels_fraction: number; foreground_nnunet: number; foreground_lesionseg: number }>> = {};
  for (const [configuration, theirs] of [['3d_lowres', 'nnunet-lowres'], ['3d_cascade_fullres', 'nnunet-cascade']] as const) {
    stages[configuration] = {};
    for (const id of ids) {
      const reference = await readNifti(path.join(dir, theirs, `${id}.nii.gz`));
      const ours = await readNifti(path.join(dir, `ours-${configuration}`, `${id}.nii.gz`));
      let same = 0;
      let fgTheirs = 0;
      let fgOurs = 0;
      for (let i = 0; i < ours.data.length; i++) {
        if (Number(ours.data[i]) === Number(reference.data[i])) same++;
        if (Number(reference.data[i]) !== 0) fgTheirs++;
        if (Number(ours.data[i]) !== 0) fgOurs++;
      }
      stages[configuration]![id] = { equal_voxels_fraction: same / ours.data.length, foreground_nnunet: fgTheirs, foreground_lesionseg: fgOurs };
    }
  }
  // nnU-Net's probabilities (.npz, [K, z, y, x] in the reader's array order) against ours (one NIfTI per class), by python3 + numpy + nibabel.
  const PROBABILITIES = `import json, sys, numpy as np, nibabel as nib
out = {}
for stage, theirs, ours, case in json.loads(sys.argv[1]):
    p = np.load(theirs)['probabilities'].astype(np.float64)
    d = np.stack([np.abs(p[k] - np.asarray(nib.load(ours % k).dataobj, dtype=np.float64).transpose(2, 1, 0)) for k in range(p.shape[0])])
    out.setdefault(stage, {})[case] = {'max': float(d.max()), 'p99': float(np.percentile(d, 99)), 'median': float(np.median(d))}
print(json.dumps(out))`;
  const pairs = (['3d_lowres', '3d_cascade_fullres'] as const).flatMap((configuration) => ids.map((id) => [configuration, path.join(dir, configuration === '3d_lowres' ? 'nnunet-lowres' : 'nnunet-cascade', `${id}.npz`), path.join(dir, `ours-${configuration}`, `${id}_probabilities_%d.nii.gz`), id]));
  const probabilityDiffs = JSON.parse(execFileSync(python, ['-c', PROBABILITIES, JSON.stringify(pairs)], { encoding: 'utf8' })) as Record<string, Record<string, unknown>>;
  for (const [configuration, cases] of Object.entries(probabilityDiffs)) for (const [id, diff] of Object.entries(cases)) (stages[configuration]![id] as Record<string, unknown>).abs_probability_difference = diff;
  report({
    benchmark: 'nnunet-cascade',
    cpu: cpuInfo(),
    load_average_at_end: os.loadavg(),
    dataset: 'synth --kind covid --size tiny --seed 11, 4 cases',
    training: { lowres: `tiny plan at twice the target spacing (${lowresPlan.configuration.targetSpacing.join(', ')} mm), folds 0 and 1 of a 2-fold split`, cascade: `tiny plan (${plan.configuration.targetSpacing.join(', ')} mm), fold 0`, iterations: { lowres: Number(iterations), cascade: Number(cascadeIterations) } },
    nnunet: 'nnUNetv2_predict_from_modelfolder -f 0 -device cpu: 3d_lowres, then 3d_cascade_fullres -prev_stage_predictions (mirroring on, step 0.5)',
    lesionseg: 'predict -m EXPORTED_FOLDER --configuration 3d_lowres | 3d_cascade_fullres --tta full',
    stages,
    min_equal_voxels_fraction: Math.min(...Object.values(stages).flatMap((s) => Object.values(s).map((c) => c.equal_voxels_fraction))),
    args: args.join(' '),
  });
} finally {
  if (!args.includes('--keep')) fs.rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`bench/nnunet-cascade: kept ${dir}\n`);
}
