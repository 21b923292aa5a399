/**
 * The runner with named arms, seeds and statistics, its steps replaced by a fake StepRunner (no
 * training: it writes the final sidecars the real steps write, and predicts each case's ground
 * truth, thinned for every arm but hybrid): which commands run with which flags, where the runs
 * go (seed_<s> levels only with seeds; a one-seed study keeps the old layout, names, step keys),
 * what results.json holds (arm names, (seed, fold) results, seed std, comparisons, findings), a
 * second call that trains nothing and rewrites results.json, and the stale-run check for options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import { readNifti, writeNifti } from '../io/index.js';
import { transferPlanShape, type TransferStrategy } from '../transfer/index.js';
import { runExperiment } from './runner.js';
import { validateExperimentSpec } from './spec.js';
import type { StepRunner } from './steps.js';

const BASE = {
  version: 1,
  name: 'arms',
  datasets: { covid: { synth: { kind: 'covid', cases: 4, size: 'tiny', seed: 3 } }, tumor: { synth: { kind: 'tumor', cases: 3, size: 'tiny', seed: 4 } } },
  sources: ['tumor'],
  target: { dataset: 'covid', split: { limited: { folds: 2, seed: 0 } }, folds: [0] },
  pretrained: ['none', 'multi'],
  strategies: ['scratch', 'hybrid', { strategy: 'hybrid', name: 'hybrid-random-decoder', options: { decoderInit: 'random' } }],
  preset: 'tiny',
  pretraining: { epochs: 1, iterationsPerEpoch: 1 },
  training: { epochs: 2, iterationsPerEpoch: 1 },
  threads: 1,
  jobs: 1,
};

const value = (args: readonly string[], flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};

/** Writes what pretrain/train/predict leave behind, and records every call. */
function fakeSteps(calls: string[][], logs: string[] = []): StepRunner {
  return async (args, logFile) => {
    calls.push([...args]);
    logs.push(path.basename(logFile));
    const out = value(args, args[0] === 'predict' ? '-o' : '--out')!;
    fs.mkdirSync(out, { recursive: true });
    if (args[0] === 'pretrain') {
      fs.writeFileSync(path.join(out, 'checkpoint_final.json'), '{}');
    } else if (args[0] === 'train') {
      const strategy = value(args, '--strategy') as TransferStrategy;
      const decoderInit = value(args, '--decoder-init') as 'random' | 'pretrained' | undefined;
      const plan = strategy === 'scratch' ? undefined : transferPlanShape(strategy, decoderInit !== undefined ? { decoderInit } : {});
      fs.writeFileSync(path.join(out, 'checkpoint_final.json'), JSON.stringify({ strategy: { name: strategy, details: plan ? { transfer: { plan } } : {} } }));
      const epochs = [0, 1].map((epoch) => JSON.stringify({ epoch, train_loss: 1 - epoch / 4, val_loss: null, pseudo_dice: null, lr: 0.01, epoch_seconds: strategy === 'scratch' ? 2 : 1.5 }));
      fs.writeFileSync(path.join(out, 'log.jsonl'), `${epochs.join('\n')}\n`);
    } else if (args[0] === 'predict') {
      const thin = !value(args, '-m')!.includes(`${path.sep}hybrid${path.sep}`);
      const inputDir = value(args, '-i')!;
      for (const image of fs.readdirSync(inputDir)) {
        const id = image.replace(/_0000\.nii\.gz$/, '');
        const labelFile = path.join(path.dirname(path.dirname(fs.realpathSync(path.join(inputDir, image)))), 'labelsTr', `${id}.nii.gz`);
        const truth = await readNifti(labelFile);
        const data = new Uint8Array(truth.data.length);
        for (let i = 0; i < data.length; i++) data[i] = Number(truth.data[i]) === 1 && !(thin && i % 3 === 0) ? 1 : 0;
        await writeNifti(path.join(out, `${id}.nii.gz`), { ...truth, data }, { datatype: 'uint8' });
      }
    }
  };
}

