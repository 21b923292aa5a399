/**
 * Pre-training and the transfer strategies as a user runs them (`node --import tsx src/cli/main.ts`)
 * on tiny phantoms: single-lesion pre-training (a run per dataset, 80/20 split file), multi-lesion
 * pre-training on tumor+gtv+effusion, then every strategy on a COVID phantom fold with 4 training
 * cases (checkpoints, logs, load report, trainable/frozen counts, continued schedule, frozen
 * encoder unchanged), and the bad-input paths (clear message, exit 2, no stack, nothing touched).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors } from '../io/index.js';
import { writeSynthDataset, type LesionKind } from '../synth/index.js';
import { lesionseg, type Run } from './test-support.js';

const SHORT = ['--epochs', '2', '--iters-per-epoch', '2', '--val-iters', '1', '--workers', '0', '--threads', '1'];

function ok(run: Run): Run {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return run;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-pretrain-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);
const readJson = (file: string): any => JSON.parse(fs.readFileSync(file, 'utf8'));

const datasets = (async () => {
  for (const kind of ['tumor', 'gtv', 'effusion', 'covid'] as LesionKind[]) await writeSynthDataset({ kind, cases: 5, out: at(kind), seed: 3, size: 'tiny' });
  fs.writeFileSync(at('split.json'), JSON.stringify({ folds: [{ train: ['covid_000', 'covid_001', 'covid_002', 'covid_003'], test: ['covid_004'] }, { train: ['covid_001', 'covid_002', 'covid_003', 'covid_004'], test: ['covid_000'] }] }));
})();

test('single-lesion pre-training: one run per source dataset under one shared plan, with an 80/20 split file', async () => {
  await datasets;
  const run = ok(await lesionseg('pretrain', '--datasets', `${at('tumor')},${at('gtv')}`, '--mode', 'single', '--out', at('single'), '--preset', 'tiny', ...SHORT, '--epochs', '1'));
  assert.equal(run.stdout.trim().split('\n').length, 2);
  const split = readJson(at('single', 'split.json'));
  const plan = readJson(at('single', 'plan.json'));
  assert.deepEqual(plan.datasets.map((d: { name: string }) => d.name), ['tumor', 'gtv']);
  for (const name of ['tumor', 'gtv']) {
    const { train, validation } = split.datasets[name];
    assert.equal(train.length, 4, '80% of 5 cases train');
    assert.equal(validation.length, 1, '20% validate');
    assert.deepEqual([...train, ...validation].sort(), [0, 1, 2, 3, 4].map((i) => `${name}_00${i}`));
    const sidecar = readJson(at('single', name, 'checkpoint_final.json'));
    assert.equal(sidecar.architecture.name, 'PlainConvUNet');
    assert.deepEqual(sidecar.plan, plan, 'every single-lesion model has the shared plan');
    assert.deepEqual([sidecar.data.train, sidecar.data.validation], [train, validation]);
    assert.equal(fs.readFileSync(at('single', name, 'log.jsonl'), 'utf8').trim().split('\n').length, 1);
  }
  // The same seed gives the same split; another seed, another one.
  const again = ok(await lesionseg('pretrain', '--datasets', `${at('tumor')},${at('gtv')}`, '--mode', 'single', '--out', at('single2'), '--plan', at('single', 'plan.json'), ...SHORT, '--epochs', '1', '--seed', '0'));
  assert.match(again.stdout, /finished after 1 epoch/);
  assert.deepEqual(readJson(at('single2', 'split.json')).datasets, split.datasets);
});

test('multi-lesion pre-training on tumor+gtv+effusion, then all five strategies on a COVID fold of 4 training cases', async () => {
  await datasets;
  const pre = at('multi');
  ok(await lesionseg('pretrain', '--datasets', [at('tumor'), at('gtv'), at('effusion')].join(','), '--mode', 'multi', '--out', pre, '--preset', 'tiny', ...SHORT));
  const preSidecar = readJson(path.join(pre, 'checkpoint_final.json'));
  assert.equal(preSidecar.architecture.name, 'MultiHeadUNet');
  assert.deepEqual(preSidecar.architecture.taskClasses, [2, 2, 2]);
  assert.deepEqual(preSidecar.data.tasks.map((t: { task: number; dataset: string }) => [t.task, t.dataset]), [[0, 'tumor'], [1, 'gtv'], [2, 'effusion']]);
  assert.equal(preSidecar.history.length, 2);
  assert.equal(preSidecar.history[1].pseudo_dice_per_class.length, 3, 'one foreground class per task');
  const preWeights = readSafetensors(path.join(pre, 'checkpoint_final.safetensors')).tensors;
  assert.equal([...preWeights.keys()].filter((n) => n.startsWith('decoder.task_heads.')).length, 3 * 3 * 2);

  const counts: Record<string, { trainable: number; frozen: number }> = {};
  for (const strategy of ['scratch', 'continual', 'finetune', 'frozen-encoder', 'hybrid']) {
    const out = at('runs', strategy);
    const source = strategy === 'scratch' ? ['--plan', path.join(pre, 'plan.json')] : ['--pretrained', path.join(pre, 'checkpoint_final')];
    const run = ok(await lesionseg('train', '--dataset', at('covid'), '--split', at('split.json'), '--fold', '0', '--strategy', strategy, ...source, '--out', out, ...SHORT));
    assert.match(run.stdout, /finished after 2 epoch\(s\).* s per epoch/);
    const sidecar = readJson(path.join(out, 'checkpoint_final.json'));
    const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(log.length, 2);
    assert.ok(log.every((r: { epoch_seconds: number }) => r.epoch_seconds > 0));
    assert.deepEqual(sidecar.state.epochSeconds.length, 2, 'time per epoch recorded');
    assert.equal(sidecar.strategy.name, strategy);
    assert.deepEqual(sidecar.data.test, ['covid_004']);
    assert.equal(sidecar.data.train.length, 4, 'every training case of the fold trains (none held out)');
    assert.equal(sidecar.data.validationMode, 'training-cases');
    assert.deepEqual(sidecar.plan.configuration, preSidecar.plan.configuration, 'the target is preprocessed with the pre-training plan');
    assert.deepEqual(sidecar.plan.datasets.map((d: { name: string }) => d.name), ['tumor', 'gtv', 'effusion', 'covid']);
    counts[strategy] = { trainable: sidecar.parameters.trainable, frozen: sidecar.parameters.frozen };
    if (strategy === 'scratch') {
      assert.equal(sidecar.loadReport, null);
      continue;
    }
    assert.match(run.stderr, /pre-trained weights: loaded \d+, missing 0, unexpected 0, shape mismatches 0/);
    assert.deepEqual([sidecar.loadReport.missing, sidecar.loadReport.unexpected, sidecar.loadReport.shapeMismatch], [[], [], []]);
    assert.ok(sidecar.loadReport.loaded.length > 0);
    assert.ok(sidecar.strategy.details.transfer.droppedHeads.every((n: string) => n.startsWith('decoder.task_heads.')));
    const weights = readSafetensors(path.join(out, 'checkpoint_final.safetensors')).tensors;
    const bytes = (t: { data: ArrayBufferView }): Buffer => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const same = (a: string, b: string): boolean => bytes(weights.get(a)!).equals(bytes(preWeights.get(b)!));
    const encoder = [...preWeights.keys()].filter((n) => n.startsWith('encoder.'));
    if (strategy === 'frozen-encoder') assert.ok(encoder.every((n) => same(n, n)), 'the frozen encoder is the pre-trained one, unchanged');
    if (strategy === 'hybrid') assert.ok(encoder.every((n) => same(n.replace('encoder.', 'adapted_encoder.'), n)), 'the Adapted encoder is the pre-trained one, unchanged');
    if (strategy === 'finetune') assert.ok(!encoder.every((n) => same(n, n)), 'fine-tuning moves the encoder');
    if (strategy === 'continual') {
      // One poly schedule over 2 pre-training + 2 target epochs: the target starts at polyLr(2, 4).
      assert.deepEqual(sidecar.training.schedule, { kind: 'poly', initialLr: 0.01, exponent: 0.9, totalEpochs: 4, startEpoch: 2 });
      assert.ok(Math.abs(log[0].lr - 0.01 * 0.5 ** 0.9) < 1e-12);
      assert.ok(sidecar.strategy.details.transfer.momentum.carried > 0);
    } else assert.equal(log[0].lr, 0.01);
  }
  assert.equal(counts.scratch!.frozen, 0);
  assert.deepEqual(counts.continual, counts.scratch);
  assert.deepEqual(counts.finetune, counts.scratch);
  const encoderSize = [...preWeights].filter(([n]) => n.startsWith('encoder.')).reduce((sum, [, t]) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  assert.deepEqual(counts['frozen-encoder'], { trainable: counts.scratch!.trainable - encoderSize, frozen: encoderSize });
  assert.equal(counts.hybrid!.frozen, encoderSize);
});

test('bad input: clear errors, exit 2, no stack trace, nothing overwritten', async () => {
  await datasets;
  const pre = path.join(at('multi'), 'checkpoint_final');
  // A run folder to protect (--force must not clear it when the input is bad).
  const guarded = at('guarded');
  ok(await lesionseg('train', '--dataset', at('covid'), '--split', at('split.json'), '--fold', '1', '--strategy', 'finetune', '--pretrained', pre, '--out', guarded, ...SHORT, '--epochs', '1'));
  const snapshot = (): string[] => fs.readdirSync(guarded).sort().map((name) => `${name}:${fs.statSync(path.join(guarded, name)).mtimeMs}`);
  const before = snapshot();

  const badPlan = readJson(path.join(at('multi'), 'plan.json'));
  badPlan.configuration.patchSize = [16, 32, 16];
  fs.writeFileSync(at('bad_plan.json'), JSON.stringify(badPlan));
  fs.mkdirSync(at('other'), { recursive: true });
  for (const ending of ['.json', '.safetensors', '.optim.safetensors']) fs.copyFileSync(`${pre}${ending}`, at('other', `checkpoint_final${ending}`));
  const other = readJson(at('other', 'checkpoint_final.json'));
  other.architecture.config.featuresPerStage = [4, 8, 16, 64];
  fs.writeFileSync(at('other', 'checkpoint_final.json'), JSON.stringify(other));
  fs.writeFileSync(at('ghost_split.json'), JSON.stringify({ folds: [{ train: ['covid_000', 'covid_999'], test: ['covid_004'] }] }));
  fs.mkdirSync(at('broken', 'imagesTr'), { recursive: true });
  fs.copyFileSync(at('covid', 'dataset.json'), at('broken', 'dataset.json'));

  const train = (...args: string[]) => lesionseg('train', '--dataset', at('covid'), '--split', at('split.json'), '--fold', '0', '--out', guarded, '--force', ...SHORT, ...args);
  const cases: [string, () => Promise<Run>, RegExp][] = [
    ['unknown strategy', () => train('--strategy', 'transfer'), /unknown strategy 'transfer': use one of scratch, continual, finetune, frozen-encoder, hybrid/],
    ['missing checkpoint', () => train('--strategy', 'finetune', '--pretrained', at('nowhere', 'checkpoint_final')), /no checkpoint here \(expected <name>\.safetensors with its <name>\.json sidecar\)/],
    ['no checkpoint given', () => train('--strategy', 'hybrid'), /strategy 'hybrid' needs --pretrained CKPT/],
    ['other topology', () => train('--strategy', 'finetune', '--pretrained', at('other', 'checkpoint_final')), /featuresPerStage: checkpoint \[4, 8, 16, 64\], model \[4, 8, 16, 32\]/],
    ['other architecture', () => train('--strategy', 'finetune', '--pretrained', at('runs', 'hybrid', 'checkpoint_final')), /architecture 'HybridUNet': transfer reads PlainConvUNet or MultiHeadUNet checkpoints/],
    ['other plan', () => train('--strategy', 'frozen-encoder', '--pretrained', pre, '--plan', at('bad_plan.json')), /differs from the pre-trained checkpoint's[\s\S]*patch size: pre-trained \[16, 32, 32\], given \[16, 32, 16\]/],
    ['no momentum for continual', () => train('--strategy', 'continual', '--pretrained', path.join(at('multi'), 'checkpoint_best')), /no SGD momentum buffers/],
    ['fold outside the split', () => train('--strategy', 'scratch', '--fold', '2'), /fold 2 does not exist: the split has folds 0\.\.1/],
    ['unknown case in the split', () => lesionseg('train', '--dataset', at('covid'), '--split', at('ghost_split.json'), '--fold', '0', '--out', guarded, '--force', '--strategy', 'scratch'), /covid_999/],
    ['dataset failing check', () => lesionseg('train', '--dataset', at('broken'), '--out', guarded, '--force', '--strategy', 'scratch'), /broken/],
    ['pretrain: dataset failing check', () => lesionseg('pretrain', '--datasets', `${at('tumor')},${at('broken')}`, '--mode', 'multi', '--out', at('never'), '--preset', 'tiny'), /broken/],
    ['pretrain: unknown mode', () => lesionseg('pretrain', '--datasets', at('tumor'), '--mode', 'both', '--out', at('never')), /unknown pre-training mode 'both': use single or multi/],
    ['pretrain: existing run', () => lesionseg('pretrain', '--datasets', at('tumor'), '--mode', 'multi', '--out', at('multi'), '--preset', 'tiny'), /already holds a training run: use --resume to continue it or --force/],
  ];
  // Sequentially: they share the guarded folder, and the machine has few cores.
  for (const [what, pending, message] of cases) {
    const run = await pending().catch((e: unknown) => ({ code: -1, stdout: '', stderr: String(e) }));
    assert.equal(run.code, 2, `${what}: exit ${run.code}\n${run.stderr}`);
    assert.match(run.stderr, message, what);
    assert.ok(!run.stderr.includes('    at '), `${what}: stack trace\n${run.stderr}`);
  }
  assert.deepEqual(snapshot(), before, 'the guarded run folder is untouched');
  assert.ok(!fs.existsSync(at('never')));
});
