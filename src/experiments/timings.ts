/**
 * DIR/timings.json: the seconds of every heavy step of a study (pre-training, training, prediction)
 * by step key, added to as steps run and kept across calls, so that a study run in several calls
 * (resumed, or extended) can still say what it cost. Written atomically after each step; one
 * runner per study folder.
 */
import * as fs from 'node:fs';
import { atomicWriteJsonSync, InputError } from '../core/index.js';
import type { StepSeconds } from './results.js';

export type StepKind = 'pretrain' | 'train' | 'predict';

export function stepKey(kind: StepKind, ...parts: (string | number)[]): string {
  return [kind, ...parts.map(String)].join('/');
}

export class StepTimings {
  private readonly seconds: Record<string, number> = {};

  constructor(readonly file: string) {
    if (!fs.existsSync(file)) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (cause) {
      throw new InputError(`the study's step timings are not valid JSON (${(cause as Error).message}); delete the file to start them again`, { file, code: 'bad-json', cause });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'number' || !(v >= 0))) {
      throw new InputError('the study\'s step timings must map step keys to seconds; delete the file to start them again', { file, code: 'bad-timings' });
    }
    Object.assign(this.seconds, parsed);
  }

  /** Add `seconds` to a step (a step interrupted and resumed is the sum of its parts). */
  add(key: string, seconds: number): void {
    this.seconds[key] = (this.seconds[key] ?? 0) + seconds;
    const sorted = Object.fromEntries(Object.keys(this.seconds).sort().map((k) => [k, this.seconds[k]!]));
    atomicWriteJsonSync(this.file, sorted);
  }

  get(key: string): number | undefined {
    return this.seconds[key];
  }

  /** Sums over the given steps; a step without a time (run before times were kept) is counted, not summed. */
  summarise(steps: { kind: StepKind; key: string }[]): StepSeconds {
    const sums: Record<StepKind, number> = { pretrain: 0, train: 0, predict: 0 };
    let timedSteps = 0;
    let untimedSteps = 0;
    for (const step of steps) {
      const seconds = this.seconds[step.key];
      if (seconds === undefined) {
        untimedSteps++;
        continue;
      }
      sums[step.kind] += seconds;
      timedSteps++;
    }
    return { pretraining: sums.pretrain, training: sums.train, prediction: sums.predict, total: sums.pretrain + sums.train + sums.predict, timedSteps, untimedSteps };
  }
}
