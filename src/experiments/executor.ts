/**
 * Executors: what runs a study's heavy steps (studySteps.ts). The local executor runs each as a
 * child `lesionseg` process (StepRunner), at most `jobs` at once, a step once the steps it waits
 * for are done, in the order given; the Slurm executor (slurm.ts) submits them as jobs. Both skip a
 * step whose output is complete, whoever made it, and both tell the runner what happened through
 * the same events (the runner logs and times steps from them).
 */
import { LesionsegError } from '../core/index.js';
import type { StepRunner } from './steps.js';
import type { StudyStep } from './studySteps.js';

export interface StepEvents {
  /** The step's output was complete before this call: nothing ran. */
  reused(step: StudyStep): void;
  /** The step ran (now, or as a job since an earlier call) and is done; `seconds` of run time, null if unknown. */
  finished(step: StudyStep, seconds: number | null): void;
}

/** What `run` left behind: everything done, or (Slurm --detach) jobs submitted and not waited for. */
export type ExecutorOutcome = { kind: 'done' } | { kind: 'detached'; jobs: { step: string; jobId: string }[]; registry: string };

export interface StepExecutor {
  readonly name: string;
  /** Run every step that is not done; rejects with the first failure (its log's last lines in the message). */
  run(steps: readonly StudyStep[], events: StepEvents): Promise<ExecutorOutcome>;
}

/** Check that every `after` names an earlier step (the order is a valid start order). */
export function assertStepOrder(steps: readonly StudyStep[]): void {
  const seen = new Set<string>();
  for (const step of steps) {
    for (const dependency of step.after) if (!seen.has(dependency)) throw new LesionsegError('bad-steps', `step ${step.key} waits for ${dependency}, which does not come before it`);
    if (seen.has(step.key)) throw new LesionsegError('bad-steps', `step ${step.key} appears twice`);
    seen.add(step.key);
  }
}

/**
 * Child processes here, at most `jobs` at once. On the first failure no further step starts; the
 * ones running are awaited (each writes its own run folder, so it is left to finish rather than
 * orphaned), then that first error is thrown.
 */
export function localExecutor(runStep: StepRunner, jobs: number): StepExecutor {
  if (!Number.isInteger(jobs) || jobs < 1) throw new RangeError(`jobs must be a positive integer, got ${jobs}`);
  return {
    name: 'local',
    async run(steps, events) {
      assertStepOrder(steps);
      const done = new Set<string>();
      const todo: StudyStep[] = [];
      for (const step of steps) {
        if (step.isDone() && step.after.every((key) => done.has(key))) {
          done.add(step.key);
          events.reused(step);
        } else {
          todo.push(step);
        }
      }
      const started = new Set<string>();
      let failure: { error: unknown } | null = null;
      let wake: (() => void) | null = null;
      const changed = (): void => {
        wake?.();
        wake = null;
      };
      const running = new Set<Promise<void>>();
      const startable = (): StudyStep | undefined => todo.find((s) => !started.has(s.key) && s.after.every((key) => done.has(key)));
      while (failure === null) {
        let next: StudyStep | undefined;
        while (failure === null && running.size < jobs && (next = startable()) !== undefined) {
          const step = next;
          started.add(step.key);
          const t = performance.now();
          const task = (async () => {
            step.prepare();
            await runStep(step.args, step.logFile);
            step.cleanup();
            done.add(step.key);
            events.finished(step, (performance.now() - t) / 1000);
          })()
            .catch((error: unknown) => {
              failure ??= { error };
            })
            .finally(() => {
              running.delete(task);
              changed();
            });
          running.add(task);
        }
        if (running.size === 0) break;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      await Promise.all(running);
      if (failure !== null) throw (failure as { error: unknown }).error;
      const left = todo.filter((s) => !done.has(s.key));
      if (left.length > 0) throw new LesionsegError('bad-steps', `steps never became ready: ${left.map((s) => s.key).join(', ')}`);
      return { kind: 'done' };
    },
  };
}
