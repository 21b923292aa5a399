/**
 * Every environment variable lesionseg reads, sets or honours, declared once: its default, who
 * reads it and what it means, and for the ones our TypeScript or our addon read, the values it
 * accepts. README "Environment variables" lists this table (a test keeps the two equal).
 *
 * Reading is pure here (functions of an env record); the CLI passes process.env in once at start
 * (readEnvironment), and the tensor layer passes it once before it loads the addon
 * (addonEnvironment), because native/src reads LESIONSEG_CPU_BLOCK_CACHE* and
 * LESIONSEG_MALLOC_TUNING with getenv, where a malformed value would silently become the default.
 * A malformed value, or a LESIONSEG_* name not declared here (a typo), is an InputError (code
 * 'bad-environment') naming the variable, exit 2. The
 * data-parallel variables (torchrun's, Slurm's) are read, and refused by name when malformed, by
 * rendezvousFromEnv (src/train/distributed.ts); the set-up's, the tests' and the benchmarks' by
 * their scripts.
 */
import { InputError } from './errors.js';

/** Who reads a variable: the CLI, our addon (C++), a library the addon loads, or a script. */
export type EnvironmentReader = 'cli' | 'addon' | 'libgomp' | 'OpenBLAS' | 'distributed' | 'setup' | 'bench' | 'tests';

/** The values a variable accepts: '0'/'1', an integer in a range, or any text (not checked). */
export type EnvironmentValue = { kind: 'flag' } | { kind: 'integer'; min: number; max: number; unit: string } | { kind: 'text' };

export interface EnvironmentVariable {
  readonly readBy: EnvironmentReader;
  readonly value: EnvironmentValue;
  /** The default, as the README shows it ('unset' where none applies). */
  readonly defaultText: string;
  readonly meaning: string;
}

const FLAG = { kind: 'flag' } as const;
const TEXT = { kind: 'text' } as const;

