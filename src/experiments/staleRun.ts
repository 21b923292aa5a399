/**
 * The runner's stale-run check: a finished run (checkpoint_final) is reused only if it was set up
 * the way its arm's strategy and options set a run up now (the transfer plan's model, copies,
 * skipped and frozen prefixes, optimizer and decoder initialisation, as recorded in the final
 * checkpoint's sidecar); otherwise the study stops before any work and names the runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import { transferPlanShape, type TransferPlan } from '../transfer/index.js';
import type { TrainJob } from './layout.js';

/** The parts of a transfer plan that say how a run was set up (not the schedule, whose length comes from the checkpoint). */
function planShape(plan: Partial<TransferPlan>): Record<string, string> {
  const mappings = (m: { from: string; to: string }[] | undefined): string => `[${(m ?? []).map((c) => `${c.from}->${c.to}`).join(', ')}]`;
  return {
    model: JSON.stringify(plan.model ?? null),
    copy: mappings(plan.copy),
    skip: `[${(plan.skip ?? []).join(', ')}]`,
    freeze: `[${(plan.freeze ?? []).join(', ')}]`,
    optimizer: String(plan.optimizer),
    decoderInit: plan.decoderInit ?? '(none)',
  };
}

/** Why a finished run does not match its job's strategy as it trains now, or null (also for runs not finished yet). */
export function staleRun(runDir: string, job: TrainJob): string | null {
  const sidecarFile = path.join(runDir, 'checkpoint_final.json');
  if (!fs.existsSync(sidecarFile)) return null;
  let strategy: { name?: unknown; details?: { transfer?: { plan?: Partial<TransferPlan> } } } | undefined;
  try {
    strategy = (JSON.parse(fs.readFileSync(sidecarFile, 'utf8')) as { strategy?: typeof strategy }).strategy;
  } catch (cause) {
    throw new InputError(`the final checkpoint's sidecar is not valid JSON (${(cause as Error).message})`, { file: sidecarFile, code: 'bad-json', cause });
  }
  if (strategy?.name !== job.strategy) return `${runDir}: trained with strategy '${String(strategy?.name)}', the study wants '${job.strategy}'`;
  if (job.strategy === 'scratch') return null;
  const recorded = strategy.details?.transfer?.plan;
  if (recorded === undefined) return `${runDir}: its ${job.strategy} set-up is not recorded in its sidecar`;
  const before = planShape(recorded);
  const now = planShape(transferPlanShape(job.strategy, job.options));
  const changed = Object.keys(now).filter((k) => before[k] !== now[k]);
  return changed.length === 0 ? null : `${runDir}: ${changed.map((k) => `${k} ${before[k]}, now ${now[k]}`).join('; ')}`;
}
