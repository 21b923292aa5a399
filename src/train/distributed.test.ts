/**
 * Data-parallel training against its reference, one process on the whole batch: two ranks on
 * 127.0.0.1 (child processes, test-helpers/data-parallel-rank.ts) train the tiny plan on the
 * in-memory sphere stream, each on its share of every batch, and must give the one-process
 * run's losses, pseudo Dice and weights. Also: where ranks come from (torchrun, Slurm), how a
 * batch is split (nnU-Net's rule), and that a rank that dies ends the other with an error at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rankBatchShare } from '../data/index.js';
import { readSafetensors } from '../io/index.js';
import { distributedSupport } from '../tensor/index.js';
import { freePort, runTsxScript, type ScriptRun } from '../tensor/test-support.js';
import { firstSlurmHost, rendezvousFromEnv } from './distributed.js';
import { runTinyTraining } from './test-support.js';
import type { EpochRecord } from './trainer.js';

const RANK_SCRIPT = fileURLToPath(new URL('./test-helpers/data-parallel-rank.ts', import.meta.url));
const skip = distributedSupport().available ? false : `the addon has no data-parallel support (${distributedSupport().reason})`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-trainer-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function startRank(args: string[]): Promise<ScriptRun> {
  return runTsxScript(RANK_SCRIPT, args);
}

/** Largest |a - b| over every tensor of two weight files, and the largest |a|. */
function weightDifference(fileA: string, fileB: string): { maxDiff: number; maxAbs: number; relativeL2: number; tensors: number } {
  const a = readSafetensors(fileA);
  const b = readSafetensors(fileB);
  assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
  let maxDiff = 0;
  let maxAbs = 0;
  let diffSquares = 0;
  let squares = 0;
  for (const [name, entry] of a.tensors) {
    assert.equal(entry.dtype, 'F32', name);
    const x = new Float32Array(entry.data.slice().buffer);
    const y = new Float32Array(b.tensors.get(name)!.data.slice().buffer);
    for (let i = 0; i < x.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(x[i]! - y[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(x[i]!));
      diffSquares += (x[i]! - y[i]!) ** 2;
      squares += x[i]! ** 2;
    }
  }
  return { maxDiff, maxAbs, relativeL2: Math.sqrt(diffSquares / squares), tensors: a.tensors.size };
}

test('ranks come from torchrun variables or from Slurm (first node of the step serves the store)', () => {
  assert.equal(rendezvousFromEnv({}), null);
  assert.equal(rendezvousFromEnv({ WORLD_SIZE: '1', RANK: '0' }), null, 'a world of one is a plain run');
  assert.deepEqual(rendezvousFromEnv({ WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', MASTER_ADDR: 'node7', MASTER_PORT: '29400' }), {
    rank: 3, worldSize: 4, localRank: 1, host: 'node7', port: 29400, source: 'torchrun', networkInterface: null,
  });
  assert.deepEqual(rendezvousFromEnv({ SLURM_PROCID: '2', SLURM_NTASKS: '4', SLURM_LOCALID: '0', SLURM_STEP_NODELIST: 'gpu[03-05,9],cpu1', SLURM_JOB_ID: '123456' }), {
    rank: 2, worldSize: 4, localRank: 0, host: 'gpu03', port: 20000 + (123456 % 20000), source: 'slurm', networkInterface: null,
  });
  assert.equal(rendezvousFromEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '4', SLURM_STEP_NUM_TASKS: '1', SLURM_STEP_NODELIST: 'n1' }), null, 'a batch script outside srun is one process');
  assert.equal(firstSlurmHost('node12'), 'node12');
  assert.equal(firstSlurmHost('a[1-3]'), 'a1');
  assert.throws(() => rendezvousFromEnv({ WORLD_SIZE: '2', RANK: '2' }), /outside a world of 2/);
  assert.throws(() => rendezvousFromEnv({ WORLD_SIZE: '2', RANK: 'x' }), /RANK must be a non-negative integer/);
});

test("a batch is split as nnU-Net's DDP splits it: sizes differ by at most one, the first ranks take the extra", () => {
  // nnUNetTrainer._set_batch_size_and_oversample: [B // W] * W, +1 where (B // W) * W + rank < B.
  assert.deepEqual([0, 1].map((r) => rankBatchShare(2, 2, r)), [[0, 1], [1, 2]]);
  assert.deepEqual([0, 1].map((r) => rankBatchShare(3, 2, r)), [[0, 2], [2, 3]]);
  assert.deepEqual([0, 1, 2].map((r) => rankBatchShare(7, 3, r)), [[0, 3], [3, 5], [5, 7]]);
  assert.deepEqual([0, 1, 2, 3].map((r) => rankBatchShare(4, 4, r)), [[0, 1], [1, 2], [2, 3], [3, 4]]);
});

