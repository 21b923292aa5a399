/**
 * How busy the machine's CPUs are with other work, so that `predict --threads auto` started beside
 * others takes the cores that are free instead of as many threads as there are cores (OpenMP
 * threads of two processes on the same cores wait on each other at every parallel region). Only
 * when asked: a count chosen by the load must not choose the numbers (README, "What a result
 * depends on"). Read from /proc/stat, sampled twice a short time apart; null where it cannot be read.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

export interface CpuTimes {
  /** Jiffies of every state. */
  total: number;
  /** Jiffies idle or waiting for I/O. */
  idle: number;
}

/** The aggregate `cpu` line of /proc/stat; null when the text has none. */
export function parseProcStat(text: string): CpuTimes | null {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (line === undefined) return null;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 4 || fields.some((v) => !Number.isFinite(v))) return null;
  // user nice system idle iowait irq softirq steal [guest guest_nice: already counted in user/nice]
  const counted = fields.slice(0, 8);
  return { total: counted.reduce((a, b) => a + b, 0), idle: counted[3]! + (counted[4] ?? 0) };
}

/** Cores' worth of CPU time spent between two samples (0..cores). */
export function busyCoresBetween(before: CpuTimes, after: CpuTimes, cores: number): number {
  const total = after.total - before.total;
  if (total <= 0) return 0;
  const busy = (total - (after.idle - before.idle)) / total;
  return Math.min(cores, Math.max(0, busy * cores));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Cores busy with other processes, measured over `sampleMs` while this process sleeps; null without /proc/stat. */
export function busyCores(sampleMs = 200, cores = os.availableParallelism()): number | null {
  const read = (): CpuTimes | null => {
    try {
      return parseProcStat(fs.readFileSync('/proc/stat', 'utf8'));
    } catch {
      return null;
    }
  };
  const before = read();
  if (before === null) return null;
  sleepSync(sampleMs);
  const after = read();
  return after === null ? null : busyCoresBetween(before, after, cores);
}

export interface ThreadChoice {
  threads: number;
  cores: number;
  /** Cores found busy with other work (null: not measured). */
  busy: number | null;
}

/**
 * Intra-op threads for a command not told `--threads`: the cores not busy with other work
 * (busy rounded to the nearest core), at least 1.
 */
export function threadsForFreeCores(cores = os.availableParallelism(), busy: number | null = busyCores(200, cores)): ThreadChoice {
  const threads = busy === null ? cores : Math.max(1, cores - Math.round(busy));
  return { threads, cores, busy };
}
