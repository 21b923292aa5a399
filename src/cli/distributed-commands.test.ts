/**
 * `train --nproc 2` as a user runs it, on a tiny COVID phantom with the real loader (augmentation
 * on): the same log and weights as one process on the whole batch; a launcher killed by SIGKILL
 * takes its ranks with it and the run resumes to the same result; a rank killed mid-run ends the
 * launcher with a message naming it; `pretrain --mode multi --nproc 2`; and the refusals (exit 2,
 * one line).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors } from '../io/index.js';
import { writeSynthDataset } from '../synth/index.js';
import { distributedSupport } from '../tensor/index.js';
import { CLI, lesionseg, ROOT, type Run } from './test-support.js';

const skip = distributedSupport().available ? false : `the addon has no data-parallel support (${distributedSupport().reason})`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-ddp-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);
const dataset = writeSynthDataset({ kind: 'covid', cases: 4, out: at('covid'), seed: 3, size: 'tiny' });
const tumor = writeSynthDataset({ kind: 'tumor', cases: 3, out: at('tumor'), seed: 4, size: 'tiny' });
// 4 epochs of 2 steps, batch 2 (preset tiny): one sample per rank.
const RUN = ['--preset', 'tiny', '--fold', 'all', '--epochs', '4', '--iters-per-epoch', '2', '--val-iters', '1', '--workers', '0'];
const train = (out: string, ...extra: string[]): Promise<Run> => lesionseg('train', '--dataset', at('covid'), '--out', at(out), ...RUN, ...extra);

function ok(run: Run): Run {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return run;
}

const readLog = (out: string): Record<string, number>[] =>
  fs.existsSync(at(out, 'log.jsonl')) ? fs.readFileSync(at(out, 'log.jsonl'), 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, number>) : [];

/** The reference: one process, the whole batch. */
const reference = dataset.then(() => train('one', '--threads', '1'));

/**
 * The losses agree to 1e-5 relative (fp32: the ranks add the CE and Dice sums in another order,
 * and a batch of 1 may run other oneDNN kernels than a batch of 2; ~1e-7 per op), and the weights
 * to 1e-5 of the largest weight (conv biases before instance norm have a zero gradient up to
 * rounding, so their own scale is no yardstick). The pseudo Dice counts argmax voxels: a voxel
 * whose two logits tie to ~1e-7 may flip, and one flip moves a Dice of ~5000 counted voxels by
 * ~2e-4 (measured: 3e-6), so it gets 5e-4 absolute.
 */
