/**
 * Talking to Slurm and remembering what was asked of it. `SlurmClient` runs the commands (sbatch,
 * scontrol, sacct, scancel) and reads the state of jobs: `scontrol show job` for jobs the
 * controller still holds, then `sacct` (slurmdbd), then `sacct -c` (the job-completion file of a
 * cluster without accounting) for older ones. `JobRegistry` is DIR/slurm/jobs.json: per step, its
 * current job id, every job id it had, its resubmissions and their progress, its run seconds and,
 * once it failed, why; written atomically after every change, so that a later `experiment` call
 * (after --detach, or after the driver stopped) adopts jobs still queued or running.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { atomicWriteJsonSync, InputError, LesionsegError } from '../core/index.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one Slurm command; the default is execFile (tests may record or fake it). */
export type CommandRunner = (command: string, args: readonly string[]) => Promise<CommandResult>;

export function execCommandRunner(env?: NodeJS.ProcessEnv): CommandRunner {
  return (command, args) =>
    new Promise((resolve) => {
      execFile(command, [...args], { env: env ?? process.env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof (error as NodeJS.ErrnoException).code === 'number' ? ((error as unknown as { code: number }).code) : 127;
        resolve({ code, stdout, stderr: stderr || (error !== null && code === 127 ? error.message : '') });
      });
    });
}

/** Where a job stands, in our terms. */
export type JobPhase = 'queued' | 'running' | 'completed' | 'interrupted' | 'failed' | 'unknown';

export interface JobInfo {
  jobId: string;
  /** Slurm's state word: PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ... */
  state: string;
  phase: JobPhase;
  exitCode: number | null;
  reason: string;
  runSeconds: number | null;
}

/** The exit status of `train`/`pretrain` stopped by SIGUSR1/SIGTERM after saving (EX_TEMPFAIL: run it again). */
export const EXIT_INTERRUPTED = 75;

const QUEUED = new Set(['PENDING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD', 'SUSPENDED', 'STOPPED']);
const RUNNING = new Set(['RUNNING', 'CONFIGURING', 'COMPLETING', 'RESIZING', 'SIGNALING', 'STAGE_OUT']);
/** Ended by something other than the step itself: resubmit it (it resumes from its latest checkpoint). */
const INTERRUPTED = new Set(['CANCELLED', 'PREEMPTED', 'NODE_FAIL', 'TIMEOUT', 'BOOT_FAIL', 'DEADLINE']);

export function jobPhase(state: string, exitCode: number | null): JobPhase {
  if (QUEUED.has(state)) return 'queued';
  if (RUNNING.has(state)) return 'running';
  if (state === 'COMPLETED') return exitCode === 0 || exitCode === null ? 'completed' : 'failed';
  if (INTERRUPTED.has(state)) return 'interrupted';
  if (state === 'FAILED' && exitCode === EXIT_INTERRUPTED) return 'interrupted';
  return state === '' ? 'unknown' : 'failed';
}

