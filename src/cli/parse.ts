/** Option value parsers shared by the commands: a bad value is an InputError naming the option. */
import * as os from 'node:os';
import { InputError } from '../core/index.js';

/** An integer option at least `minimum` (decimal digits only: '1e3', '2.0' and '' are refused). */
export function integer(name: string, minimum: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < minimum) {
      throw new InputError(`--${name} must be an integer >= ${minimum}, got '${value}'`, { code: 'bad-arguments' });
    }
    return n;
  };
}

/** An integer option at least 1. */
export const positiveInt = (name: string) => integer(name, 1);

/** 'auto' or an integer option at least 1. */
export function positiveIntOrAuto(name: string) {
  return (value: string): number | 'auto' => {
    if (value.trim() === 'auto') return 'auto';
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new InputError(`--${name} must be auto or an integer >= 1, got '${value}'`, { code: 'bad-arguments' });
    }
    return n;
  };
}

/**
 * Most threads `--threads` accepts: four per logical CPU (os.availableParallelism). A count a
 * little above the cores only slows libtorch down, and hosts with hyperthreading, or containers
 * whose CPU quota hides cores, may reasonably ask for that; far above is a typo (--threads 200 on
 * 2 cores) that would oversubscribe every op, so it is refused rather than accepted silently.
 */
export function maxThreads(): number {
  return os.availableParallelism() * 4;
}

/** Throws InputError naming `option` unless `threads` is an integer in 1..maxThreads(). */
export function checkThreads(threads: number, option = '--threads'): number {
  const limit = maxThreads();
  if (!Number.isSafeInteger(threads) || threads < 1) throw new InputError(`${option} must be an integer >= 1, got '${threads}'`, { code: 'bad-arguments' });
  if (threads > limit) {
    throw new InputError(`${option} ${threads} is far above the ${os.availableParallelism()} CPU(s) of this machine (at most ${limit}, 4 per CPU): use at most ${os.availableParallelism()}`, { code: 'bad-arguments' });
  }
  return threads;
}

/** The `--threads` option: an integer in 1..4 x the logical CPUs. */
export function threadCount(name = 'threads') {
  const parse = integer(name, 1);
  return (value: string): number => checkThreads(parse(value), `--${name}`);
}

/** `--threads` that also takes `auto` (the cores not busy with other work, measured at start). */
export function threadCountOrAuto(name = 'threads') {
  const parse = threadCount(name);
  return (value: string): number | 'auto' => {
    if (value.trim() === 'auto') return 'auto';
    if (!/^\d+$/.test(value.trim())) throw new InputError(`--${name} must be auto or an integer >= 1, got '${value}'`, { code: 'bad-arguments' });
    return parse(value);
  };
}