function assertSameRun(out: string, wantOut: string): void {
  const got = readLog(out);
  const want = readLog(wantOut);
  assert.equal(got.length, want.length);
  got.forEach((record, epoch) => {
    for (const key of ['train_loss', 'val_loss', 'lr']) {
      const expected = want[epoch]![key]!;
      assert.ok(Math.abs(record[key]! - expected) <= 1e-5 * Math.max(Math.abs(expected), 1e-3), `epoch ${epoch} ${key}: ${record[key]} vs ${expected}`);
    }
    for (const key of ['pseudo_dice', 'ema_pseudo_dice']) assert.ok(Math.abs(record[key]! - want[epoch]![key]!) <= 5e-4, `epoch ${epoch} ${key}: ${record[key]} vs ${want[epoch]![key]}`);
  });
  const a = readSafetensors(at(out, 'checkpoint_final.safetensors'));
  const b = readSafetensors(at(wantOut, 'checkpoint_final.safetensors'));
  let maxDiff = 0;
  let maxAbs = 0;
  for (const [name, entry] of b.tensors) {
    const x = new Float32Array(entry.data.slice().buffer);
    const y = new Float32Array(a.tensors.get(name)!.data.slice().buffer);
    for (let i = 0; i < x.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(x[i]! - y[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(x[i]!));
    }
  }
  assert.ok(maxDiff <= 1e-5 * maxAbs, `weights: max |diff| ${maxDiff} vs max |w| ${maxAbs}`);
}

/** Pids of live processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function startLauncher(out: string, ...extra: string[]): { child: ReturnType<typeof spawn>; done: Promise<Run> } {
  const child = spawn(process.execPath, [...CLI, 'train', '--dataset', at('covid'), '--out', at(out), ...RUN, '--nproc', '2', ...extra], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Run>((resolve) => child.on('exit', (code, signal) => resolve({ code: code ?? (signal !== null ? 128 : 1), stdout, stderr })));
  return { child, done };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('train --nproc 2 gives the log and weights of one process on the whole batch (real loader, augmentation on)', { skip }, async () => {
  ok(await reference);
  const run = ok(await train('two', '--nproc', '2'));
  assert.equal(run.stdout.trim().split('\n').length, 1, 'rank 0 alone reports');
  assert.match(run.stdout, /finished after 4 epoch/);
  assertSameRun('two', 'one');
});

test('a 2-rank run killed with SIGKILL leaves no rank behind and resumes to the same result', { skip }, async () => {
  ok(await reference);
  const { child, done } = startLauncher('killed');
  await waitFor(() => fs.existsSync(at('killed', 'checkpoint_latest.json')), 60_000);
  child.kill('SIGKILL');
  await done;
  assert.ok(readLog('killed').length < 4, 'killed before the end');
  // The ranks die with their launcher (PR_SET_PDEATHSIG): nothing still writes the run folder.
  await waitFor(() => processesMentioning(at('killed')).length === 0, 5000);
  const resumed = ok(await train('killed', '--nproc', '2', '--resume'));
  assert.match(resumed.stdout, /resumed at epoch [1-3]/);
  assertSameRun('killed', 'one');
});

test('a rank killed mid-run ends the launcher within seconds, naming the rank', { skip }, async () => {
  await dataset;
  const { child, done } = startLauncher('rank-dies', '--epochs', '50');
  await waitFor(() => readLog('rank-dies').length >= 1, 60_000);
  const rank1 = processesMentioning(at('rank-dies')).filter((pid) => pid !== child.pid && fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('RANK=1'));
  assert.equal(rank1.length, 1);
  const killedAt = Date.now();
  process.kill(rank1[0]!, 'SIGKILL');
  const run = await done;
  const seconds = (Date.now() - killedAt) / 1000;
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /rank 1 of 2 was killed by SIGKILL; stopping the other ranks/);
  assert.match(run.stderr, /rank 0: a collective with the other ranks failed \(did another rank die or stop answering\?\): .*Connection (closed|reset) by peer/);
  assert.ok(seconds < 10, `the launcher took ${seconds.toFixed(1)} s`);
});

test('pretrain --mode multi --nproc 2 (a head per dataset) gives the losses and weights of one process', { skip }, async () => {
  await Promise.all([dataset, tumor]);
  // Batches mix the two datasets, so a rank often has no sample of a task another rank has.
  const short = ['--datasets', `${at('tumor')},${at('covid')}`, '--mode', 'multi', '--preset', 'tiny', '--epochs', '2', '--iters-per-epoch', '3', '--val-iters', '2', '--workers', '0'];
  ok(await lesionseg('pretrain', ...short, '--out', at('pre-one'), '--threads', '1'));
  const run = ok(await lesionseg('pretrain', ...short, '--out', at('pre-two'), '--nproc', '2'));
  assert.equal(run.stdout.trim().split('\n').length, 1, 'rank 0 alone reports');
  assertSameRun('pre-two', 'pre-one');
});

test('--nproc refusals: more ranks than the batch, --nproc inside a rank', { skip }, async () => {
  await dataset;
  // Independent runs: side by side, to keep the file's time down.
  const [tooMany, nested] = await Promise.all([
    train('three', '--nproc', '3'),
    new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, [...CLI, 'train', '--dataset', at('covid'), '--out', at('nested'), ...RUN, '--nproc', '2'], { cwd: ROOT, env: { ...process.env, WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '1' } });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code: code ?? 1, stdout: '', stderr }));
    }),
  ]);
  assert.equal(tooMany.code, 2, tooMany.stderr);
  assert.match(tooMany.stderr, /--nproc 3: the plan's batch size is 2/);
  assert.equal(nested.code, 2, nested.stderr);
  assert.match(nested.stderr, /--nproc starts its own ranks; this process is already rank 0 of 2/);
  for (const run of [tooMany, nested]) assert.ok(!run.stderr.includes('    at '), 'no stack trace');
});
