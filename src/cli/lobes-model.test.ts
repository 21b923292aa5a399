/**
 * `predict --summary --lobes-model` as a user runs it, with models whose answer is known exactly.
 *
 * A CT cannot show a phantom's lobes (they are drawn into no voxel), so the CT given to predict here
 * codes them: voxel value 1 + lobe + 6 * lesion (lobe 0..5 from the phantom's lobe map, lesion 0/1
 * from its lesion label), and both the lesion model (-m) and the lobe model are PlainConvUNets
 * built by hand to read the code back (exactCodeModel): 1x1x1 kernels only, so each output voxel
 * depends on its own input voxel and on the instance norms' statistics, and a patch as large as the
 * image, so one window holds the whole case and those statistics are the image's mean and variance,
 * known here. Each norm passes z = (x - mean) / sqrt(var + eps) on (pairs of channels z, -z through
 * the leaky ReLU give back (1 + slope) z exactly), and the last layer is the piecewise-linear
 * interpolation, knotted at the codes, of each class's indicator: logit 1 at the codes of its class,
 * 0 at the others. Codes lie 1/sqrt(var) apart in z (about 1), so an fp32 error of 1e-5 in z
 * changes a logit by about 1e-5, far from the margin of 1 (fp32 is asked for: bf16's 4e-3 would
 * still pass, but the test should not lean on it).
 *
 * Then: the summary's lobes equal a hand count from the phantom's lobes and lesion label, equal
 * what `--lobes` gives with the phantom's true lobes as files, and the score follows Pan et al.'s
 * bins (eval's lobeSeverityScore, whose bins severity.test.ts checks at every bound); a folder of
 * two cases and the CT as a DICOM series give the same numbers; a model (ours or an nnU-Net
 * folder's dataset.json) lacking lobes, --lobes with --lobes-model, and --lobes-model without
 * --summary/--view are refused with exit 2 and one line, before any mask is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Plan } from '../data/index.js';
import { LOBE_NAMES, lobeSeverityScore } from '../eval/index.js';
import { writeNifti, readNifti } from '../io/index.js';
import { PlainConvUNet, type UNetConfig } from '../models/index.js';
import { loadStateDict, stateDict, type HostTensor } from '../nn/index.js';
import { generatePhantom, LOBE_LABEL } from '../synth/index.js';
import { tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { NNUNET_PLAIN } from '../checkpoint/test-support.js';
import { dcm2niixAvailable, makeDicomSeries, pydicomAvailable } from '../io/test-support.js';
import { lesionseg, type Run } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-lobes-model-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

const CODES = 12;
const SLOPE = 0.01;
const EPS = 1e-5;
const FEATURES = CODES; // 10 knots (codes 2..11) + the pair (z, -z)

/**
 * A PlainConvUNet (1x1x1 kernels, 2 stages) whose class at a voxel of code c in 1..12 is
 * classOfCode[c], given the mean and (biased) variance of the codes over the one window.
 */
