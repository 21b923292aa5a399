/**
 * Our 2d and 3d_lowres exports in nnU-Net's own predictor (issue 23 part 2): one `synth` phantom
 * dataset, a short run of the `tiny` preset per configuration (`train --configuration 2d` and
 * `--configuration 3d_lowres`), each exported with `export --format nnunet`; then every case is
 * predicted three ways, all in fp32 on the CPU with every window mirrored over the model's axes:
 * nnU-Net v2's `nnUNetv2_predict_from_modelfolder` (its source, run by Debian's python3 +
 * python3-torch) on the exported folder, `lesionseg predict -m EXPORTED --configuration C`, and
 * `lesionseg predict -m RUN` (the run itself). The report gives per case and configuration the
 * fraction of voxels on which the masks agree, the foreground voxels of each, and the largest
 * difference between nnU-Net's softmax probabilities (`--save_probabilities`, its .npz) and ours
 * from the export (`--save-probabilities`), read by a few lines of numpy/nibabel below.
 * nnU-Net's sources are not part of lesionseg: --nnunet-src DIR names the folder holding nnUNet,
 * batchgeneratorsv2, batchgenerators, dynamic-network-architectures and acvl_utils; the modules it
 * imports but never calls here are stood in for as bench/nnunet-source.ts says.
 * Usage: npx tsx bench/nnunet-export-configurations.ts --nnunet-src DIR [--cases 2] [--epochs 2]
 *        [--iters 10] [--threads 2] [--python /usr/bin/python3] [--out FILE]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { readNifti } from '../src/io/index.js';
import { writeSynthDataset } from '../src/synth/index.js';
import { nnunetEnvironment, nnunetSource, threadEnvironment } from './nnunet-source.js';
import { option, report } from './support.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin/lesionseg.js');
const CONFIGURATIONS = ['2d', '3d_lowres'] as const;

const SCRIPT = 'bench/nnunet-export-configurations';
const { source, python } = nnunetSource(SCRIPT);
const cases = Number(option('cases', '2'));
const epochs = option('epochs', '2');
const iterations = option('iters', '10');
const threads = option('threads', '2');

/** Largest |p_nnunet - p_ours| per case over classes and voxels: nnU-Net's <case>.npz [C, z, y, x] and our <case>_probabilities_<k>.nii.gz (NIfTI i, j, k = x, y, z). */
const COMPARE_PROBABILITIES = `
import glob, json, os, sys
import nibabel, numpy as np
theirs, ours = sys.argv[1], sys.argv[2]
out = {}
for npz in sorted(glob.glob(os.path.join(theirs, '*.npz'))):
    case = os.path.basename(npz)[:-4]
    p = np.load(npz)['probabilities'].astype(np.float64)
    q = np.stack([np.asarray(nibabel.load(os.path.join(ours, f'{case}_probabilities_{k}.nii.gz')).dataobj, dtype=np.float64).transpose(2, 1, 0) for k in range(p.shape[0])])
    out[case] = {'max_abs_difference': float(np.abs(p - q).max()), 'foreground_probability_max': float(p[1:].max())}
print(json.dumps(out))
`;

