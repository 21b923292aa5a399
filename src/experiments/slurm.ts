/**
 * The Slurm executor: each heavy step of a study (studySteps.ts) becomes a job whose script,
 * DIR/slurm/<step>.sbatch, runs `lesionseg` with the step's arguments, started the way the local
 * executor starts it, and appends to the same log (DIR/logs/<step>.log). A step is submitted once
 * the steps it waits for are done or submitted (then with `--dependency=afterok:ID
 * --kill-on-invalid-dep=yes`), at most `jobs` in flight, or the whole grid at once with detach
 * (submit, write DIR/slurm/jobs.json, return). Training jobs carry `--requeue` (Slurm requeues them
 * itself after preemption or a node failure) and `--signal=B:USR1@<s>`: `train` saves and exits 75
 * before the time limit. A job cancelled, preempted, timed out, failed on its node or exited 75 is
 * resubmitted (it resumes from its latest checkpoint: --resume), at most `maxResubmits` times in a
 * row without progress; the jobs that waited for it are cancelled and resubmitted with it. A job
 * that fails for a reason of its own stops the study with its log's last lines; the jobs still in
 * flight are left to Slurm, and the next call collects them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { atomicWriteFileSync, LesionsegError, sbatchQuote, shellQuote } from '../core/index.js';
import { assertStepOrder, type StepExecutor } from './executor.js';
import { JobRegistry, SlurmClient, type JobInfo, type StepRecord } from './slurmJobs.js';
import { logTail, type CommandLauncher } from './steps.js';
import type { SlurmResources, SlurmSettings } from './spec.js';
import type { StudyStep } from './studySteps.js';

export interface SlurmExecutorOptions {
  /** The study folder (scripts in slurm/, the job list slurm/jobs.json). */
  root: string;
  /** The study's name (in job names). */
  name: string;
  settings: SlurmSettings;
  /** How a job starts `lesionseg` (the local executor's launcher); its cwd is the job's working folder. */
  launcher: CommandLauncher & { cwd: string };
  /** Threads of each step (the default --cpus-per-task) and its device (cuda: one GPU by default). */
  threads: number;
  device: string;
  /** Jobs in flight at most (ignored with detach). */
  jobs: number;
  detach: boolean;
  client: SlurmClient;
  /** Told about submissions, resubmissions and jobs left running. */
  log?: (message: string) => void;
}

/** The folder of a study's job scripts and its job list. */
export const slurmDir = (root: string): string => path.join(root, 'slurm');
export const jobRegistryFile = (root: string): string => path.join(slurmDir(root), 'jobs.json');

/** The sbatch options of one step: the spec's resources, the step kind's overrides, then fault handling. */
export function sbatchOptions(step: Pick<StudyStep, 'kind' | 'name' | 'logFile'>, options: Pick<SlurmExecutorOptions, 'name' | 'settings' | 'threads' | 'device' | 'launcher'>): string[] {
  const s = options.settings;
  const r: SlurmResources = { ...s, ...Object.fromEntries(Object.entries(s.steps[step.kind]).filter(([, v]) => v !== undefined)) };
  const gpus = r.gpus ?? (options.device.startsWith('cuda') ? '1' : null);
  return [
    `--job-name=lesionseg-${options.name}-${step.name}`,
    `--output=${step.logFile}`,
    '--open-mode=append',
    `--chdir=${options.launcher.cwd}`,
    '--ntasks=1',
    `--cpus-per-task=${r.cpusPerTask ?? options.threads}`,
    ...(r.partition !== null ? [`--partition=${r.partition}`] : []),
    ...(r.account !== null ? [`--account=${r.account}`] : []),
    ...(r.qos !== null ? [`--qos=${r.qos}`] : []),
    ...(r.time !== null ? [`--time=${r.time}`] : []),
    ...(r.memory !== null ? [`--mem=${r.memory}`] : []),
    ...(gpus !== null ? [`--gpus=${gpus}`] : []),
    '--requeue',
    ...(step.kind === 'predict' ? [] : [`--signal=B:USR1@${s.signalSeconds}`]),
    ...(s.steps[step.kind].extra ?? r.extra),
  ];
}

