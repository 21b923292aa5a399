/**
 * End to end on the smallest study: 4 tiny COVID-like and 3 tumour phantoms, multi-lesion
 * pre-training and two arms (scratch; frozen encoder from the multi-lesion model), 1 epoch of
 * 2 iterations each, with the real `lesionseg` steps spawned through tsx, two at a time. Then the
 * same call again: everything is reused (resumable), and the results are the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI } from '../cli/test-support.js';
import { cpuInfo, InputError, type CpuInfo } from '../core/index.js';
import { runEnvironment, type RunEnvironment } from '../train/index.js';
import { runExperiment } from './runner.js';
import { validateExperimentSpec } from './spec.js';
import { spawnStepRunner } from './steps.js';
import type { OverlaySlice } from './results.js';

const runStep = spawnStepRunner({ executable: process.execPath, args: [...CLI] });

const SPEC = {
  version: 1,
  name: 'smallest',
  datasets: { covid: { synth: { kind: 'covid', cases: 4, size: 'tiny', seed: 3 } }, tumor: { synth: { kind: 'tumor', cases: 3, size: 'tiny', seed: 4 } } },
  sources: ['tumor'],
  target: { dataset: 'covid', split: { limited: { folds: 2, seed: 0 } }, folds: [0] },
  pretrained: ['none', 'multi'],
  strategies: ['scratch', 'frozen-encoder'],
  preset: 'tiny',
  pretraining: { epochs: 1, iterationsPerEpoch: 2, validationIterations: 1 },
  training: { epochs: 1, iterationsPerEpoch: 2, validationIterations: 1 },
  threads: 1,
  jobs: 2,
  workers: 0,
};

test('a whole study runs, writes results.json, and a second call reuses every run', { timeout: 240_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-study-'));
  const lines: string[] = [];
  const logger = { info: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(m) };
  try {
    const spec = validateExperimentSpec(SPEC, 'smallest.json');
    const results = await runExperiment({ spec, outDir: dir, runStep, logger });
    assert.deepEqual(results.arms.map((a) => `${a.pretrained}/${a.strategy}`), ['none/scratch', 'multi/frozen-encoder']);
    for (const arm of results.arms) {
      assert.equal(arm.folds.length, 1);
      const fold = arm.folds[0]!;
      assert.equal(fold.cases.length, 2, 'fold 0 tests on the 2 cases it does not train on');
      assert.equal(fold.epochs.length, 1);
      assert.ok(fold.metrics.accuracy !== null && fold.metrics.accuracy > 0.5);
      assert.ok(fold.metrics.secondsPerEpoch !== null && fold.metrics.secondsPerEpoch > 0);
      assert.equal(arm.summary.dsc.n, fold.metrics.dsc === null ? 0 : 1);
      for (const c of fold.cases) assert.ok(fs.existsSync(path.join(dir, fold.predictionDir, `${c.caseId}.nii.gz`)));
      assert.ok(fs.existsSync(path.join(dir, 'logs', `predict_${arm.pretrained}_${arm.strategy}_fold0.log`)));
    }
    assert.equal(results.pretraining.length, 1);
    assert.equal(results.pretraining[0]!.epochs.length, 1);
    const split = JSON.parse(fs.readFileSync(path.join(dir, 'split.json'), 'utf8')) as { folds: { train: string[]; test: string[] }[] };
    assert.equal(split.folds[0]!.train.length, 2);
    // Every arm trains on all of its fold's training cases (nnU-Net with the benchmark's splits), none held out.
    for (const arm of results.arms) {
      const sidecar = JSON.parse(fs.readFileSync(path.join(dir, 'runs', arm.pretrained, arm.strategy, 'fold_0', 'checkpoint_final.json'), 'utf8')) as { data: { train: string[]; validation: string[]; validationMode: string; test: string[] }; hardware: CpuInfo; training: { threads: number }; environment: RunEnvironment };
      assert.deepEqual(sidecar.hardware, cpuInfo(), 'the sidecar names the CPU (model, flags) the run trained on');
      assert.equal(sidecar.training.threads, 1, "the spec's thread count");
      assert.deepEqual(sidecar.environment, runEnvironment(1), 'the sidecar names the CPU, threads and libraries the run trained with');
      assert.deepEqual(sidecar.data.train, [...split.folds[0]!.train].sort(), `${arm.pretrained}/${arm.strategy} trains on every training case of fold 0`);
      assert.equal(sidecar.data.validationMode, 'training-cases');
      assert.deepEqual(sidecar.data.test, [...split.folds[0]!.test].sort());
    }
    assert.ok(results.overlays.length >= 1);
    const overlay = JSON.parse(fs.readFileSync(path.join(dir, results.overlays[0]!), 'utf8')) as OverlaySlice;
    assert.equal(overlay.predictions.length, 2);
    assert.equal(Buffer.from(overlay.ctHu, 'base64').length, overlay.width * overlay.height * 2);
    assert.deepEqual(results.hardware, cpuInfo(), 'results.json names the CPU');
    assert.deepEqual(results.environment, runEnvironment(SPEC.threads), "results.json names the CPU flags, the steps' thread count and the libraries");
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')).arms, JSON.parse(JSON.stringify(results.arms)));
    // Step times: 1 pre-training, 2 trainings, 2 predictions, each recorded in timings.json and summed.
    const timings = JSON.parse(fs.readFileSync(path.join(dir, 'timings.json'), 'utf8')) as Record<string, number>;
    assert.deepEqual(Object.keys(timings), ['predict/multi/frozen-encoder/fold_0', 'predict/none/scratch/fold_0', 'pretrain/multi', 'train/multi/frozen-encoder/fold_0', 'train/none/scratch/fold_0']);
    const sum = (prefix: string) => Object.entries(timings).filter(([k]) => k.startsWith(prefix)).reduce((s, [, v]) => s + v, 0);
    const { total, ...parts } = results.stepSeconds;
    assert.deepEqual(parts, { pretraining: sum('pretrain/'), training: sum('train/'), prediction: sum('predict/'), timedSteps: 5, untimedSteps: 0 });
    assert.ok(Math.abs(total - sum('')) < 1e-9, `total ${total} vs ${sum('')}`);
    assert.ok(results.stepSeconds.training > 0 && results.stepSeconds.prediction > 0);

    lines.length = 0;
    const again = await runExperiment({ spec, outDir: dir, runStep, logger });
    assert.ok(lines.some((l) => /pretrain multi .*finished earlier, reused/.test(l)), lines.join('\n'));
    assert.equal(lines.filter((l) => /trained earlier, reused/.test(l)).length, 2, lines.join('\n'));
    assert.ok(!lines.some((l) => /predicted/.test(l)), 'existing predictions are kept');
    assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), [], 'the links of the prediction steps are removed');
    assert.deepEqual(again.arms, results.arms);
    assert.deepEqual(again.stepSeconds, results.stepSeconds, 'reused steps keep their times, and nothing is added');

    // A finished run set up another way than its strategy now trains (here: a random decoder) is refused before anything runs.
    const sidecarFile = path.join(dir, 'runs', 'multi', 'frozen-encoder', 'fold_0', 'checkpoint_final.json');
    const original = fs.readFileSync(sidecarFile, 'utf8');
    const sidecar = JSON.parse(original) as { strategy: { details: { transfer: { plan: Record<string, unknown> } } } };
    Object.assign(sidecar.strategy.details.transfer.plan, { decoderInit: 'random', copy: [{ from: 'encoder.', to: 'encoder.' }] });
    fs.writeFileSync(sidecarFile, JSON.stringify(sidecar));
    await assert.rejects(runExperiment({ spec, outDir: dir, runStep, logger }), (e: unknown) =>
      e instanceof InputError && /trained another way/.test(e.message) && e.message.includes(path.join('runs', 'multi', 'frozen-encoder', 'fold_0')) && /decoderInit random, now pretrained/.test(e.message) && /copy \[encoder\.->encoder\.\], now \[encoder\.->encoder\., decoder\.->decoder\.\]/.test(e.message) && !e.message.includes('scratch'));
    fs.writeFileSync(sidecarFile, original);

    // A study whose steps ran before times were kept counts them as untimed; a broken timings file is named.
    fs.writeFileSync(path.join(dir, 'timings.json'), JSON.stringify({ 'pretrain/multi': 12 }));
    const partial = await runExperiment({ spec, outDir: dir, runStep, logger });
    assert.deepEqual(partial.stepSeconds, { pretraining: 12, training: 0, prediction: 0, total: 12, timedSteps: 1, untimedSteps: 4 });
    fs.writeFileSync(path.join(dir, 'timings.json'), '{"pretrain/multi": "12"}');
    await assert.rejects(runExperiment({ spec, outDir: dir, runStep, logger }), (e: unknown) => e instanceof InputError && /step timings must map step keys to seconds/.test(e.message) && e.message.includes('timings.json'));

    const changed = validateExperimentSpec({ ...SPEC, training: { epochs: 2, iterationsPerEpoch: 2 } }, 'smallest.json');
    await assert.rejects(runExperiment({ spec: changed, outDir: dir, runStep, logger }), (e: unknown) => e instanceof InputError && /another spec \(training differ/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