/** [D-]HH:MM:SS, MM:SS or seconds, as scontrol and sacct print durations. */
export function parseDuration(text: string): number | null {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(text.trim());
  if (m === null) return /^\d+$/.test(text.trim()) ? Number(text.trim()) : null;
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

function info(jobId: string, state: string, exit: string, reason: string, run: string): JobInfo {
  const stateWord = state.split(/\s+/)[0] ?? '';
  const code = /^(\d+):/.exec(exit);
  const exitCode = code === null ? null : Number(code[1]);
  return { jobId, state: stateWord, phase: jobPhase(stateWord, exitCode), exitCode, reason, runSeconds: parseDuration(run) };
}

export class SlurmClient {
  constructor(readonly run: CommandRunner) {}

  private async must(command: string, args: readonly string[]): Promise<string> {
    const result = await this.run(command, args);
    if (result.code !== 0) {
      const why = result.code === 127 ? `${command} is not installed or not on PATH (the Slurm executor needs Slurm's client commands)` : `${command} ${args.join(' ')} failed (status ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`;
      throw new LesionsegError('slurm', why);
    }
    return result.stdout;
  }

  /** Submit a job script; returns its job id. */
  async submit(script: string, dependsOn: readonly string[]): Promise<string> {
    const dependency = dependsOn.length > 0 ? [`--dependency=afterok:${dependsOn.join(':')}`, '--kill-on-invalid-dep=yes'] : [];
    const out = await this.must('sbatch', ['--parsable', ...dependency, script]);
    const jobId = out.trim().split(';')[0] ?? '';
    if (!/^\d+$/.test(jobId)) throw new LesionsegError('slurm', `sbatch printed no job id for ${script}: ${JSON.stringify(out.trim())}`);
    return jobId;
  }

  async cancel(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length > 0) await this.run('scancel', [...jobIds]);
  }

  /** The state of each job asked for (a job no source knows is absent from the map). */
  async states(jobIds: readonly string[]): Promise<Map<string, JobInfo>> {
    const wanted = new Set(jobIds);
    const found = new Map<string, JobInfo>();
    if (wanted.size === 0) return found;
    const shown = await this.run('scontrol', ['-o', 'show', 'job']);
    if (shown.code === 127) throw new LesionsegError('slurm', 'scontrol is not installed or not on PATH (the Slurm executor needs Slurm\'s client commands)');
    for (const line of shown.stdout.split('\n')) {
      const fields = new Map([...line.matchAll(/(\w+)=(\S*)/g)].map((m) => [m[1]!, m[2]!] as const));
      const jobId = fields.get('JobId');
      if (jobId === undefined || !wanted.has(jobId)) continue;
      found.set(jobId, info(jobId, fields.get('JobState') ?? '', fields.get('ExitCode') ?? '', fields.get('Reason') ?? '', fields.get('RunTime') ?? ''));
    }
    const missing = [...wanted].filter((id) => !found.has(id));
    if (missing.length === 0) return found;
    // Older jobs: accounting (slurmdbd), else the job-completion file.
    for (const completion of [[], ['-c']]) {
      const result = await this.run('sacct', [...completion, '-j', missing.join(','), '-X', '-n', '-P', '-o', 'JobID,State,ExitCode,Elapsed']);
      if (result.code !== 0) continue;
      for (const line of result.stdout.split('\n')) {
        const [jobId, state, exit, elapsed] = line.split('|');
        if (jobId !== undefined && missing.includes(jobId) && !found.has(jobId)) found.set(jobId, info(jobId, state ?? '', exit ?? '', '', elapsed ?? ''));
      }
      break;
    }
    return found;
  }
}

export interface StepRecord {
  /** The step's current (latest) job. */
  jobId: string;
  /** Every job it had, oldest first. */
  jobIds: string[];
  /** Resubmissions after a fault since the step last made progress. */
  resubmits: number;
  /** The step's progress when its current job was submitted. */
  progress: number;
  /** Run seconds of its ended jobs. */
  seconds: number;
  /** submitted: its job may still be queued or running; done: collected; failed: stopped the study (why). */
  state: 'submitted' | 'done' | 'failed';
  why?: string;
}

const REGISTRY_FORMAT = 'lesionseg-slurm-jobs';

export class JobRegistry {
  readonly steps: Record<string, StepRecord> = {};

  constructor(readonly file: string) {
    if (!fs.existsSync(file)) return;
    let parsed: { format?: unknown; steps?: unknown };
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { format?: unknown; steps?: unknown };
    } catch (cause) {
      throw new InputError(`the study's Slurm job list is not valid JSON (${(cause as Error).message})`, { file, code: 'bad-json', cause });
    }
    if (parsed.format !== REGISTRY_FORMAT || typeof parsed.steps !== 'object' || parsed.steps === null) throw new InputError(`not a Slurm job list (format must be '${REGISTRY_FORMAT}')`, { file, code: 'bad-jobs-file' });
    Object.assign(this.steps, parsed.steps);
  }

  static exists(file: string): boolean {
    return fs.existsSync(file);
  }

  save(): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    atomicWriteJsonSync(this.file, { format: REGISTRY_FORMAT, version: 1, steps: this.steps });
  }

  /** Job ids of steps whose job may still be queued or running. */
  pending(): string[] {
    return Object.values(this.steps).filter((r) => r.state === 'submitted').map((r) => r.jobId);
  }
}
