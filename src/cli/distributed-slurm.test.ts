/**
 * `srun -n 2 lesionseg train` on a one-node Slurm cluster on this machine (scripts/slurm-local.sh,
 * as src/experiments/slurm.test.ts starts it): the two tasks find each other from Slurm's
 * environment alone (SLURM_PROCID, SLURM_NTASKS, the step's first node as the TCPStore host),
 * train as one process on the whole batch does, and only rank 0 writes and reports. Skipped with
 * the reason when the cluster cannot start (no slurm-wlm, not root), except under CI=true.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSynthDataset } from '../synth/index.js';
import { distributedSupport } from '../tensor/index.js';
import { lesionseg, MAIN, ROOT, type Run } from './test-support.js';

const script = path.join(ROOT, 'scripts', 'slurm-local.sh');
const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-slurm-ddp-'));
const env = { ...process.env, LESIONSEG_SLURM_DIR: state, LESIONSEG_SLURM_PORT: String(15817 + (process.pid % 500) * 2), SLURM_CONF: path.join(state, 'slurm.conf'), NO_COLOR: '1' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-srun-'));
const at = (...parts: string[]): string => path.join(tmp, ...parts);
const RUN = ['--preset', 'tiny', '--fold', 'all', '--epochs', '2', '--iters-per-epoch', '2', '--val-iters', '1', '--workers', '0', '--threads', '1'];

let skipReason: string | null = distributedSupport().available ? null : `the addon has no data-parallel support (${distributedSupport().reason})`;
before(() => {
  if (skipReason !== null) return;
  const started = spawnSync('nice', ['-n', '19', 'bash', script, 'start'], { env, encoding: 'utf8', timeout: 600_000 });
  if (started.status === 0) return;
  const why = `the one-node Slurm cluster did not start (scripts/slurm-local.sh start: status ${started.status}): ${started.stderr.trim().split('\n').slice(-3).join(' | ')}`;
  if (process.env.CI === 'true') throw new Error(why);
  skipReason = why;
});
after(() => {
  spawnSync('bash', [script, 'stop'], { env, encoding: 'utf8', timeout: 120_000 });
  fs.rmSync(state, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

function srun(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('srun', ['-n', '2', '--cpus-per-task=1', process.execPath, '--import', 'tsx', MAIN, ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const readLog = (out: string): Record<string, number>[] => fs.readFileSync(at(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

test('srun -n 2 train: ranks from Slurm, the losses of one process on the whole batch, rank 0 reports', async (t) => {
  if (skipReason !== null) return t.skip(skipReason);
  await writeSynthDataset({ kind: 'covid', cases: 4, out: at('covid'), seed: 3, size: 'tiny' });
  const one = await lesionseg('train', '--dataset', at('covid'), '--out', at('one'), ...RUN);
  assert.equal(one.code, 0, one.stderr);
  const two = await srun('train', '--dataset', at('covid'), '--out', at('srun'), ...RUN);
  assert.equal(two.code, 0, two.stderr);
  assert.equal(two.stdout.trim().split('\n').filter((line) => line.startsWith('train: finished')).length, 1, 'rank 0 alone reports');
  const got = readLog('srun');
  const want = readLog('one');
  assert.equal(got.length, 2);
  // fp32 sums in another order and other batch sizes per convolution: ~1e-7 (see distributed-commands.test.ts).
  got.forEach((record, epoch) => {
    for (const key of ['train_loss', 'val_loss']) assert.ok(Math.abs(record[key]! - want[epoch]![key]!) <= 1e-5 * Math.abs(want[epoch]![key]!), `epoch ${epoch} ${key}: ${record[key]} vs ${want[epoch]![key]}`);
  });
});
