/**
 * Test support: a one-node Slurm cluster on this machine for one test file (scripts/slurm-local.sh),
 * shared by the Slurm executor's tests and `srun lesionseg train`'s.
 */
import { after, before } from 'node:test';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/slurm-local.sh', import.meta.url));

export interface LocalSlurmCluster {
  /** The environment that reaches this cluster (SLURM_CONF, its state folder and ports). */
  readonly env: NodeJS.ProcessEnv;
  /** Why the file's tests skip (the cluster did not start, or `unavailable`); null when they run. */
  skipReason(): string | null;
}

/**
 * Start a cluster in the file's before() and stop it (and remove its state) in after(): its own
 * state folder, and ports basePort + 2 * (pid % 500) and the next, so that test files in parallel
 * never meet. Where it cannot start (no slurm-wlm and not root, no apt) the tests skip with the
 * reason, except under CI=true, where that fails the file. With `unavailable` set (a reason the
 * tests cannot run anyway) nothing is started.
 */
export function localSlurmCluster(options: { prefix: string; basePort: number; unavailable?: string | null }): LocalSlurmCluster {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), options.prefix));
  const env = {
    ...process.env,
    LESIONSEG_SLURM_DIR: state,
    LESIONSEG_SLURM_PORT: String(options.basePort + (process.pid % 500) * 2),
    SLURM_CONF: path.join(state, 'slurm.conf'),
  };
  let reason: string | null = options.unavailable ?? null;
  before(() => {
    if (reason !== null) return;
    const started = spawnSync('nice', ['-n', '19', 'bash', SCRIPT, 'start'], { env, encoding: 'utf8', timeout: 600_000 });
    if (started.status === 0) return;
    const why = `the one-node Slurm cluster did not start (scripts/slurm-local.sh start: status ${started.status}): ${started.stderr.trim().split('\n').slice(-3).join(' | ')}`;
    if (process.env.CI === 'true') throw new Error(why);
    reason = why;
  });
  after(() => {
    if (options.unavailable == null) spawnSync('bash', [SCRIPT, 'stop'], { env, encoding: 'utf8', timeout: 120_000 });
    fs.rmSync(state, { recursive: true, force: true });
  });
  return { env, skipReason: () => reason };
}
