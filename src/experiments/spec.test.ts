/** The experiment spec: every problem listed at once, presets valid, jobs and the limited-annotation split. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ValidationError, InputError } from '../core/index.js';
import { COVID19_CTSEG_SPLIT, EXPERIMENT_PRESETS, experimentPreset } from './presets.js';
import { limitedSplit, pretrainJobs, studyLayout, studyPairs, trainJobs } from './layout.js';
import { readExperimentSpec, specToJson, validateExperimentSpec } from './spec.js';

const demo = EXPERIMENT_PRESETS.demo;

test('every preset validates; the demo expands to one multi-lesion pre-training and five runs', () => {
  for (const name of ['demo', 'synthetic', 'paper']) experimentPreset(name, '/data');
  const spec = experimentPreset('demo', '/data');
  assert.deepEqual(pretrainJobs(spec), [{ model: 'multi', mode: 'multi', datasets: ['tumor', 'gtv', 'effusion'], seed: null }]);
  assert.deepEqual(trainJobs(spec).map((j) => `${j.pretrained}/${j.strategy}/${j.fold}`), ['none/scratch/0', 'multi/continual/0', 'multi/finetune/0', 'multi/frozen-encoder/0', 'multi/hybrid/0']);
  const paper = experimentPreset('paper', '/data');
  assert.equal(paper.datasets.covid!.kind === 'folder' && paper.datasets.covid!.path, '/data/raw/covid19-ctseg');
  // The paper's grid: scratch + 4 models x 4 strategies = 17 arms, 5 folds.
  assert.equal(studyPairs(paper).length, 17);
  assert.equal(trainJobs(paper).length, 85);
  assert.deepEqual(pretrainJobs(paper).map((j) => `${j.model}:${j.mode}`), ['msd:single', 'structseg:single', 'nsclc:single', 'multi:multi']);
  assert.throws(() => experimentPreset('huge', '/data'), (e: unknown) => e instanceof InputError && /valid: demo, synthetic, paper/.test(e.message));
});

test('a spec round-trips through specToJson', () => {
  const spec = experimentPreset('synthetic', '/data');
  assert.deepEqual(validateExperimentSpec(specToJson(spec), 'again.json', '/data'), spec);
});

test('unknown keys, strategies, models and bad values are all listed at once', () => {
  const bad = {
    ...demo,
    colour: 'blue',
    strategies: ['scratch', 'hybird', 'finetune'],
    pretrained: ['none', 'multi', 'msd'],
    target: { dataset: 'covid', split: { limited: { folds: 2, seed: 0 } }, folds: [0, 3], extra: 1 },
    training: { epochs: 0, iterationsPerEpoch: 8, lr: 0.1 },
    datasets: { ...(demo.datasets as object), nodules: { synth: { kind: 'nodule', cases: 2 } } },
    precision: 'fp64',
    jobs: 0,
  };
  try {
    validateExperimentSpec(bad, 'study.json');
    assert.fail('expected a ValidationError');
  } catch (error) {
    assert.ok(error instanceof ValidationError);
    const found = error.issues.map((i) => `${i.path}:${i.code}`).sort();
    assert.deepEqual(found, [
      'colour:unknown-key',
      'datasets.nodules.synth.kind:unknown-name',
      'jobs:bad-value',
      'precision:unknown-name',
      'pretrained[2]:unknown-model',
      'strategies[1]:unknown-strategy',
      'target.extra:unknown-key',
      'target.folds:bad-fold',
      'training.epochs:bad-value',
      'training.lr:unknown-key',
    ]);
    assert.ok(error.issues.every((i) => i.file === 'study.json'));
    const strategy = error.issues.find((i) => i.code === 'unknown-strategy')!;
    assert.match(strategy.message, /'hybird' \(valid: scratch, continual, finetune, frozen-encoder, hybrid\)/);
    assert.match(error.message, /^study.json: 10 problems found/);
  }
});

test('missing fields, pairing rules and dataset references are checked', () => {
  assert.throws(
    () => validateExperimentSpec({ version: 2, datasets: { a: { path: 'x' } }, sources: ['b'], target: { dataset: 'c', split: 'split.json' }, pretrained: ['multi'], strategies: ['scratch'], pretraining: { epochs: 1, iterationsPerEpoch: 1 }, training: { epochs: 1, iterationsPerEpoch: 1 } }, 's.json'),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.deepEqual(e.issues.map((i) => i.code).sort(), ['bad-version', 'scratch-pairing', 'unknown-dataset', 'unknown-dataset']);
      return true;
    },
  );
  assert.throws(() => validateExperimentSpec([], 's.json'), ValidationError);
});

test('readExperimentSpec names the file for unreadable or broken JSON and resolves paths beside it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-spec-'));
  try {
    assert.throws(() => readExperimentSpec(path.join(dir, 'none.json')), (e: unknown) => e instanceof InputError && e.message.includes('none.json'));
    fs.writeFileSync(path.join(dir, 'broken.json'), '{ "version": 1,');
    assert.throws(() => readExperimentSpec(path.join(dir, 'broken.json')), (e: unknown) => e instanceof InputError && /not valid JSON/.test(e.message));
    const paper = EXPERIMENT_PRESETS.paper as { target: Record<string, unknown> };
    fs.writeFileSync(path.join(dir, 'ok.json'), JSON.stringify({ ...paper, target: { ...paper.target, split: 'splits/my_split.json' } }));
    const spec = readExperimentSpec(path.join(dir, 'ok.json'));
    assert.equal(spec.target.split.kind === 'file' && spec.target.split.path, path.join(dir, 'splits', 'my_split.json'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the limited-annotation split: 20 cases in 5 folds train on 4 and test on 16, train sets partition the cases', () => {
  const ids = Array.from({ length: 20 }, (_, i) => `covid_${String(i).padStart(3, '0')}`);
  const folds = limitedSplit(ids, 5, 0);
  assert.equal(folds.length, 5);
  for (const fold of folds) {
    assert.equal(fold.train.length, 4);
    assert.equal(fold.test.length, 16);
    assert.deepEqual([...fold.train, ...fold.test].sort(), ids);
  }
  assert.deepEqual(folds.flatMap((f) => f.train).sort(), ids);
  assert.deepEqual(limitedSplit([...ids].reverse(), 5, 0), folds, 'depends on the ids, not their order');
  assert.notDeepEqual(limitedSplit(ids, 5, 1), folds, 'the seed matters');
  assert.throws(() => limitedSplit(ids.slice(0, 3), 5, 0), RangeError);
});

test('the paper preset points at the shipped COVID-19-CT-Seg split (5 folds, 4 train / 16 test)', () => {
  const split = JSON.parse(fs.readFileSync(COVID19_CTSEG_SPLIT, 'utf8')) as { folds: { train: string[]; test: string[] }[] };
  assert.equal(split.folds.length, 5);
  for (const fold of split.folds) assert.deepEqual([fold.train.length, fold.test.length], [4, 16]);
  const spec = experimentPreset('paper', '/data');
  assert.equal(spec.target.split.kind === 'file' && spec.target.split.path, COVID19_CTSEG_SPLIT);
});

test('the synthetic preset adds the hybrid-random-decoder arm with the multi-lesion model only', () => {
  const spec = experimentPreset('synthetic', '/data');
  const variant = spec.strategies.find((a) => a.name === 'hybrid-random-decoder')!;
  assert.deepEqual(variant, { name: 'hybrid-random-decoder', strategy: 'hybrid', options: { decoderInit: 'random' }, pretrained: ['multi'] });
  const pairs = studyPairs(spec);
  assert.equal(pairs.length, 18, 'scratch + 4 models x 4 strategies + 1 variant');
  assert.deepEqual(pairs.filter((p) => p.strategy === 'hybrid').map((p) => `${p.pretrained}/${p.arm}`), ['tumor/hybrid', 'gtv/hybrid', 'effusion/hybrid', 'multi/hybrid', 'multi/hybrid-random-decoder']);
  assert.equal(trainJobs(spec).length, 90);
  // Plain names write back as plain names, the variant as its object.
  assert.deepEqual(specToJson(spec).strategies, ['scratch', 'continual', 'finetune', 'frozen-encoder', 'hybrid', { strategy: 'hybrid', name: 'hybrid-random-decoder', options: { decoderInit: 'random' }, pretrained: ['multi'] }]);
  assert.equal('seeds' in specToJson(spec), false, 'a one-seed spec writes no seeds key (its spec.json reads as before)');
});

test('arm objects: bad names, options that do not apply, unknown models and duplicates are all listed', () => {
  const bad = {
    ...demo,
    strategies: [
      'scratch',
      'hybrid',
      { strategy: 'hybrid', name: 'hybrid' },
      { strategy: 'frozen-encoder', name: 'finetune' },
      { strategy: 'continual', name: 'cont-x', options: { decoderInit: 'random' } },
      { strategy: 'hybrid', name: 'h b', options: { fuseLevels: 'some' } },
      { strategy: 'frozen-encoder', name: 'frozen-r', options: { decoderInit: 'random', colour: 1 }, pretrained: ['msd'] },
      { strategy: 'hybird' },
      { name: 'x' },
    ],
    seeds: [0, 0],
  };
  try {
    validateExperimentSpec(bad, 'arms.json');
    assert.fail('expected a ValidationError');
  } catch (error) {
    assert.ok(error instanceof ValidationError);
    assert.deepEqual(error.issues.map((i) => `${i.path}:${i.code}`).sort(), [
      'seeds:bad-value',
      'strategies[2]:duplicate-arm',
      'strategies[3].name:bad-name',
      'strategies[4].options:bad-arguments',
      'strategies[5].name:bad-name',
      'strategies[5].options.fuseLevels:unknown-name',
      'strategies[6].options.colour:unknown-key',
      'strategies[6].pretrained[0]:unknown-model',
      'strategies[7].strategy:unknown-strategy',
      'strategies[8].strategy:missing-field',
    ]);
    assert.match(error.issues.find((i) => i.code === 'bad-arguments')!.message, /decoderInit applies only to frozen-encoder and hybrid, not continual/);
  }
});

test('seeds repeat every pre-training and run; the folders gain a seed level only with seeds', () => {
  const spec = validateExperimentSpec({ ...demo, seeds: [3, 5] }, 'seeds.json');
  assert.deepEqual(spec.seeds, [3, 5]);
  assert.deepEqual(pretrainJobs(spec).map((j) => `${j.model}:${j.seed}`), ['multi:3', 'multi:5']);
  const jobs = trainJobs(spec);
  assert.equal(jobs.length, 10);
  assert.deepEqual(jobs.slice(0, 2).map((j) => `${j.seed}/${j.fold}/${j.pretrained}/${j.arm}`), ['3/0/none/scratch', '3/0/multi/continual']);
  assert.deepEqual(validateExperimentSpec(specToJson(spec), 'again.json'), spec);
  const layout = studyLayout('/s');
  const one = { pretrained: 'none', arm: 'scratch', fold: 2, seed: null };
  assert.deepEqual([layout.run(one), layout.predictions(one), layout.evaluation(one), layout.pretrainRun('multi', null)], ['/s/runs/none/scratch/fold_2', '/s/predictions/none/scratch/fold_2', '/s/evaluations/none/scratch/fold_2.json', '/s/pretrain/multi']);
  const seeded = { pretrained: 'multi', arm: 'hybrid-random-decoder', fold: 0, seed: 1 };
  assert.deepEqual([layout.run(seeded), layout.prediction(seeded, 'c1'), layout.evaluation(seeded), layout.pretrainRun('multi', 1)], ['/s/runs/multi/hybrid-random-decoder/seed_1/fold_0', '/s/predictions/multi/hybrid-random-decoder/seed_1/fold_0/c1.nii.gz', '/s/evaluations/multi/hybrid-random-decoder/seed_1/fold_0.json', '/s/pretrain/multi/seed_1']);
});

test('the schema reports type and range problems beside the rules across keys, each with its path (zod)', () => {
  const bad = {
    ...demo,
    colour: 'blue',
    strategies: ['scratch', 'finetune', 5],
    datasets: { ...(demo.datasets as object), both: { path: 'x', synth: { kind: 'covid', cases: 1 } } },
    threads: 1.5,
    slurm: { partition: 3, extra: ['x'], train: { gpus: -1 } },
    pretrained: ['none', 'multi', 'msd'],
  };
  try {
    validateExperimentSpec(bad, 'study.json');
    assert.fail('expected a ValidationError');
  } catch (error) {
    assert.ok(error instanceof ValidationError);
    const found = new Map(error.issues.map((i) => [i.path, `${i.code}: ${i.message}`]));
    assert.deepEqual([...found.keys()].sort(), ['colour', 'datasets.both', 'pretrained[2]', 'slurm.extra[0]', 'slurm.partition', 'slurm.train.gpus', 'strategies[2]', 'threads']);
    assert.equal(found.get('threads'), 'wrong-type: must be an integer, got 1.5');
    assert.equal(found.get('slurm.partition'), 'wrong-type: must be a string, got 3');
    assert.equal(found.get('slurm.train.gpus'), 'bad-value: must be >= 0, got -1');
    assert.equal(found.get('datasets.both'), "bad-value: give 'path' or 'synth', not both");
    assert.equal(found.get('strategies[2]'), 'wrong-type: must be a strategy name or an arm object { strategy, name, options, pretrained }');
    assert.match(found.get('colour')!, /^unknown-key: unknown key 'colour' \(valid: \$schema, version, name, datasets, /);
  }
});

test('a missing key is named as required, whatever its schema (list, union, object)', () => {
  assert.throws(
    () => validateExperimentSpec({ version: 1, target: {} }, 's.json'),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      const issues = e.issues.map((i) => `${i.code} ${i.path}: ${i.message}`);
      assert.ok(issues.includes("missing-field strategies: 'strategies' is required"), issues.join('\n'));
      assert.ok(issues.includes("missing-field target.split: 'split' is required"), issues.join('\n'));
      assert.ok(issues.includes("missing-field target.dataset: 'dataset' is required"), issues.join('\n'));
      assert.equal(e.issues.length, 8);
      return true;
    },
  );
});
