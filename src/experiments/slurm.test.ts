/**
 * The Slurm executor on a real one-node cluster on localhost (scripts/slurm-local.sh, started and
 * stopped here). One small study (tiny phantoms, multi-lesion pre-training, scratch and body
 * fine-tuning on one fold) runs three ways with the same seeds: with the local executor; through
 * Slurm, with one training job scancel'ed mid-run (the driver resubmits it, it resumes from its
 * latest checkpoint and its epochs continue); and through Slurm with --detach, then collected by a
 * second call. All three give the same metrics. Where the cluster cannot start (not root, no
 * apt), the tests are skipped with the reason, except under CI=true, where that is a failure.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { readEpochLog } from '../train/index.js';
import { localExecutor } from './executor.js';
import { runExperiment, startExperiment } from './runner.js';
import { jobRegistryFile, sbatchOptions, slurmExecutor } from './slurm.js';
import { execCommandRunner, JobRegistry, SlurmClient } from './slurmJobs.js';
import { validateExperimentSpec, type ExperimentSpec } from './spec.js';
import { formatStatus, studyStatus } from './status.js';
import { spawnStepRunner } from './steps.js';
import type { StudyResults } from './results.js';
import type { StudyStep } from './studySteps.js';
import { CLI } from '../cli/test-support.js';
import { localSlurmCluster } from './test-support.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const launcher = { executable: process.execPath, args: [...CLI], cwd: repo };
const cluster = localSlurmCluster({ prefix: 'lesionseg-slurm-', basePort: 16817 });
const env = cluster.env;
const client = new SlurmClient(execCommandRunner(env));

const SPEC = {
  version: 1,
  name: 'slurm-small',
  datasets: { covid: { synth: { kind: 'covid', cases: 4, size: 'tiny', seed: 3 } }, tumor: { synth: { kind: 'tumor', cases: 3, size: 'tiny', seed: 4 } } },
  sources: ['tumor'],
  target: { dataset: 'covid', split: { limited: { folds: 2, seed: 0 } }, folds: [0] },
  pretrained: ['none', 'multi'],
  strategies: ['scratch', 'finetune'],
  preset: 'tiny',
  pretraining: { epochs: 2, iterationsPerEpoch: 2, validationIterations: 1 },
  training: { epochs: 8, iterationsPerEpoch: 3, validationIterations: 1 },
  seed: 5,
  threads: 1,
  jobs: 2,
  workers: 0,
  executor: 'slurm',
  slurm: { pollSeconds: 1, maxResubmits: 2, train: { time: '10:00' } },
};
const spec: ExperimentSpec = validateExperimentSpec(SPEC, 'slurm-small.json');

function slurm(root: string, detach: boolean) {
  return slurmExecutor({ root, name: spec.name, settings: spec.slurm, launcher, threads: spec.threads, device: spec.device, jobs: spec.jobs, detach, client });
}

/** Every metric of every case and fold, and every epoch's losses, to 1e-6 (the same seeds and the same CPU: only float32 sums in another order could differ). */
function assertSameMetrics(actual: StudyResults, expected: StudyResults, what: string): { compared: number; maxDifference: number } {
  let compared = 0;
  let maxDifference = 0;
  const close = (a: number, b: number, message: string): void => {
    compared++;
    maxDifference = Math.max(maxDifference, Math.abs(a - b));
    assert.ok(Math.abs(a - b) <= 1e-6, message);
  };
  assert.deepEqual(actual.arms.map((a) => a.name), expected.arms.map((a) => a.name));
  actual.arms.forEach((arm, a) => {
    arm.folds.forEach((fold, f) => {
      const reference = expected.arms[a]!.folds[f]!;
      fold.cases.forEach((c, i) => {
        const r = reference.cases[i]!;
        assert.equal(c.caseId, r.caseId);
        for (const [name, value] of Object.entries(c)) {
          const other = (r as unknown as Record<string, unknown>)[name];
          if (typeof value === 'number' && typeof other === 'number') close(value, other, `${what}: ${arm.name} ${c.caseId} ${name}: ${value} vs ${other}`);
          else assert.deepEqual(value, other, `${what}: ${arm.name} ${c.caseId} ${name}`);
        }
      });
      fold.epochs.forEach((e, i) => close(e.trainLoss, reference.epochs[i]!.trainLoss, `${what}: ${arm.name} epoch ${i} train loss ${e.trainLoss} vs ${reference.epochs[i]!.trainLoss}`));
      assert.equal(fold.epochs.length, spec.training.epochs);
    });
  });
  assert.ok(actual.arms.some((arm) => arm.summary.dsc.mean !== null), `${what}: some Dice to compare`);
  return { compared, maxDifference };
}