test('arms and seeds: flags, seed-keyed folders, (seed, fold) results with comparisons and findings; a second call only rewrites', { timeout: 180_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-arms-'));
  try {
    const calls: string[][] = [];
    const logs: string[] = [];
    const spec = validateExperimentSpec({ ...BASE, seeds: [0, 1] }, 'arms.json');
    const results = await runExperiment({ spec, outDir: dir, runStep: fakeSteps(calls, logs), bootstrapResamples: 200 });
    const pretrain = calls.filter((c) => c[0] === 'pretrain');
    assert.deepEqual(pretrain.map((c) => [path.relative(dir, value(c, '--out')!), value(c, '--seed')]), [[path.join('pretrain', 'multi', 'seed_0'), '0'], [path.join('pretrain', 'multi', 'seed_1'), '1']]);
    const train = calls.filter((c) => c[0] === 'train');
    assert.equal(train.length, 6);
    const variant = train.find((c) => value(c, '--out') === path.join(dir, 'runs', 'multi', 'hybrid-random-decoder', 'seed_1', 'fold_0'))!;
    assert.deepEqual([value(variant, '--strategy'), value(variant, '--decoder-init'), value(variant, '--seed'), value(variant, '--pretrained')], ['hybrid', 'random', '1', path.join(dir, 'pretrain', 'multi', 'seed_1', 'checkpoint_final.safetensors')]);
    assert.equal(train.filter((c) => c.includes('--decoder-init')).length, 2, 'only the variant gets the flag');
    assert.ok(fs.existsSync(path.join(dir, 'evaluations', 'multi', 'hybrid-random-decoder', 'seed_0', 'fold_0.json')));
    assert.ok(logs.includes('train_multi_hybrid-random-decoder_seed1_fold0.log') && logs.includes('pretrain_multi_seed1.log') && logs.includes('predict_none_scratch_seed0_fold0.log'), logs.join(' '));

    assert.deepEqual(results.arms.map((a) => `${a.pretrained}/${a.name}`), ['none/scratch', 'multi/hybrid', 'multi/hybrid-random-decoder']);
    assert.deepEqual(results.arms[2]!.options, { decoderInit: 'random' });
    for (const arm of results.arms) {
      assert.deepEqual(arm.folds.map((f) => `${f.seed}/${f.fold}`), ['0/0', '1/0']);
      assert.deepEqual(arm.seeds, [0, 1]);
      assert.equal(arm.summary.dsc.seedStd, 0, 'the fake predicts the same masks for both seeds');
    }
    assert.ok(results.arms[1]!.summary.dsc.mean! > results.arms[0]!.summary.dsc.mean!);
    const comparisons = results.comparisons!;
    assert.equal(comparisons.resamples, 200);
    const hybridVsScratch = comparisons.results.find((c) => c.id === 'vs-scratch/cases/dsc/multi/hybrid-vs-none/scratch')!;
    assert.equal(hybridVsScratch.n, 4, '2 test cases x 2 seeds');
    assert.ok(hybridVsScratch.difference! > 0);
    assert.ok(comparisons.results.some((c) => c.id === 'hybrid-vs-other/cases/nsd/multi/hybrid-vs-multi/hybrid-random-decoder'));
    assert.deepEqual(results.findings!.findings.map((f) => f.id), [1, 2, 3, 4]);
    assert.equal(results.findings!.findings[1]!.verdict, 'not tested', 'no single-lesion model in this spec');
    const written = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as typeof results;
    assert.equal(written.version, 2);
    assert.deepEqual(written.comparisons, JSON.parse(JSON.stringify(comparisons)));

    // Again: nothing trains or predicts, and results.json is rewritten from the finished runs.
    calls.length = 0;
    fs.rmSync(path.join(dir, 'results.json'));
    const started = performance.now();
    const again = await runExperiment({ spec, outDir: dir, runStep: fakeSteps(calls), bootstrapResamples: 200 });
    assert.deepEqual(calls, []);
    assert.ok(performance.now() - started < 30_000);
    assert.deepEqual(again.arms, results.arms);
    assert.deepEqual(again.comparisons, results.comparisons);
    assert.ok(fs.existsSync(path.join(dir, 'results.json')));

    // A finished variant run set up another way (here: the pre-trained decoder) is refused by name.
    const sidecar = path.join(dir, 'runs', 'multi', 'hybrid-random-decoder', 'seed_0', 'fold_0', 'checkpoint_final.json');
    fs.writeFileSync(sidecar, JSON.stringify({ strategy: { name: 'hybrid', details: { transfer: { plan: transferPlanShape('hybrid') } } } }));
    await assert.rejects(runExperiment({ spec, outDir: dir, runStep: fakeSteps(calls) }), (e: unknown) => e instanceof InputError && /hybrid-random-decoder.*decoderInit pretrained, now random/s.test(e.message));

    // Seeds cannot be switched off on a seeded folder (another layout); more seeds extend it.
    await assert.rejects(runExperiment({ spec: validateExperimentSpec(BASE, 'arms.json'), outDir: dir, runStep: fakeSteps(calls) }), (e: unknown) => e instanceof InputError && /seeds differ/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a one-seed study keeps the layout, log names and step keys of a study made before seeds and arms', { timeout: 180_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-arms-'));
  try {
    const calls: string[][] = [];
    const logs: string[] = [];
    const spec = validateExperimentSpec({ ...BASE, strategies: ['scratch', 'hybrid'] }, 'one.json');
    const results = await runExperiment({ spec, outDir: dir, runStep: fakeSteps(calls, logs), bootstrapResamples: 100 });
    assert.deepEqual(logs, ['pretrain_multi.log', 'train_none_scratch_fold0.log', 'predict_none_scratch_fold0.log', 'train_multi_hybrid_fold0.log', 'predict_multi_hybrid_fold0.log']);
    assert.deepEqual(calls.map((c) => `${c[0]} ${path.relative(dir, value(c, c[0] === 'predict' ? '-o' : '--out')!)} seed ${value(c, '--seed') ?? '-'}`), [
      `pretrain ${path.join('pretrain', 'multi')} seed 0`,
      `train ${path.join('runs', 'none', 'scratch', 'fold_0')} seed 0`,
      `predict ${path.join('predictions', 'none', 'scratch', 'fold_0')} seed -`,
      `train ${path.join('runs', 'multi', 'hybrid', 'fold_0')} seed 0`,
      `predict ${path.join('predictions', 'multi', 'hybrid', 'fold_0')} seed -`,
    ]);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(path.join(dir, 'timings.json'), 'utf8')) as object), ['predict/multi/hybrid/fold_0', 'predict/none/scratch/fold_0', 'pretrain/multi', 'train/multi/hybrid/fold_0', 'train/none/scratch/fold_0']);
    assert.ok(fs.existsSync(path.join(dir, 'evaluations', 'none', 'scratch', 'fold_0.json')));
    const written = JSON.parse(fs.readFileSync(path.join(dir, 'spec.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(written.strategies, ['scratch', 'hybrid']);
    assert.equal('seeds' in written, false);
    for (const arm of results.arms) {
      assert.equal(arm.seeds, undefined);
      assert.deepEqual(arm.folds.map((f) => f.seed), [undefined]);
      assert.equal(arm.summary.dsc.seedStd, undefined);
    }
    assert.equal(results.pretraining[0]!.seed, undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