const run = (command: string, argv: string[], env: NodeJS.ProcessEnv = process.env): void => {
  execFileSync(command, argv, { stdio: ['ignore', 'ignore', 'inherit'], env });
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nnunet-export-'));
try {
  const dataset = path.join(dir, 'ds');
  await writeSynthDataset({ kind: 'covid', cases, out: dataset, seed: 3, size: 'tiny' });
  const input = path.join(dataset, 'imagesTr');
  const caseIds = fs.readdirSync(input).filter((f) => f.endsWith('_0000.nii.gz')).map((f) => f.slice(0, -'_0000.nii.gz'.length)).sort();
  const threadEnv = threadEnvironment(Number(threads));
  const nnunetEnv = nnunetEnvironment(dir, source, Number(threads));
  const results: Record<string, unknown> = {};
  for (const configuration of CONFIGURATIONS) {
    process.stderr.write(`bench/nnunet-export-configurations: ${configuration}: train, export, predict ...\n`);
    const runDir = path.join(dir, `run-${configuration}`);
    const model = path.join(dir, `model-${configuration}`);
    run(process.execPath, [cli, 'train', '--dataset', dataset, '--out', runDir, '--preset', 'tiny', '--configuration', configuration, '--epochs', epochs, '--iters-per-epoch', iterations, '--val-iters', '1', '--fold', 'all', '--workers', '0', '--threads', threads]);
    run(process.execPath, [cli, 'export', runDir, '--format', 'nnunet', '--out', model]);
    const outputs = { nnunet: path.join(dir, `nnunet-${configuration}`), export: path.join(dir, `export-${configuration}`), run: path.join(dir, `own-${configuration}`) };
    run(python, ['-c', 'from nnunetv2.inference.predict_from_raw_data import predict_entry_point_modelfolder as m; m()', '-i', input, '-o', outputs.nnunet, '-m', model, '-f', '0', '-device', 'cpu', '-npp', '1', '-nps', '1', '--disable_progress_bar', '--save_probabilities'], nnunetEnv);
    const ours = ['--precision', 'fp32', '--tta', 'full', '--no-skip-background', '--device', 'cpu', '--threads', threads];
    run(process.execPath, [cli, 'predict', '-m', model, '--configuration', configuration, '-i', input, '-o', outputs.export, '--save-probabilities', ...ours], { ...process.env, ...threadEnv });
    run(process.execPath, [cli, 'predict', '-m', path.join(runDir, 'checkpoint_final'), '-i', input, '-o', outputs.run, ...ours], { ...process.env, ...threadEnv });
    const plans = JSON.parse(fs.readFileSync(path.join(model, 'plans.json'), 'utf8')) as { configurations: Record<string, { patch_size: number[]; spacing: number[]; architecture: { arch_kwargs: { conv_op: string } } }> };
    const c = plans.configurations[configuration]!;
    const probabilities = JSON.parse(execFileSync(python, ['-c', COMPARE_PROBABILITIES, outputs.nnunet, outputs.export], { encoding: 'utf8' })) as Record<string, unknown>;
    const perCase: Record<string, unknown> = {};
    for (const id of caseIds) {
      const masks = Object.fromEntries(await Promise.all(Object.entries(outputs).map(async ([side, folder]) => [side, (await readNifti(path.join(folder, `${id}.nii.gz`))).data] as const)));
      const agree = (a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): number => {
        let same = 0;
        for (let i = 0; i < a.length; i++) if (Number(a[i]) === Number(b[i])) same++;
        return same / a.length;
      };
      const foreground = (a: ArrayLike<number | bigint>): number => {
        let n = 0;
        for (let i = 0; i < a.length; i++) if (Number(a[i]) !== 0) n++;
        return n;
      };
      perCase[id] = {
        voxels: masks.nnunet!.length,
        equal_nnunet_vs_lesionseg_export: agree(masks.nnunet!, masks.export!),
        equal_lesionseg_export_vs_run: agree(masks.export!, masks.run!),
        foreground_voxels: { nnunet: foreground(masks.nnunet!), lesionseg_export: foreground(masks.export!), lesionseg_run: foreground(masks.run!) },
        probabilities_nnunet_vs_lesionseg_export: probabilities[id],
      };
    }
    results[configuration] = { patch_size: c.patch_size, spacing: c.spacing, conv_op: c.architecture.arch_kwargs.conv_op, cases: perCase };
  }
  const commit = (() => {
    try { return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { return 'unknown'; }
  })();
  report({
    benchmark: 'nnunet-export-configurations',
    commit,
    cpu: cpuInfo(),
    setup: { synth: `covid, tiny, ${cases} cases, seed 3`, preset: 'tiny', epochs: Number(epochs), iterations_per_epoch: Number(iterations), precision: 'fp32', mirroring: 'every window, the model\'s axes', nnunet: `nnUNetv2_predict_from_modelfolder from ${path.basename(source)} sources, -f 0 -device cpu` },
    configurations: results,
  });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