let local: StudyResults | null = null;
const folders: string[] = [];
after(() => folders.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));
const folder = (name: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lesionseg-${name}-`));
  folders.push(dir);
  return dir;
};

test('the study with the local executor (the reference)', { timeout: 600_000 }, async (t) => {
  const skipReason = cluster.skipReason();
  if (skipReason !== null) return t.skip(skipReason);
  local = await runExperiment({ spec: { ...spec, executor: 'local' }, outDir: folder('slurm-ref'), executor: localExecutor(spawnStepRunner(launcher), spec.jobs), bootstrapResamples: 100 });
  assert.equal(local.arms.length, 2);
});

test('through Slurm, with a training job scancel\'ed mid-run: the same metrics, and that run resumed where it stopped', { timeout: 900_000 }, async (t) => {
  const skipReason = cluster.skipReason();
  if (skipReason !== null) return t.skip(skipReason);
  assert.ok(local !== null, 'the reference study ran');
  const dir = folder('slurm-cancel');
  const runDir = path.join(dir, 'runs', 'multi', 'finetune', 'fold_0');
  const key = 'train/multi/finetune/fold_0';
  // Cancel the fine-tuning job once it has saved an epoch and has more to go.
  let cancelled: { jobId: string; epochsBefore: string[] } | null = null;
  let stop = false;
  const watcher = (async () => {
    while (!stop && cancelled === null) {
      await sleep(100);
      const registryFile = jobRegistryFile(dir);
      if (!fs.existsSync(registryFile)) continue;
      const record = new JobRegistry(registryFile).steps[key];
      const epochs = readEpochLog(path.join(runDir, 'log.jsonl'));
      if (record === undefined || epochs.length < 1 || epochs.length >= spec.training.epochs - 2) continue;
      const lines = fs.readFileSync(path.join(runDir, 'log.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
      await client.cancel([record.jobId]);
      cancelled = { jobId: record.jobId, epochsBefore: lines };
    }
  })();
  const started = performance.now();
  const results = await runExperiment({ spec, outDir: dir, executor: slurm(dir, false), bootstrapResamples: 100 });
  stop = true;
  await watcher;
  t.diagnostic(`Slurm study with one cancelled job: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  assert.ok(cancelled !== null, 'the fine-tuning job was cancelled mid-run');
  const { jobId, epochsBefore } = cancelled as { jobId: string; epochsBefore: string[] };

  const record = new JobRegistry(jobRegistryFile(dir)).steps[key]!;
  assert.equal(record.state, 'done');
  assert.equal(record.jobIds[0], jobId, 'the first job was the cancelled one');
  assert.equal(record.jobIds.length, 2, 'resubmitted once');
  // Resumed, not retrained: the epochs logged before the cancel are kept byte for byte, and the rest follow.
  const after = fs.readFileSync(path.join(runDir, 'log.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
  assert.equal(after.length, spec.training.epochs);
  assert.ok(epochsBefore.length >= 1);
  for (const [i, line] of epochsBefore.entries()) {
    // The epoch running at the cancel may have been saved after the snapshot: every one snapshotted is there unchanged.
    assert.equal(after[i], line, `epoch ${i} was not trained again`);
  }
  assert.deepEqual(after.map((l) => (JSON.parse(l) as { epoch: number }).epoch), [...Array(spec.training.epochs).keys()]);
  const trainLog = fs.readFileSync(path.join(dir, 'logs', 'train_multi_finetune_fold0.log'), 'utf8');
  assert.match(trainLog, /SIGTERM: stopping after this epoch/);
  assert.match(trainLog, /strategy finetune \(resumed\)/);
  const resumedAt = /resumed at epoch (\d+)/.exec(trainLog);
  assert.ok(resumedAt !== null && Number(resumedAt[1]) >= epochsBefore.length, `the second job resumed at epoch ${resumedAt?.[1]} (>= ${epochsBefore.length})`);
  t.diagnostic(`cancelled job ${jobId} after ${epochsBefore.length} logged epoch(s); job ${record.jobIds[1]} resumed at epoch ${resumedAt![1]} of ${spec.training.epochs}`);
  assert.ok(fs.existsSync(path.join(dir, 'slurm', 'train_multi_finetune_fold0.sbatch')));

  const same = assertSameMetrics(results, local!, 'slurm vs local');
  t.diagnostic(`slurm (one job cancelled and resumed) vs local: ${same.compared} numbers compared, largest difference ${same.maxDifference}`);
  const status = await studyStatus(dir, client);
  assert.ok(status.every((s) => s.state === 'done'), formatStatus(status));
});

test('--detach submits the whole grid and exits; --status lists the jobs; a second call collects the study', { timeout: 900_000 }, async (t) => {
  const skipReason = cluster.skipReason();
  if (skipReason !== null) return t.skip(skipReason);
  assert.ok(local !== null, 'the reference study ran');
  const dir = folder('slurm-detach');
  const started = performance.now();
  const outcome = await startExperiment({ spec, outDir: dir, executor: slurm(dir, true) });
  assert.equal(outcome.kind, 'detached');
  if (outcome.kind !== 'detached') return;
  assert.equal(outcome.jobs.length, 5, '1 pre-training, 2 trainings, 2 predictions');
  assert.ok(!fs.existsSync(path.join(dir, 'results.json')));
  const status = await studyStatus(dir, client);
  assert.equal(status.length, 5);
  assert.ok(status.every((s) => s.jobId !== null && ['queued', 'running', 'done'].includes(s.state)), formatStatus(status));
  assert.ok(status.some((s) => s.state === 'queued'), `the dependent jobs wait: ${formatStatus(status)}`);
  t.diagnostic(`--status right after --detach:\n${formatStatus(status)}`);
  const results = await runExperiment({ spec, outDir: dir, executor: slurm(dir, false), bootstrapResamples: 100 });
  t.diagnostic(`detached Slurm study collected after ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const registry = new JobRegistry(jobRegistryFile(dir));
  assert.deepEqual(Object.values(registry.steps).map((r) => [r.state, r.jobIds.length]), Array(5).fill(['done', 1]), 'every step ran once, as the job the first call submitted');
  const same = assertSameMetrics(results, local!, 'detached slurm vs local');
  t.diagnostic(`detached slurm vs local: ${same.compared} numbers compared, largest difference ${same.maxDifference}`);
  const timings = JSON.parse(fs.readFileSync(path.join(dir, 'timings.json'), 'utf8')) as Record<string, number>;
  assert.equal(Object.keys(timings).length, 5, 'the jobs\' run times are recorded');
});

test('a job that fails for a reason of its own stops the study with its log\'s last lines, and is not resubmitted', { timeout: 300_000 }, async (t) => {
  const skipReason = cluster.skipReason();
  if (skipReason !== null) return t.skip(skipReason);
  const dir = folder('slurm-fail');
  const nothing = (): void => {};
  const step = (key: string, args: string[], after: string[]): StudyStep => ({ key, kind: 'train', name: key.replace('/', '_'), label: key, args, logFile: path.join(dir, 'logs', `${key.replace('/', '_')}.log`), after, isDone: () => false, progress: () => 0, prepare: nothing, cleanup: nothing });
  const steps = [step('train/bad', ['train', '--no-such-option'], []), step('train/after', ['info'], ['train/bad'])];
  const executor = slurmExecutor({ root: dir, name: 'fail', settings: spec.slurm, launcher, threads: 1, device: 'cpu', jobs: 2, detach: false, client });
  await assert.rejects(executor.run(steps, { reused: nothing, finished: nothing }), (e: unknown) => {
    const message = (e as Error).message;
    assert.match(message, /lesionseg train \(train\/bad\): job \d+ FAILED \(exit 2\)/);
    assert.match(message, /lesionseg: required option '--dataset <dir>' not specified/, 'the log\'s last lines');
    return true;
  });
  const registry = new JobRegistry(jobRegistryFile(dir));
  assert.equal(registry.steps['train/bad']!.state, 'failed');
  assert.equal(registry.steps['train/bad']!.jobIds.length, 1, 'not resubmitted');
  // The step after it was cancelled by Slurm (--kill-on-invalid-dep), not left waiting.
  const jobs = await client.states([registry.steps['train/after']!.jobId]);
  for (let i = 0; i < 20 && jobs.get(registry.steps['train/after']!.jobId)?.phase === 'queued'; i++) {
    await sleep(500);
    jobs.set(registry.steps['train/after']!.jobId, (await client.states([registry.steps['train/after']!.jobId])).get(registry.steps['train/after']!.jobId)!);
  }
  assert.equal(jobs.get(registry.steps['train/after']!.jobId)?.state, 'CANCELLED');
});

test('sbatch options: the spec\'s resources, the step kind\'s overrides, requeue and the time-limit signal for training', () => {
  const settings = validateExperimentSpec({ ...SPEC, slurm: { partition: 'gpu', account: 'lab', time: '2-00:00:00', memory: '32G', extra: ['--constraint=v100'], predict: { time: '04:00:00', extra: [] }, signalSeconds: 600 } }, 's.json').slurm;
  const base = { name: 'paper', settings, threads: 8, device: 'cuda', launcher };
  const train = sbatchOptions({ kind: 'train', name: 'train_x', logFile: '/study/logs/train_x.log' }, base);
  assert.deepEqual(train, ['--job-name=lesionseg-paper-train_x', '--output=/study/logs/train_x.log', '--open-mode=append', `--chdir=${repo}`, '--ntasks=1', '--cpus-per-task=8', '--partition=gpu', '--account=lab', '--time=2-00:00:00', '--mem=32G', '--gpus=1', '--requeue', '--signal=B:USR1@600', '--constraint=v100']);
  const predict = sbatchOptions({ kind: 'predict', name: 'predict_x', logFile: '/study/logs/predict_x.log' }, base);
  assert.ok(predict.includes('--time=04:00:00') && !predict.some((o) => o.startsWith('--signal')) && !predict.includes('--constraint=v100'), predict.join(' '));
  assert.throws(() => validateExperimentSpec({ ...SPEC, executor: 'pbs', slurm: { partition: '', gpu: 1, train: { extra: ['v100'] } } }, 's.json'), (e: unknown) => {
    const text = String((e as Error).message) + JSON.stringify((e as { issues?: unknown }).issues);
    for (const expected of ['executor', 'slurm.partition', "unknown key 'gpu'", 'slurm.train.extra[0]']) assert.ok(text.includes(expected), `${expected} in ${text}`);
    return true;
  });
});