/**
 * The job script of a step: its options as #SBATCH lines, then `lesionseg` exec'd (so that Slurm's
 * signals reach it). Every value from the spec goes through sbatchQuote (directives) or shellQuote
 * (the commands), which refuse control characters: no value can add a line or an option.
 */
export function sbatchScript(step: StudyStep, options: Pick<SlurmExecutorOptions, 'name' | 'settings' | 'threads' | 'device' | 'launcher'>): string {
  const command = [options.launcher.executable, ...options.launcher.args, ...step.args].map(shellQuote).join(' ');
  return [
    '#!/bin/bash',
    `# lesionseg study ${JSON.stringify(options.name)}, step ${JSON.stringify(step.key)}: written by \`lesionseg experiment --executor slurm\`.`,
    ...sbatchOptions(step, options).map((o) => `#SBATCH ${sbatchQuote(o)}`),
    `printf '\\n$ lesionseg %s\\n(slurm job %s on %s, restart %s)\\n' ${shellQuote(step.args.join(' '))} "$SLURM_JOB_ID" "$(hostname -s)" "\${SLURM_RESTART_COUNT:-0}"`,
    `exec ${command}`,
    '',
  ].join('\n');
}

function why(job: JobInfo): string {
  return `job ${job.jobId} ${job.state}${job.exitCode !== null && job.exitCode !== 0 ? ` (exit ${job.exitCode})` : ''}${job.reason && job.reason !== 'None' ? `, ${job.reason}` : ''}`;
}