function exactCodeModel(classOfCode: readonly number[], numClasses: number, mean: number, variance: number): { network: PlainConvUNet; config: UNetConfig } {
  const config: UNetConfig = { inputChannels: 1, numClasses, featuresPerStage: [FEATURES, FEATURES], kernelSizes: [[1, 1, 1], [1, 1, 1]], strides: [[1, 1, 1], [1, 2, 2]], deepSupervision: false };
  const network = new PlainConvUNet(config);
  const shapes = new Map([...stateDict(network)].map(([name, entry]) => [name, entry.shape]));
  const values = new Map<string, Float32Array>([...shapes].map(([name, shape]) => [name, new Float32Array(shape.reduce((a, b) => a * b, 1))]));
  const set = (name: string, index: number, value: number): void => {
    values.get(name)![index] = value;
  };
  // Weight [out, in, 1, 1, 1]: element out * inChannels + in.
  const pair = (prefix: string, inChannels: number, fromA: number, fromB: number | null): void => {
    set(`${prefix}.conv.weight`, 0 * inChannels + fromA, 1);
    set(`${prefix}.conv.weight`, 1 * inChannels + fromA, -1);
    if (fromB !== null) {
      set(`${prefix}.conv.weight`, 0 * inChannels + fromB, -1);
      set(`${prefix}.conv.weight`, 1 * inChannels + fromB, 1);
    }
    set(`${prefix}.norm.weight`, 0, 1);
    set(`${prefix}.norm.weight`, 1, 1);
  };
  pair('encoder.stages.0.0.convs.0', 1, 0, null); // (z, -z) -> leaky
  pair('encoder.stages.0.0.convs.1', FEATURES, 0, 1); // (1+slope) z, renormalised
  pair('decoder.stages.0.convs.0', 2 * FEATURES, FEATURES + 0, FEATURES + 1); // the skip follows the (zero) upsampled channels
  // Last decoder conv: channel j < 10 is leaky(z - z_knot(j + 2)); 10 and 11 are leaky(z), leaky(-z).
  const scale = 1 / Math.sqrt(variance + EPS);
  const zOf = (code: number): number => (code - mean) * scale;
  const last = 'decoder.stages.0.convs.1';
  for (let j = 0; j < FEATURES; j++) {
    set(`${last}.conv.weight`, j * FEATURES + 0, 1);
    set(`${last}.conv.weight`, j * FEATURES + 1, -1);
    set(`${last}.norm.weight`, j, j === 11 ? -1 : 1);
    if (j < 10) set(`${last}.norm.bias`, j, -zOf(j + 2));
  }
  // f(z) = g1 + s1 (z - z1) + sum_i d_i relu(z - z_i), relu(u) = (leaky(u) - slope u) / (1 - slope).
  for (let c = 0; c < numClasses; c++) {
    const g = (code: number): number => (classOfCode[code] === c ? 1 : 0);
    const s = (i: number): number => (g(i + 1) - g(i)) / scale;
    let linear = s(1);
    let constant = g(1) - s(1) * zOf(1);
    for (let i = 2; i <= CODES - 1; i++) {
      const d = s(i) - s(i - 1);
      set('decoder.seg_layers.0.weight', c * FEATURES + (i - 2), d / (1 - SLOPE));
      linear -= (d * SLOPE) / (1 - SLOPE);
      constant += (d * SLOPE * zOf(i)) / (1 - SLOPE);
    }
    set('decoder.seg_layers.0.weight', c * FEATURES + 10, linear / (1 + SLOPE));
    set('decoder.seg_layers.0.weight', c * FEATURES + 11, -linear / (1 + SLOPE));
    set('decoder.seg_layers.0.bias', c, constant);
  }
  const state = new Map<string, HostTensor>([...values].map(([name, data]) => [name, { dtype: 'F32', shape: shapes.get(name)!, data: new Uint8Array(data.buffer) }]));
  const report = loadStateDict(network, state);
  assert.equal(report.missing.length + report.unexpected.length + report.shapeMismatch.length, 0);
  return { network, config };
}

/** The tiny plan of the infer tests with one window over the whole image, codes unnormalised, and exactCodeModel's network. */
function planFor(shape: readonly number[], spacing: readonly number[], labels: Record<string, number>): Plan {
  const base = tinyInferencePlan({ targetSpacing: [...spacing] as [number, number, number] });
  const patch = [...shape] as [number, number, number];
  return {
    ...base,
    datasets: [{ ...base.datasets[0]!, labels, channelNames: { '0': 'noNorm' } }],
    configuration: {
      ...base.configuration,
      patchSize: patch,
      medianShape: patch,
      normalization: [{ channel: 'noNorm', scheme: 'none', useMaskForNorm: false }],
      network: { ...base.configuration.network, featuresPerStage: [FEATURES, FEATURES], kernelSizes: [[1, 1, 1], [1, 1, 1]], norm: { kind: 'instance', eps: EPS, affine: true }, nonlin: { kind: 'leaky_relu', negativeSlope: SLOPE } },
      deepSupervision: false,
    },
  };
}

/** TotalSegmentator-like: the lobes at other values than the phantom's, and one more label never predicted. */
const LOBE_MODEL_LABELS: Record<string, number> = { background: 0, trachea: 1, lung_upper_lobe_left: 2, lung_lower_lobe_left: 3, lung_upper_lobe_right: 4, lung_middle_lobe_right: 5, lung_lower_lobe_right: 6 };