export const ENVIRONMENT = {
  LESIONSEG_DEBUG: { readBy: 'cli', value: FLAG, defaultText: '0', meaning: '1 adds the stack trace and causes to an error message' },
  LESIONSEG_CPU_BLOCK_CACHE: { readBy: 'addon', value: FLAG, defaultText: '1', meaning: "0 leaves libtorch's CPU allocator alone (no arena for blocks of 1 MiB and more)" },
  LESIONSEG_CPU_BLOCK_CACHE_MIB: { readBy: 'addon', value: { kind: 'integer', min: 0, max: 2 ** 24, unit: 'MiB' }, defaultText: '2048', meaning: 'idle MiB the CPU arena keeps before it hands pages back' },
  LESIONSEG_MALLOC_TUNING: { readBy: 'addon', value: FLAG, defaultText: '1', meaning: "0 keeps glibc's malloc defaults in training too (smaller RSS, slower steps)" },
  LESIONSEG_LAUNCHER_PID: { readBy: 'cli', value: { kind: 'integer', min: 1, max: 2 ** 31 - 1, unit: '' }, defaultText: 'unset', meaning: "set by `--nproc` for its ranks: the launcher's pid (a rank stops when it is gone)" },
  LESIONSEG_DICOMWEB_TOKEN: { readBy: 'cli', value: TEXT, defaultText: 'unset', meaning: 'a bearer token sent to the DICOMweb server (never printed)' },
  LESIONSEG_DICOMWEB_TOKEN_FILE: { readBy: 'cli', value: TEXT, defaultText: 'unset', meaning: 'a file holding the bearer token (one trailing newline is dropped)' },
  LESIONSEG_DICOMWEB_USER: { readBy: 'cli', value: TEXT, defaultText: 'unset', meaning: "the DICOMweb server's user for basic authentication (with a password)" },
  LESIONSEG_DICOMWEB_PASSWORD: { readBy: 'cli', value: TEXT, defaultText: 'unset', meaning: "that user's password (never printed)" },
  LESIONSEG_DICOMWEB_PASSWORD_FILE: { readBy: 'cli', value: TEXT, defaultText: 'unset', meaning: 'a file holding the password (one trailing newline is dropped)' },
  OMP_WAIT_POLICY: { readBy: 'libgomp', value: TEXT, defaultText: 'PASSIVE', meaning: "libgomp's idle threads sleep at once; set unless you set it or GOMP_SPINCOUNT" },
  GOMP_SPINCOUNT: { readBy: 'libgomp', value: TEXT, defaultText: 'unset', meaning: "libgomp's spin count; set, lesionseg leaves OMP_WAIT_POLICY to you" },
  OPENBLAS_THREAD_TIMEOUT: { readBy: 'OpenBLAS', value: TEXT, defaultText: '4', meaning: "OpenBLAS's idle threads sleep after 2^4 cycles; set unless you set it or GOTO_THREAD_TIMEOUT" },
  GOTO_THREAD_TIMEOUT: { readBy: 'OpenBLAS', value: TEXT, defaultText: 'unset', meaning: 'the older name of OPENBLAS_THREAD_TIMEOUT; set, lesionseg leaves both to you' },
  WORLD_SIZE: { readBy: 'distributed', value: TEXT, defaultText: 'unset', meaning: "torchrun's (and `--nproc`'s) number of ranks; with RANK it makes this process a rank" },
  RANK: { readBy: 'distributed', value: TEXT, defaultText: 'unset', meaning: "this process' rank under torchrun or `--nproc`" },
  LOCAL_RANK: { readBy: 'distributed', value: TEXT, defaultText: 'RANK', meaning: "the rank on this machine (picks cuda:LOCAL_RANK)" },
  MASTER_ADDR: { readBy: 'distributed', value: TEXT, defaultText: '127.0.0.1', meaning: "rank 0's host (Slurm: the first node of the job)" },
  MASTER_PORT: { readBy: 'distributed', value: TEXT, defaultText: '29500', meaning: "rank 0's port (Slurm: 29500 + job id modulo 20000)" },
  GLOO_SOCKET_IFNAME: { readBy: 'distributed', value: TEXT, defaultText: 'unset', meaning: 'the network interface Gloo uses between ranks' },
  SLURM_NTASKS: { readBy: 'distributed', value: TEXT, defaultText: 'unset', meaning: "srun's number of tasks; with SLURM_PROCID it makes this process a rank" },
  SLURM_PROCID: { readBy: 'distributed', value: TEXT, defaultText: 'unset', meaning: "this task's rank under srun" },
  SLURM_STEP_NUM_TASKS: { readBy: 'distributed', value: TEXT, defaultText: 'SLURM_NTASKS', meaning: "the job step's number of tasks, preferred to SLURM_NTASKS" },
  SLURM_LOCALID: { readBy: 'distributed', value: TEXT, defaultText: '0', meaning: "the task's rank on its node" },
  SLURM_STEP_NODELIST: { readBy: 'distributed', value: TEXT, defaultText: 'SLURM_JOB_NODELIST, SLURM_NODELIST', meaning: "the step's nodes; the first is rank 0's host" },
  SLURM_JOB_ID: { readBy: 'distributed', value: TEXT, defaultText: '0', meaning: "the job's id, which picks the port" },
  LIBTORCH: { readBy: 'setup', value: TEXT, defaultText: "Debian's libtorch-dev", meaning: 'a libtorch folder (lib/, include/, share/cmake/Torch) to build the addon against' },
  Torch_DIR: { readBy: 'setup', value: TEXT, defaultText: 'unset', meaning: "the folder of a libtorch's TorchConfig.cmake, instead of LIBTORCH" },
  LESIONSEG_SKIP_APT: { readBy: 'setup', value: TEXT, defaultText: 'unset', meaning: 'set (non-empty): set-up never calls apt-get' },
  LESIONSEG_WITH_SLURM: { readBy: 'setup', value: TEXT, defaultText: 'unset', meaning: 'set (non-empty): set-up also installs slurm-wlm (`npm test` sets it)' },
  LESIONSEG_SLURM_DIR: { readBy: 'tests', value: TEXT, defaultText: '/tmp/lesionseg-slurm', meaning: "scripts/slurm-local.sh's state folder" },
  LESIONSEG_SLURM_PORT: { readBy: 'tests', value: TEXT, defaultText: '6817', meaning: "scripts/slurm-local.sh's slurmctld port (slurmd takes the next)" },
  LESIONSEG_PYTHON: { readBy: 'bench', value: TEXT, defaultText: '/usr/bin/python3', meaning: 'the Python with PyTorch that benchmarks compare against' },
  CI: { readBy: 'tests', value: TEXT, defaultText: 'unset', meaning: 'true: a reference test that would skip fails instead' },
} as const satisfies Record<string, EnvironmentVariable>;

export type EnvironmentName = keyof typeof ENVIRONMENT;

type Env = Readonly<Record<string, string | undefined>>;

