/**
 * Whole runs in a run folder (tiny U-Net, in-memory spheres): the files a run writes, best
 * checkpoint following the EMA, no clobbering without --force/--resume, and a run killed with
 * SIGKILL in a child process resuming to exactly the losses and final weights of an uninterrupted run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { InputError } from '../core/index.js';
import { loadCheckpoint } from '../checkpoint/index.js';
import type { TrainingSidecar } from './sidecar.js';
import { readEpochLog } from './hooks.js';
import { clearRunFolder, decideRunMode } from './run.js';
import { runTinyTraining } from './test-support.js';

const temporary = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'run-'));

test('a run writes plan, log and latest/best/final checkpoints; best follows the EMA; parameter counts in the sidecar', async () => {
  const runDir = path.join(temporary(), 'run');
  const result = await runTinyTraining({ runDir, mode: decideRunMode(runDir, { resume: false, force: false }), numEpochs: 4 });
  assert.ok(result.finished);
  const names = fs.readdirSync(runDir).sort();
  assert.deepEqual(names, [
    'checkpoint_best.json', 'checkpoint_best.safetensors', 'checkpoint_final.json', 'checkpoint_final.optim.safetensors', 'checkpoint_final.safetensors',
    'checkpoint_latest.json', 'checkpoint_latest.optim.safetensors', 'checkpoint_latest.safetensors', 'log.jsonl', 'plan.json',
  ]);
  const log = readEpochLog(path.join(runDir, 'log.jsonl'));
  assert.deepEqual(log.map((r) => r.epoch), [0, 1, 2, 3]);
  for (const key of ['epoch', 'train_loss', 'val_loss', 'pseudo_dice', 'ema_pseudo_dice', 'lr', 'epoch_seconds', 'loader_wait_seconds']) assert.ok(key in log[0]!, key);
  const lastBest = log.filter((r) => r.is_best).at(-1)!;
  const best = loadCheckpoint<TrainingSidecar>(path.join(runDir, 'checkpoint_best'));
  assert.equal(best.sidecar.state.epoch, lastBest.epoch + 1);
  assert.equal(best.sidecar.state.bestEma, lastBest.ema_pseudo_dice);
  assert.equal(best.optimizer, null);
  const final = loadCheckpoint<TrainingSidecar>(path.join(runDir, 'checkpoint_final.safetensors'));
  assert.equal(final.sidecar.state.epoch, 4);
  assert.equal(final.sidecar.parameters.frozen, 0);
  assert.equal(final.sidecar.parameters.trainable, result.parameters.trainable);
  assert.ok(final.sidecar.parameters.trainable > 1000);
  assert.equal(final.sidecar.state.epochSeconds.length, 4);
  assert.equal(final.sidecar.strategy.name, 'scratch');
  assert.ok(final.weights.has('encoder.stages.0.0.convs.0.conv.weight'));
  assert.ok(final.weights.has('decoder.seg_layers.0.weight'));
  fs.rmSync(path.dirname(runDir), { recursive: true });
});

test('an existing run folder is not clobbered without --force or --resume', async () => {
  const runDir = path.join(temporary(), 'run');
  await runTinyTraining({ runDir, mode: 'fresh', numEpochs: 1 });
  const before = fs.readFileSync(path.join(runDir, 'log.jsonl'), 'utf8');
  assert.throws(() => decideRunMode(runDir, { resume: false, force: false }), (e: unknown) => e instanceof InputError && /already holds a training run: use --resume/.test(e.message) && e.message.startsWith(runDir));
  assert.equal(fs.readFileSync(path.join(runDir, 'log.jsonl'), 'utf8'), before);
  assert.throws(() => decideRunMode(runDir, { resume: true, force: true }), /exclude each other/);
  assert.equal(decideRunMode(runDir, { resume: true, force: false }), 'resume');
  fs.writeFileSync(path.join(runDir, 'notes.txt'), 'mine');
  assert.equal(decideRunMode(runDir, { resume: false, force: true }), 'fresh');
  clearRunFolder(runDir);
  assert.deepEqual(fs.readdirSync(runDir), ['notes.txt']);
  assert.throws(() => decideRunMode(runDir, { resume: false, force: false }), /exists and is not empty/);
  assert.equal(decideRunMode(path.join(runDir, 'new'), { resume: true, force: false }), 'fresh', '--resume of a run that never saved starts it');
  fs.rmSync(path.dirname(runDir), { recursive: true });
});

test('resuming with other settings is refused', async () => {
  const runDir = path.join(temporary(), 'run');
  await runTinyTraining({ runDir, mode: 'fresh', numEpochs: 1 });
  await assert.rejects(runTinyTraining({ runDir, mode: 'resume', numEpochs: 1, seed: 12 }), (e: unknown) => e instanceof InputError && /cannot resume with other settings:\n {2}- seed: the run has 11, now 12/.test(e.message));
  fs.rmSync(path.dirname(runDir), { recursive: true });
});

/** Run the tiny training in a child process that hangs after `epochs` epochs (checkpoint written); kill it with SIGKILL. */
async function trainAndKill(runDir: string, epochs: number): Promise<void> {
  const support = new URL('./test-support.ts', import.meta.url).href;
  const code = `
    import { runTinyTraining } from ${JSON.stringify(support)};
    await runTinyTraining({ runDir: ${JSON.stringify(runDir)}, mode: 'fresh', hooks: [{ onEpochEnd(t) {
      if (t.state.epoch === ${epochs}) { process.stdout.write('HANGING\\n'); setInterval(() => {}, 1000); return new Promise(() => {}); }
    } }] });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exit = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (codeOrNull, signal) => resolve(signal ?? codeOrNull)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      if (String(chunk).includes('HANGING')) resolve();
    });
    child.on('exit', () => reject(new Error(`the child ended before hanging: ${stderr}`)));
  });
  child.kill('SIGKILL');
  assert.equal(await exit, 'SIGKILL');
}

test('a run killed with SIGKILL resumes from its latest checkpoint to the losses and final weights of an uninterrupted run', async () => {
  const root = temporary();
  const straight = path.join(root, 'straight');
  await runTinyTraining({ runDir: straight, mode: 'fresh' });
  const killed = path.join(root, 'killed');
  await trainAndKill(killed, 3);
  assert.equal(readEpochLog(path.join(killed, 'log.jsonl')).length, 3);
  assert.ok(!fs.existsSync(path.join(killed, 'checkpoint_final.json')));
  // As if the kill had come after the log line of epoch 3 was (partly) written but before its checkpoint.
  fs.appendFileSync(path.join(killed, 'log.jsonl'), '{"epoch":3,"train_loss":0.1}\n{"epoch":4,"tra');
  const mode = decideRunMode(killed, { resume: true, force: false });
  assert.equal(mode, 'resume');
  const result = await runTinyTraining({ runDir: killed, mode });
  assert.equal(result.resumedFromEpoch, 3);
  assert.ok(result.finished);
  const pick = (dir: string) => readEpochLog(path.join(dir, 'log.jsonl')).map((r) => [r.epoch, r.train_loss, r.val_loss, r.pseudo_dice, r.ema_pseudo_dice, r.is_best, r.lr]);
  assert.equal(pick(killed).length, 5);
  assert.deepEqual(pick(killed), pick(straight));
  const finalOf = (dir: string) => loadCheckpoint(path.join(dir, 'checkpoint_final')).sidecar.files;
  assert.equal(finalOf(killed).weights.sha256, finalOf(straight).weights.sha256);
  assert.equal(finalOf(killed).optimizer!.sha256, finalOf(straight).optimizer!.sha256);
  assert.equal(loadCheckpoint(path.join(killed, 'checkpoint_best')).sidecar.files.weights.sha256, loadCheckpoint(path.join(straight, 'checkpoint_best')).sidecar.files.weights.sha256);
  fs.rmSync(root, { recursive: true });
});
