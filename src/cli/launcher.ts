/**
 * `train` / `pretrain --nproc N`: start N ranks of the same command on this machine, as torchrun
 * does. Each child gets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1 and a free
 * MASTER_PORT, `--threads` of its share of the cores unless given, and dies with the launcher
 * (Linux: SIGKILL on the parent's death, so a launcher killed by SIGKILL leaves no rank behind).
 * Rank 0 prints to stdout; every rank's errors reach stderr prefixed with its rank. When a rank
 * fails, the launcher names it, gives the others a few seconds to notice (their next collective
 * fails at once) and then kills them; it exits with the failed rank's status. A rank that exits
 * with 2 (a mistake in the input, which every rank finds alike) has the others killed at once. SIGTERM and
 * SIGUSR1 are passed on to every rank (they stop together after the current epoch).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import { freePort, InputError, readEnvironment } from '../core/index.js';
import { killWithParent } from '../tensor/index.js';
import { assertDistributedAvailable, rendezvousFromEnv, type Rendezvous } from '../train/index.js';

export const LAUNCHER_DEFAULTS = { graceMs: 5000 } as const;

/** The command line without `--nproc N` / `--nproc=N`. */
export function withoutNproc(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--nproc') {
      i++;
      continue;
    }
    if (argv[i]!.startsWith('--nproc=')) continue;
    out.push(argv[i]!);
  }
  return out;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `was killed by ${signal}` : `exited with status ${code}`;
}

/** Run `nproc` ranks of this command; resolves to the exit status for the launcher. */
export async function launchRanks(nproc: number, argv: readonly string[]): Promise<number> {
  const port = await freePort();
  const args = withoutNproc(argv.slice(2));
  const hasThreads = args.some((a) => a === '--threads' || a.startsWith('--threads='));
  const threads = Math.max(1, Math.floor(os.availableParallelism() / nproc));
  const children: ChildProcess[] = [];
  const exited = new Set<number>();
  let failure: { rank: number; status: number } | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  const statuses: number[] = [];

  const forward = (signal: NodeJS.Signals): void => {
    for (const [rank, child] of children.entries()) if (!exited.has(rank)) child.kill(signal);
  };
  const signals = ['SIGTERM', 'SIGUSR1', 'SIGINT'] as const;
  for (const s of signals) process.on(s, forward);

  const done = new Promise<void>((resolve) => {
    for (let rank = 0; rank < nproc; rank++) {
      const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args, ...(hasThreads ? [] : ['--threads', String(threads)])], {
        env: {
          ...process.env,
          RANK: String(rank),
          WORLD_SIZE: String(nproc),
          LOCAL_RANK: String(rank),
          LOCAL_WORLD_SIZE: String(nproc),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(port),
          LESIONSEG_LAUNCHER_PID: String(process.pid),
        },
        stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', 'inherit'],
      });
      children.push(child);
      child.on('exit', (code, signal) => {
        exited.add(rank);
        const status = signal !== null ? 1 : (code ?? 1);
        statuses[rank] = status;
        // 75 (stopped by a signal, resume me) is not a failure.
        if (status !== 0 && status !== 75 && failure === null) {
          failure = { rank, status };
          if (status === 2) {
            // A mistake in the input (its one line is printed): every rank would find the same.
            forward('SIGKILL');
          } else if (exited.size < nproc) {
            process.stderr.write(`lesionseg: rank ${rank} of ${nproc} ${describeExit(code, signal)}; stopping the other ranks\n`);
            killTimer = setTimeout(() => forward('SIGKILL'), LAUNCHER_DEFAULTS.graceMs);
          } else {
            process.stderr.write(`lesionseg: rank ${rank} of ${nproc} ${describeExit(code, signal)}\n`);
          }
        }
        if (exited.size === nproc) resolve();
      });
    }
  });
  await done;
  if (killTimer !== null) clearTimeout(killTimer);
  for (const s of signals) process.removeListener(s, forward);
  if (failure !== null) return (failure as { status: number }).status;
  return statuses.some((s) => s === 75) ? 75 : 0;
}

/**
 * The data-parallel set-up of this process: null when alone; the rendezvous when it is one of
 * several ranks (from --nproc's launcher, torchrun or srun). A `--nproc` here is refused.
 */
export function rankFromEnvironment(nproc: number | undefined): Rendezvous | null {
  const rendezvous = rendezvousFromEnv(process.env);
  if (rendezvous !== null && nproc !== undefined && nproc > 1) {
    throw new InputError(`--nproc starts its own ranks; this process is already rank ${rendezvous.rank} of ${rendezvous.worldSize} (${rendezvous.source} environment): leave --nproc out`, { code: 'bad-arguments' });
  }
  if (rendezvous !== null) {
    assertDistributedAvailable(`rank ${rendezvous.rank} of ${rendezvous.worldSize}`);
    const launcher = readEnvironment(process.env).launcherPid;
    if (launcher !== null && !killWithParent(launcher)) {
      throw new InputError(`the --nproc launcher (pid ${launcher}) is gone`, { code: 'launcher-gone' });
    }
  }
  return rendezvous;
}

/** `--nproc N` with N > 1 in a process that is not yet a rank: launch and return the status; else null. */
export async function launchIfAsked(nproc: number | undefined): Promise<number | null> {
  if (nproc === undefined || nproc <= 1) return null;
  if (rendezvousFromEnv(process.env) !== null) return null; // rankFromEnvironment refuses it
  assertDistributedAvailable(`--nproc ${nproc}`);
  return launchRanks(nproc, process.argv);
}