/** The value of `name` in `env`, checked against its declaration; undefined when unset or empty. */
function checked(env: Env, name: EnvironmentName): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const declared: EnvironmentVariable = ENVIRONMENT[name];
  const value = declared.value;
  const refuse = (what: string): never => {
    throw new InputError(`environment variable ${name}=${JSON.stringify(raw)} is not ${what} (default ${declared.defaultText}: ${declared.meaning})`, {
      code: 'bad-environment',
    });
  };
  if (value.kind === 'flag' && raw !== '0' && raw !== '1') refuse('0 or 1');
  if (value.kind === 'integer') {
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!(n >= value.min && n <= value.max)) refuse(`an integer in ${value.min}..${value.max}${value.unit ? ` ${value.unit}` : ''}`);
  }
  return raw;
}

/** The variables our own code reads whose values are checked (the addon's, the CLI's). */
const CHECKED = (Object.keys(ENVIRONMENT) as EnvironmentName[]).filter(
  (name) => name.startsWith('LESIONSEG_') && ENVIRONMENT[name].value.kind !== 'text',
);

/** Edit distance (insertions, deletions, substitutions) between two names, for the suggestion. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * A LESIONSEG_* name that is not declared is a typo (LESIONSEG_CPU_BLOCK_CACHE_MB) whose setting
 * would silently not apply: refused like an unknown option, naming the closest declared name.
 */
function refuseUnknownNames(env: Env): void {
  const declared = (Object.keys(ENVIRONMENT) as EnvironmentName[]).filter((name) => name.startsWith('LESIONSEG_'));
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('LESIONSEG_') || (declared as string[]).includes(name)) continue;
    const closest = [...declared].sort((a, b) => editDistance(name, a) - editDistance(name, b))[0]!;
    throw new InputError(`environment variable ${name} is not one lesionseg reads (did you mean ${closest}? README "Environment variables" lists them all)`, {
      code: 'bad-environment',
    });
  }
}

export interface EnvironmentSettings {
  /** LESIONSEG_DEBUG=1. */
  readonly debug: boolean;
  /** LESIONSEG_LAUNCHER_PID, or null outside a `--nproc` rank. */
  readonly launcherPid: number | null;
}

/**
 * Check every LESIONSEG_* variable that lesionseg or its addon reads (all of them at once, so a
 * malformed one is refused before any work, whichever command runs) and return the CLI's settings.
 */
export function readEnvironment(env: Env): EnvironmentSettings {
  refuseUnknownNames(env);
  for (const name of CHECKED) checked(env, name);
  const launcher = checked(env, 'LESIONSEG_LAUNCHER_PID');
  return { debug: checked(env, 'LESIONSEG_DEBUG') === '1', launcherPid: launcher === undefined ? null : Number(launcher) };
}

/**
 * Before the addon loads: check the variables native/src reads, and return the library settings
 * to put into the environment (libgomp and OpenBLAS read theirs once, when libtorch loads them).
 * libgomp's threads spin at the end of every parallel region before they sleep, which beside
 * another process on the same cores takes the core the other's threads need (two 2-thread
 * trainings on 2 cores ran ten times slower than one); PASSIVE sleeps at once. OpenBLAS (Debian's
 * libtorch does its fp32 matrix products there) spins 2^28 cycles after every product; 2^4 made an
 * fp32 forward pass of the cpu preset's U-Net (one 24x112x96 window, 2 threads) 0.412 -> 0.300 s.
 * The user's own settings win.
 */
export function addonEnvironment(env: Env): Partial<Record<'OMP_WAIT_POLICY' | 'OPENBLAS_THREAD_TIMEOUT', string>> {
  for (const name of CHECKED) if (ENVIRONMENT[name].readBy === 'addon') checked(env, name);
  const defaults: Partial<Record<'OMP_WAIT_POLICY' | 'OPENBLAS_THREAD_TIMEOUT', string>> = {};
  if (env.OMP_WAIT_POLICY === undefined && env.GOMP_SPINCOUNT === undefined) defaults.OMP_WAIT_POLICY = ENVIRONMENT.OMP_WAIT_POLICY.defaultText;
  if (env.OPENBLAS_THREAD_TIMEOUT === undefined && env.GOTO_THREAD_TIMEOUT === undefined) defaults.OPENBLAS_THREAD_TIMEOUT = ENVIRONMENT.OPENBLAS_THREAD_TIMEOUT.defaultText;
  return defaults;
}