export function slurmExecutor(options: SlurmExecutorOptions): StepExecutor {
  const log = options.log ?? (() => {});
  const client = options.client;
  return {
    name: 'slurm',
    async run(steps, events) {
      assertStepOrder(steps);
      const registry = new JobRegistry(jobRegistryFile(options.root));
      const done = new Set<string>();
      /** Steps with a job that may be queued or running: key -> job id. */
      const inFlight = new Map<string, string>();
      const record = (key: string): StepRecord | undefined => registry.steps[key];

      // What earlier calls left: jobs still queued or running are adopted, ended ones collected.
      const earlier = steps.filter((s) => record(s.key)?.state === 'submitted');
      const known = await client.states(earlier.map((s) => record(s.key)!.jobId));
      for (const step of steps) {
        const r = record(step.key);
        const job = r?.state === 'submitted' ? known.get(r.jobId) : undefined;
        if (r !== undefined && job !== undefined && (job.phase === 'queued' || job.phase === 'running')) {
          inFlight.set(step.key, r.jobId);
          continue;
        }
        if (r !== undefined && r.state === 'submitted' && job !== undefined) r.seconds += job.runSeconds ?? 0;
        if (step.isDone() && step.after.every((k) => done.has(k))) {
          done.add(step.key);
          if (r?.state === 'submitted') {
            r.state = 'done';
            step.cleanup();
            events.finished(step, r.seconds);
          } else {
            events.reused(step);
          }
        } else if (r !== undefined) {
          // Ended without finishing (or failed before): this call starts it again, with a fresh budget.
          delete registry.steps[step.key];
        }
      }
      registry.save();

      const limit = options.detach ? Number.POSITIVE_INFINITY : options.jobs;
      const submit = async (step: StudyStep): Promise<void> => {
        step.prepare();
        const script = path.join(slurmDir(options.root), `${step.name}.sbatch`);
        // A job whose output folder does not exist fails without a word: make it first.
        fs.mkdirSync(path.dirname(step.logFile), { recursive: true });
        atomicWriteFileSync(script, sbatchScript(step, options));
        const dependsOn = step.after.filter((k) => !done.has(k)).map((k) => inFlight.get(k)!);
        const jobId = await client.submit(script, dependsOn);
        const before = record(step.key);
        registry.steps[step.key] = { jobId, jobIds: [...(before?.jobIds ?? []), jobId], resubmits: before?.resubmits ?? 0, progress: step.progress(), seconds: before?.seconds ?? 0, state: 'submitted' };
        inFlight.set(step.key, jobId);
        registry.save();
        log(`${step.key}: submitted as job ${jobId}${dependsOn.length > 0 ? ` (after ${dependsOn.join(', ')})` : ''}`);
      };
      const submitReady = async (): Promise<void> => {
        for (const step of steps) {
          if (inFlight.size >= limit) return;
          if (done.has(step.key) || inFlight.has(step.key)) continue;
          if (step.after.every((k) => done.has(k) || inFlight.has(k))) await submit(step);
        }
      };

      for (;;) {
        await submitReady();
        if (options.detach) {
          return { kind: 'detached', jobs: [...inFlight].map(([step, jobId]) => ({ step, jobId })), registry: registry.file };
        }
        if (inFlight.size === 0) break;
        await sleep(options.settings.pollSeconds * 1000);
        const states = await client.states([...inFlight.values()]);
        for (const step of steps) {
          const jobId = inFlight.get(step.key);
          if (jobId === undefined) continue;
          // A job no source knows any more (no accounting, aged out of the controller) ended somehow: its output tells.
          const job: JobInfo = states.get(jobId) ?? { jobId, state: 'UNKNOWN', phase: step.isDone() ? 'completed' : 'interrupted', exitCode: null, reason: 'no longer known to Slurm', runSeconds: null };
          if (job.phase === 'queued' || job.phase === 'running' || job.phase === 'unknown') continue;
          const r = record(step.key)!;
          r.seconds += job.runSeconds ?? 0;
          inFlight.delete(step.key);
          if (job.phase === 'completed' && step.isDone()) {
            r.state = 'done';
            done.add(step.key);
            registry.save();
            step.cleanup();
            events.finished(step, r.seconds);
            continue;
          }
          if (!step.after.every((k) => done.has(k))) {
            // Cancelled because a step it waited for ended without finishing: submitted again with it.
            delete registry.steps[step.key];
            registry.save();
            continue;
          }
          if (job.phase === 'interrupted') {
            const progressed = step.progress() > r.progress;
            const resubmits = progressed ? 0 : r.resubmits + 1;
            if (resubmits <= options.settings.maxResubmits) {
              r.resubmits = resubmits;
              registry.save();
              // The jobs waiting for this one would wait for ever: cancel them, they follow it.
              const dependents = steps.filter((s) => s.after.includes(step.key) && inFlight.has(s.key));
              await client.cancel(dependents.map((s) => inFlight.get(s.key)!));
              for (const s of dependents) {
                inFlight.delete(s.key);
                delete registry.steps[s.key];
              }
              log(`${step.key}: ${why(job)}; resubmitted to resume (${resubmits}/${options.settings.maxResubmits} in a row without progress)`);
              await submit(step);
              continue;
            }
          }
          const reason = job.phase === 'completed' ? `job ${jobId} completed, but the step's output is not complete` : job.phase === 'interrupted' ? `${why(job)}, ${options.settings.maxResubmits + 1} times in a row without progress` : why(job);
          r.state = 'failed';
          r.why = reason;
          registry.save();
          const left = [...inFlight.values()];
          throw new LesionsegError(
            'step-failed',
            `lesionseg ${step.args[0]} (${step.label}): ${reason}; its log (${step.logFile}) ends:\n${logTail(step.logFile)}` +
              (left.length > 0 ? `\n${left.length} other job(s) of the study are left queued or running (${left.join(', ')}); the same command collects them later (or scancel them)` : ''),
          );
        }
      }
      const left = steps.filter((s) => !done.has(s.key));
      if (left.length > 0) throw new LesionsegError('bad-steps', `steps never became ready: ${left.map((s) => s.key).join(', ')}`);
      return { kind: 'done' };
    },
  };
}

/** Job ids of the study in `root` that Slurm still has queued or running (none without a job list). */
export async function activeStudyJobs(root: string, client: SlurmClient): Promise<string[]> {
  if (!JobRegistry.exists(jobRegistryFile(root))) return [];
  const pending = new JobRegistry(jobRegistryFile(root)).pending();
  if (pending.length === 0) return [];
  const states = await client.states(pending);
  return pending.filter((id) => ['queued', 'running'].includes(states.get(id)?.phase ?? ''));
}
