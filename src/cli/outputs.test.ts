/**
 * Issue 21 part 6 (outputs aimed at inputs) as a user meets it: core's one rule (checkOutputs)
 * refuses, with exit 2 and one line naming the output, every output that is an input, lies inside
 * an input folder, or is a folder holding an input: `evaluate --json` onto a ground-truth mask
 * (directly and through a symbolic link), `plan --out` onto dataset.json, `export --out` onto the
 * run's own files, `predict -o` onto a `--lungs` or `--lobes` file; `-o -` makes no folder named
 * `-`. Each input keeps its bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNifti, writeNifti } from '../io/index.js';
import { LOBE_NAMES } from '../eval/index.js';
import { FIXTURES, TINY_CONFIG, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { writeSynthDataset } from '../synth/index.js';
import { lesionseg, STACK_LINE, type Run } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-outputs-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

/** Exit 2, one stderr line matching `pattern`, no stack frames; `inputs` keep their bytes. */
async function refusedKeeping(run: Promise<Run>, pattern: RegExp, inputs: readonly string[]): Promise<void> {
  const before = inputs.map((file) => fs.readFileSync(file));
  const result = await run;
  assert.equal(result.code, 2, `exit ${result.code}\n${result.stderr}`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr:\n${result.stderr}`);
  assert.ok(!result.stderr.includes(STACK_LINE));
  assert.match(lines[0]!, pattern);
  inputs.forEach((file, index) => assert.deepEqual(fs.readFileSync(file), before[index], `${file} unchanged`));
}

const ready = (async () => {
  await writeSynthDataset({ kind: 'covid', cases: 2, out: at('covid'), seed: 1, size: 'tiny' });
  const model = fixtureUNet();
  writeTestCheckpoint(at('run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), at('ct.nii.gz'));
  const ct = await readNifti(at('ct.nii.gz'));
  const lungs = new Uint8Array(ct.data.length).map((_, i) => (i % ct.shape[2] < ct.shape[2] / 2 ? 1 : 2));
  await writeNifti(at('lungs.nii.gz'), { ...ct, data: lungs }, { datatype: 'uint8' });
  fs.mkdirSync(at('lobes'));
  for (const name of LOBE_NAMES) await writeNifti(at('lobes', `${name}.nii.gz`), { ...ct, data: new Uint8Array(ct.data.length).fill(1) }, { datatype: 'uint8' });
})();

test('evaluate --json onto a ground-truth mask, or through a symbolic link to it, is refused', async () => {
  await ready;
  const gtMask = at('covid', 'labelsTr', 'covid_000.nii.gz');
  const evaluate = (json: string) => lesionseg('evaluate', '--gt', at('covid', 'labelsTr'), '--pred', at('covid', 'labelsTr'), '--json', json);
  await refusedKeeping(evaluate(gtMask), /covid_000\.nii\.gz: --json lies inside the input folder .*labelsTr/, [gtMask]);
  fs.symlinkSync(gtMask, at('report-link.json'));
  await refusedKeeping(evaluate(at('report-link.json')), /report-link\.json: --json lies inside the input folder .*labelsTr/, [gtMask]);
  // A link to the ground-truth folder: the report would land among the masks.
  fs.symlinkSync(at('covid', 'labelsTr'), at('gt-link'));
  await refusedKeeping(evaluate(at('gt-link', 'report.json')), /report\.json: --json lies inside the input folder .*labelsTr/, [gtMask]);
  assert.equal(fs.existsSync(at('covid', 'labelsTr', 'report.json')), false);
});

test('plan --out onto dataset.json (or anywhere inside the dataset) is refused', async () => {
  await ready;
  const json = at('covid', 'dataset.json');
  await refusedKeeping(lesionseg('plan', at('covid'), '--preset', 'tiny', '--out', json), /dataset\.json: --out lies inside the input folder .*covid/, [json]);
});

test("export --out onto the run's own files is refused", async () => {
  await ready;
  const sidecar = at('run', 'checkpoint_final.json');
  const weights = at('run', 'checkpoint_final.safetensors');
  await refusedKeeping(lesionseg('export', at('run'), '--format', 'torch', '--out', at('run', 'model.pth')), /model\.pth: --out lies inside the input folder .*run/, [sidecar, weights]);
  await refusedKeeping(lesionseg('export', weights, '--format', 'onnx', '--out', at('run', 'model.onnx')), /model\.onnx: --out lies inside the input folder/, [sidecar, weights]);
  await refusedKeeping(lesionseg('export', at('run'), '--format', 'nnunet', '--out', tmp), /--out holds the input .*run, which writing this folder could replace/, [sidecar, weights]);
  assert.equal(fs.existsSync(at('run', 'model.pth')) || fs.existsSync(at('run', 'model.onnx')), false);
});

test('predict -o onto a --lungs or --lobes file is refused before the mask is written; -o - makes no folder', async () => {
  await ready;
  const predict = (out: string, ...extra: string[]) => lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', out, '--no-tta', '--summary', ...extra);
  await refusedKeeping(predict(at('lungs.nii.gz'), '--lungs', at('lungs.nii.gz')), /lungs\.nii\.gz: -o would overwrite the input .*lungs\.nii\.gz/, [at('lungs.nii.gz')]);
  const lobe = at('lobes', `${LOBE_NAMES[0]}.nii.gz`);
  await refusedKeeping(predict(lobe, '--lobes', at('lobes')), /-o would overwrite the input|-o lies inside the input folder .*lobes/, [lobe]);
  const cwd = process.cwd();
  await refusedKeeping(lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', '-'), /-o -: results are not written to standard output; name a folder/, [at('ct.nii.gz')]);
  assert.equal(fs.existsSync(path.join(cwd, '-')), false, 'no folder named -');
});
