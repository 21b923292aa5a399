/**
 * `srun -n 2 lesionseg train` on a one-node Slurm cluster on this machine (scripts/slurm-local.sh,
 * as src/experiments/slurm.test.ts starts it): the two tasks find each other from Slurm's
 * environment alone (SLURM_PROCID, SLURM_NTASKS, the step's first node as the TCPStore host),
 * train as one process on the whole batch does, and only rank 0 writes and reports. Skipped with
 * the reason when the cluster cannot start (no slurm-wlm, not root), except under CI=true.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSynthDataset } from '../synth/index.js';
import { distributedSupport } from '../tensor/index.js';
import { localSlurmCluster } from '../experiments/test-support.js';
import { CLI, lesionseg, ROOT, type Run } from './test-support.js';

const cluster = localSlurmCluster({
  prefix: 'lesionseg-slurm-ddp-',
  basePort: 15817,
  unavailable: distributedSupport().available ? null : `the addon has no data-parallel support (${distributedSupport().reason})`,
});
const env = { ...cluster.env, NO_COLOR: '1' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-srun-'));
const at = (...parts: string[]): string => path.join(tmp, ...parts);
const RUN = ['--preset', 'tiny', '--fold', 'all', '--epochs', '2', '--iters-per-epoch', '2', '--val-iters', '1', '--workers', '0', '--threads', '1'];

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function srun(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('srun', ['-n', '2', '--cpus-per-task=1', process.execPath, ...CLI, ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const readLog = (out: string): Record<string, number>[] => fs.readFileSync(at(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

test('srun -n 2 train: ranks from Slurm, the losses of one process on the whole batch, rank 0 reports', async (t) => {
  const skipReason = cluster.skipReason();
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