test('two ranks on 127.0.0.1 train as one process on the whole batch: same losses, pseudo Dice and weights', { skip }, async (t) => {
  // A batch of 3 splits 2 + 1: unequal shares, batch Dice on (the tiny plan), deep supervision.
  const batchSize = 3;
  const port = await freePort();
  const ranks = Promise.all([0, 1].map((rank) => startRank([path.join(tmp, 'ddp'), String(rank), '2', String(port), String(batchSize)])));
  const reference = await runTinyTraining({ runDir: path.join(tmp, 'one'), mode: 'fresh', numEpochs: 2, batchSize });
  const [rank0, rank1] = await ranks;
  assert.equal(rank0!.code, 0, rank0!.stderr);
  assert.equal(rank1!.code, 0, rank1!.stderr);
  const histories = [rank0!, rank1!].map((r) => JSON.parse(r.stdout.trim()) as EpochRecord[]);
  let worstLoss = 0;
  // fp32: the ranks' CE and Dice sums are added in another order than one process adds them,
  // and a batch of 2 and of 1 may run other oneDNN convolution kernels than a batch of 3; each
  // is a relative rounding of ~1e-7 per op, far below 1e-5 after 6 steps (measured: ~1e-7).
  // The pseudo Dice counts argmax voxels, and a near-tie voxel may flip: one flip in ~1000
  // counted voxels moves it by ~1e-3, its bound (absolute).
  for (const history of histories) {
    assert.equal(history.length, 2);
    history.forEach((record, epoch) => {
      const expected = reference.history[epoch]!;
      assert.ok(Math.abs(record.pseudo_dice! - expected.pseudo_dice!) <= 1e-3, `epoch ${epoch} pseudo Dice ${record.pseudo_dice} vs ${expected.pseudo_dice}`);
      for (const key of ['train_loss', 'val_loss', 'lr'] as const) {
        const value = record[key] as number;
        const want = expected[key] as number;
        worstLoss = Math.max(worstLoss, Math.abs(value - want) / Math.max(Math.abs(want), 1e-3));
        assert.ok(Math.abs(value - want) <= 1e-5 * Math.max(Math.abs(want), 1e-3), `epoch ${epoch} ${key}: ${value} vs one process ${want}`);
      }
    });
  }
  assert.deepEqual(histories[0]!.map((r) => r.train_loss), histories[1]!.map((r) => r.train_loss), 'every rank computes the global loss');
  // Rank 0 alone writes the run folder.
  assert.ok(fs.existsSync(path.join(tmp, 'ddp', 'checkpoint_final.safetensors')));
  assert.equal(fs.readFileSync(path.join(tmp, 'ddp', 'log.jsonl'), 'utf8').trim().split('\n').length, 2);
  const weights = weightDifference(path.join(tmp, 'one', 'checkpoint_final.safetensors'), path.join(tmp, 'ddp', 'checkpoint_final.safetensors'));
  // Conv biases before instance norm have a gradient of zero up to rounding (~1e-11 here), so
  // the bound is relative to the model's largest weight rather than to each tensor's own scale.
  t.diagnostic(`worst relative loss/Dice difference ${worstLoss.toExponential(2)}; weights: max |diff| ${weights.maxDiff.toExponential(2)} (max |w| ${weights.maxAbs.toFixed(3)}), relative L2 ${weights.relativeL2.toExponential(2)} over ${weights.tensors} tensors`);
  assert.ok(weights.maxDiff <= 1e-5 * weights.maxAbs, `max |w_ddp - w_one| ${weights.maxDiff} vs max |w| ${weights.maxAbs}`);
  assert.ok(weights.relativeL2 <= 1e-5, `relative L2 ${weights.relativeL2}`);
});

test('a rank that dies makes the other fail with an error within seconds, not hang', { skip }, async (t) => {
  const port = await freePort();
  const [rank0, rank1] = await Promise.all([
    startRank([path.join(tmp, 'dead'), '0', '2', String(port), '2']),
    startRank([path.join(tmp, 'dead'), '1', '2', String(port), '2', '1']),
  ]);
  assert.equal(rank1!.code, 3, rank1!.stderr);
  assert.notEqual(rank0!.code, 0, 'the survivor fails');
  assert.match(rank0!.stderr, /a collective with the other ranks failed .*Connection (closed|reset) by peer/, rank0!.stderr);
  const seconds = (rank0!.exitedAt - rank1!.exitedAt) / 1000;
  t.diagnostic(`the survivor exited ${seconds.toFixed(2)} s after the dead rank: ${rank0!.stderr.split('\n').find((line) => /Error: a collective/.test(line))?.trim()}`);
  assert.ok(seconds < 10, `the survivor took ${seconds.toFixed(1)} s to exit`);
});
