/**
 * The same answer twice (issue 21, part 5): a short training with a given seed and thread count,
 * and a prediction with the default settings (`--batch auto`, the default thread count), each run
 * once on a quiet machine and once beside a CPU hog (a process spinning on two threads, i.e. both
 * cores of the CI machine): the losses of every epoch, the weights' bytes, the mask's and the
 * probabilities' bytes must be equal bit for bit. The training uses a loader worker thread
 * (batches arrive when they are made, the hog reorders that) and validation in the main thread.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSynthDataset } from '../synth/index.js';
import { lesionseg, type Run } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-determinism-'));
const at = (...parts: string[]): string => path.join(tmp, ...parts);
const hogs: ChildProcess[] = [];
test.after(() => {
  for (const hog of hogs) hog.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A process spinning on two threads until killed (resolves once both threads spin). */
async function startHog(): Promise<ChildProcess> {
  // The worker spins from its start; the main thread says so, then spins too.
  const source = "new (require('node:worker_threads').Worker)('for (;;) {}', { eval: true }).once('online', () => { console.log('spinning'); for (;;) {} });";
  const hog = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'ignore'] });
  hogs.push(hog);
  await new Promise<void>((resolve, reject) => {
    hog.stdout!.once('data', () => resolve());
    hog.once('exit', (code) => reject(new Error(`the hog exited (${code})`)));
  });
  return hog;
}

async function withHog(run: () => Promise<Run>): Promise<Run> {
  const hog = await startHog();
  try {
    return await run();
  } finally {
    hog.kill('SIGKILL');
  }
}

function ok(run: Run): Run {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return run;
}

const dataset = writeSynthDataset({ kind: 'covid', cases: 3, out: at('covid'), seed: 5, size: 'tiny' });
const TRAIN = ['--preset', 'tiny', '--fold', 'all', '--epochs', '2', '--iters-per-epoch', '2', '--val-iters', '1', '--seed', '4', '--threads', '2', '--workers', '1', '--preprocessed', at('preprocessed')];
const train = (out: string): Promise<Run> => lesionseg('train', '--dataset', at('covid'), '--out', at(out), ...TRAIN);
const losses = (out: string): unknown[] =>
  fs.readFileSync(at(out, 'log.jsonl'), 'utf8').trim().split('\n').map((line) => {
    const record = JSON.parse(line) as Record<string, unknown>;
    return [record.epoch, record.train_loss, record.val_loss, record.pseudo_dice, record.lr];
  });

test('a short training gives the same losses and weights, bit for bit, with a CPU hog beside it', async () => {
  await dataset;
  ok(await train('quiet'));
  ok(await withHog(() => train('hogged')));
  assert.deepEqual(losses('hogged'), losses('quiet'));
  assert.ok(fs.readFileSync(at('hogged', 'checkpoint_final.safetensors')).equals(fs.readFileSync(at('quiet', 'checkpoint_final.safetensors'))), 'the final weights differ');
});

test('predict (default batch and threads) gives the same mask and probabilities, bit for bit, with a CPU hog beside it', async () => {
  await dataset;
  if (!fs.existsSync(at('quiet', 'checkpoint_final.json'))) ok(await train('quiet'));
  const image = at('covid', 'imagesTr', 'covid_000_0000.nii.gz');
  // fp32: the precision whose kernels depend on the batch size (bf16 runs oneDNN's at every size).
  const predict = (out: string): Promise<Run> => lesionseg('predict', '-m', at('quiet'), '-i', image, '-o', at(out, 'mask.nii.gz'), '--precision', 'fp32', '--no-tta', '--save-probabilities');
  ok(await predict('quiet-predict'));
  ok(await withHog(() => predict('hogged-predict')));
  const files = fs.readdirSync(at('quiet-predict')).sort();
  assert.ok(files.includes('mask.nii.gz') && files.some((f) => f.includes('probabilities')), files.join(', '));
  assert.deepEqual(fs.readdirSync(at('hogged-predict')).sort(), files);
  for (const file of files) assert.ok(fs.readFileSync(at('hogged-predict', file)).equals(fs.readFileSync(at('quiet-predict', file))), `${file} differs`);
});