const ready = (async () => {
  const phantom = generatePhantom('covid', { seed: 3, size: 'tiny', caseIndex: 0 });
  const { shape, spacing, affine } = phantom.image;
  const lobes = phantom.lobes.data;
  const lesion = phantom.label.data;
  const codes = Int16Array.from(lobes, (lobe, n) => 1 + lobe + 6 * (lesion[n]! !== 0 ? 1 : 0));
  let sum = 0;
  let squares = 0;
  for (const c of codes) {
    sum += c;
    squares += c * c;
  }
  const mean = sum / codes.length;
  const variance = squares / codes.length - mean * mean;
  fs.mkdirSync(at('cases'));
  await writeNifti(at('cases', 'a_0000.nii.gz'), { data: codes, shape, spacing, affine }, { datatype: 'int16' });
  fs.copyFileSync(at('cases', 'a_0000.nii.gz'), at('cases', 'b_0000.nii.gz'));
  // --lobes' files: the phantom's true lobes, TotalSegmentator's names.
  fs.mkdirSync(at('true-lobes'));
  for (const name of LOBE_NAMES) await writeNifti(at('true-lobes', `${name}.nii.gz`), { data: Uint8Array.from(lobes, (v) => (v === LOBE_LABEL[name] ? 1 : 0)), shape, spacing, affine }, { datatype: 'uint8' });
  const lesionClass = Array.from({ length: CODES + 1 }, (_, code) => (code >= 7 ? 1 : 0));
  const lobeClass = Array.from({ length: CODES + 1 }, (_, code) => {
    const lobe = (code - 1) % 6;
    return lobe === 0 ? 0 : lobe + 1; // phantom lobe k (1..5, LOBE_NAMES order) -> LOBE_MODEL_LABELS value k + 1
  });
  const lesionModel = exactCodeModel(lesionClass, 2, mean, variance);
  writeTestCheckpoint(at('lesion-model'), 'checkpoint_final', lesionModel.network, lesionModel.config, planFor(shape, spacing, { background: 0, infection: 1 }));
  lesionModel.network.dispose();
  const lobeModel = exactCodeModel(lobeClass, 7, mean, variance);
  writeTestCheckpoint(at('lobe-model'), 'checkpoint_final', lobeModel.network, lobeModel.config, planFor(shape, spacing, LOBE_MODEL_LABELS));
  const { lung_middle_lobe_right: _dropped, ...fourLobes } = LOBE_MODEL_LABELS;
  writeTestCheckpoint(at('four-lobe-model'), 'checkpoint_final', lobeModel.network, lobeModel.config, planFor(shape, spacing, { ...fourLobes, lung_middle_lobe_right_x: 5 }));
  lobeModel.network.dispose();
  return { lobes, lesion, codes, shape, affine };
})();

interface LobesJson {
  source: string;
  perLobe: Record<string, { voxels: number; infectionVoxels: number; percentInvolved: number | null; score: number | null }>;
  severityScore: number | null;
}
const lobesOf = (file: string): LobesJson => (JSON.parse(fs.readFileSync(file, 'utf8')) as { summary: { lobes: LobesJson } }).summary.lobes;
const predict = (...args: string[]): Promise<Run> => lesionseg('predict', '-m', at('lesion-model'), '--no-tta', '--precision', 'fp32', ...args);

function refused(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 2, `exit ${run.code}\n${run.stderr}`);
  assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack frames');
  assert.match(run.stderr, pattern);
}

test('the phantom\'s lobe labels are TotalSegmentator\'s names in LOBE_NAMES order', () => {
  assert.deepEqual(Object.keys(LOBE_LABEL), [...LOBE_NAMES]);
  assert.deepEqual(Object.values(LOBE_LABEL), [1, 2, 3, 4, 5]);
});

test('predict --summary --lobes-model: per-lobe numbers as counted by hand from the phantom, the same as --lobes with its true lobes', async (t) => {
  const { lobes, lesion } = await ready;
  const run = await predict('-i', at('cases', 'a_0000.nii.gz'), '-o', at('one', 'a.nii.gz'), '--summary', '--lobes-model', at('lobe-model'));
  assert.equal(run.code, 0, run.stderr);
  const mask = (await readNifti(at('one', 'a.nii.gz'))).data as Uint8Array;
  assert.deepEqual(Buffer.from(mask), Buffer.from(Uint8Array.from(lesion, (v) => (v !== 0 ? 1 : 0))), 'the exact lesion model gives the phantom\'s lesion label');
  const summary = lobesOf(at('one', 'a.summary.json'));
  assert.match(summary.source, /^--lobes-model .*lobe-model/);
  let total = 0;
  let involvedLobes = 0;
  for (const name of LOBE_NAMES) {
    let voxels = 0;
    let inside = 0;
    for (let n = 0; n < lobes.length; n++) {
      if (lobes[n] !== LOBE_LABEL[name]) continue;
      voxels++;
      if (lesion[n] !== 0) inside++;
    }
    const percent = (100 * inside) / voxels;
    assert.equal(summary.perLobe[name]!.voxels, voxels, name);
    assert.equal(summary.perLobe[name]!.infectionVoxels, inside, name);
    assert.equal(summary.perLobe[name]!.percentInvolved, percent, name);
    // Pan et al. 2020: 0 none, 1 < 5 %, 2 5-25 %, 3 25-50 %, 4 50-75 %, 5 > 75 %.
    const pan = inside === 0 ? 0 : percent < 5 ? 1 : percent <= 25 ? 2 : percent < 50 ? 3 : percent <= 75 ? 4 : 5;
    assert.equal(summary.perLobe[name]!.score, pan, name);
    assert.equal(lobeSeverityScore(percent), pan, name);
    total += pan;
    if (inside > 0) involvedLobes++;
  }
  assert.equal(summary.severityScore, total);
  t.diagnostic(LOBE_NAMES.map((name) => `${name} ${summary.perLobe[name]!.infectionVoxels}/${summary.perLobe[name]!.voxels} = ${summary.perLobe[name]!.percentInvolved!.toFixed(3)} % -> ${summary.perLobe[name]!.score}`).join('; ') + `; severity ${total}`);
  assert.ok(involvedLobes >= 2 && total > 0, `the phantom involves ${involvedLobes} lobes, score ${total}: a case that exercises the sum`);
  // --lobes with the phantom's true lobes: the same numbers, another source.
  const byFiles = await predict('-i', at('cases', 'a_0000.nii.gz'), '-o', at('files', 'a.nii.gz'), '--summary', '--lobes', at('true-lobes'));
  assert.equal(byFiles.code, 0, byFiles.stderr);
  const fromFiles = lobesOf(at('files', 'a.summary.json'));
  assert.deepEqual({ ...fromFiles, source: '' }, { ...summary, source: '' });
});

