/**
 * `lesionseg experiment --status DIR`: every heavy step of a study folder and where it stands,
 * from the folder itself (the spec, split and run folders) and, for steps submitted to Slurm, the
 * job list and Slurm's word on each job: done, running (job id, epochs so far), queued (job id,
 * Slurm's reason), failed (why), interrupted (begun, no job: run the study again to resume it), not
 * started. Reads only; nothing is submitted or cancelled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import { listRawCases } from '../io/index.js';
import { readSplitFile } from '../train/index.js';
import { studyLayout } from './layout.js';
import { validateExperimentSpec } from './spec.js';
import { studyDatasetDir, studySteps, type StudyStep } from './studySteps.js';
import { jobRegistryFile, } from './slurm.js';
import { JobRegistry, type SlurmClient } from './slurmJobs.js';

export type StepState = 'done' | 'running' | 'queued' | 'failed' | 'interrupted' | 'not started';

export interface StepStatus {
  key: string;
  kind: StudyStep['kind'];
  state: StepState;
  jobId: string | null;
  detail: string;
}

/** The status of every step of the study in `root`; `client` (null: no Slurm here) is asked about submitted jobs. */
export async function studyStatus(root: string, client: SlurmClient | null): Promise<StepStatus[]> {
  const layout = studyLayout(path.resolve(root));
  if (!fs.existsSync(layout.spec)) throw new InputError('not a study folder (no spec.json)', { file: layout.root, code: 'not-found' });
  const spec = validateExperimentSpec(JSON.parse(fs.readFileSync(layout.spec, 'utf8')), layout.spec, layout.root);
  if (!fs.existsSync(layout.split)) throw new InputError('the study has not got as far as its split (no split.json): no step has started', { file: layout.root, code: 'not-started' });
  const split = readSplitFile(layout.split);
  const targetCases = new Map(listRawCases(studyDatasetDir(spec, layout, spec.target.dataset)).map((c) => [c.id, c] as const));
  const steps = studySteps({ spec, layout, split, targetCases });
  const registry = JobRegistry.exists(jobRegistryFile(layout.root)) ? new JobRegistry(jobRegistryFile(layout.root)) : null;
  const submitted = registry === null ? [] : steps.map((s) => registry.steps[s.key]).filter((r) => r?.state === 'submitted').map((r) => r!.jobId);
  const jobs = client !== null && submitted.length > 0 ? await client.states(submitted) : new Map();
  const length = (step: StudyStep): string => (step.kind === 'predict' ? 'case(s) predicted' : `of ${step.kind === 'pretrain' ? spec.pretraining.epochs : spec.training.epochs} epoch(s)`);
  return steps.map((step): StepStatus => {
    const base = { key: step.key, kind: step.kind };
    if (step.isDone()) return { ...base, state: 'done', jobId: registry?.steps[step.key]?.jobId ?? null, detail: '' };
    const record = registry?.steps[step.key];
    const progress = step.progress();
    const sofar = progress > 0 ? `${progress} ${length(step)}` : '';
    if (record?.state === 'failed') return { ...base, state: 'failed', jobId: record.jobId, detail: record.why ?? '' };
    if (record?.state === 'submitted') {
      const job = jobs.get(record.jobId);
      if (job === undefined) return { ...base, state: client === null ? 'queued' : 'interrupted', jobId: record.jobId, detail: client === null ? 'submitted (Slurm not asked)' : 'its job is no longer known to Slurm' };
      if (job.phase === 'running') return { ...base, state: 'running', jobId: record.jobId, detail: sofar };
      if (job.phase === 'queued') return { ...base, state: 'queued', jobId: record.jobId, detail: [job.state, job.reason !== 'None' ? job.reason : '', sofar].filter((t) => t !== '').join(', ') };
      if (job.phase === 'failed') return { ...base, state: 'failed', jobId: record.jobId, detail: `job ${job.state}${job.exitCode ? ` (exit ${job.exitCode})` : ''}` };
      return { ...base, state: 'interrupted', jobId: record.jobId, detail: `job ${job.state}${sofar ? `; ${sofar}` : ''}: the next experiment call resubmits it` };
    }
    return progress > 0 || fs.existsSync(step.logFile) ? { ...base, state: 'interrupted', jobId: null, detail: `${sofar || 'begun'}: the next experiment call resumes it` } : { ...base, state: 'not started', jobId: null, detail: '' };
  });
}

/** One line per step, then the counts. */
export function formatStatus(rows: readonly StepStatus[]): string {
  const width = Math.max(4, ...rows.map((r) => r.key.length));
  const lines = rows.map((r) => `${r.key.padEnd(width)}  ${r.state.padEnd(11)}  ${r.jobId !== null ? `job ${r.jobId}` : ''}${r.detail ? `${r.jobId !== null ? ', ' : ''}${r.detail}` : ''}`.trimEnd());
  const counts = new Map<StepState, number>();
  for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  return [...lines, '', [...counts].map(([state, n]) => `${n} ${state}`).join(', ')].join('\n');
}