test('a folder of cases: each case\'s lobes predicted, summary.csv with every score', async () => {
  await ready;
  const run = await predict('-i', at('cases'), '-o', at('folder'), '--summary', '--lobes-model', at('lobe-model'));
  assert.equal(run.code, 0, run.stderr);
  const a = lobesOf(at('folder', 'a.summary.json'));
  const b = lobesOf(at('folder', 'b.summary.json'));
  assert.deepEqual(b, a, 'two copies of one CT, one answer');
  const csv = fs.readFileSync(at('folder', 'summary.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 3);
  assert.ok(csv.slice(1).every((row) => row.endsWith(`,${a.severityScore}`)), csv.join('\n'));
});

test('DICOM input: the series converted once, the lobe model predicts on it, the same numbers as the NIfTI case', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { codes, shape, affine } = await ready;
  makeDicomSeries(at('series'), { data: codes, shape, affine });
  const [fromSeries, fromNifti] = await Promise.all([
    predict('-i', at('series'), '-o', at('dicom-out'), '--summary', '--lobes-model', at('lobe-model')),
    predict('-i', at('cases', 'a_0000.nii.gz'), '-o', at('nifti-out', 'a.nii.gz'), '--summary', '--lobes-model', at('lobe-model')),
  ]);
  assert.equal(fromSeries.code, 0, fromSeries.stderr);
  assert.equal(fromNifti.code, 0, fromNifti.stderr);
  assert.deepEqual(lobesOf(at('dicom-out', 'series.summary.json')), lobesOf(at('nifti-out', 'a.summary.json')));
});

test('refused before any mask is written: a model lacking a lobe, --lobes with --lobes-model, no --summary, a missing folder', async () => {
  await ready;
  const one = (out: string, ...extra: string[]) => predict('-i', at('cases', 'a_0000.nii.gz'), '-o', at(out, 'a.nii.gz'), ...extra);
  // The four runs at once: each is a process start, seconds apiece.
  const [bad1, bad2, bad3, bad4, bad5] = await Promise.all([
    one('bad1', '--summary', '--lobes-model', at('four-lobe-model')),
    one('bad2', '--summary', '--lobes', at('true-lobes'), '--lobes-model', at('lobe-model')),
    one('bad3', '--lobes-model', at('lobe-model')),
    one('bad4', '--summary', '--lobes-model', at('nowhere')),
    one('bad5', '--summary', '--lobes-model', NNUNET_PLAIN),
  ]);
  refused(bad1!, /four-lobe-model.*checkpoint_final\.json: --lobes-model: the model's labels lack lung_middle_lobe_right \(it has background, trachea, /);
  refused(bad2!, /--lobes and --lobes-model exclude each other/);
  refused(bad3!, /--lobes-model feeds --summary, --view and --output-type dicom-sr: add one of them/);
  refused(bad4!, /nowhere: --lobes-model: not found/);
  // An nnU-Net model folder: its dataset.json names the labels (the committed fixture's: lesion, effusion).
  refused(bad5!, /nnUNetPlans__3d_fullres\/dataset\.json: --lobes-model: the model's labels lack lung_upper_lobe_left, lung_lower_lobe_left, lung_upper_lobe_right, lung_middle_lobe_right, lung_lower_lobe_right \(it has background, /);
  for (const out of ['bad1', 'bad2', 'bad3', 'bad4', 'bad5']) assert.equal(fs.existsSync(at(out)), false, `${out}: nothing written`);
});
