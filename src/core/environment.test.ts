/**
 * The environment table's checks (src/core/environment.ts): each LESIONSEG_* variable that our code
 * or our addon reads refuses a malformed value by name, accepts its valid values, and the library
 * settings the addon needs are set only where the user set nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addonEnvironment, ENVIRONMENT, InputError, readEnvironment } from './index.js';

/** Malformed values for each checked variable, and values each must accept. */
const CASES = {
  LESIONSEG_DEBUG: { bad: ['yes', 'true', '2', ' 1', '1.0'], good: ['0', '1'] },
  LESIONSEG_CPU_BLOCK_CACHE: { bad: ['off', 'false', '-1', '00x'], good: ['0', '1'] },
  // The addon shifts the MiB left by 20 bits into a size_t: 2^24 MiB (16 TiB) is the bound.
  LESIONSEG_CPU_BLOCK_CACHE_MIB: { bad: ['abc', '2048MiB', '-1', '1.5', '1e3', ' 512', '0x10', String(2 ** 24 + 1), '99999999999999999999'], good: ['0', '512', '2048', String(2 ** 24)] },
  LESIONSEG_MALLOC_TUNING: { bad: ['no', 'on', '10'], good: ['0', '1'] },
  LESIONSEG_LAUNCHER_PID: { bad: ['0', 'pid', '-5', '12.5', String(2 ** 31)], good: ['1', '4242'] },
} as const;

test('every checked variable is declared in the table, and every LESIONSEG_* flag or number is checked here', () => {
  const checked = Object.entries(ENVIRONMENT).filter(([name, v]) => name.startsWith('LESIONSEG_') && v.value.kind !== 'text').map(([name]) => name);
  assert.deepEqual(checked.sort(), Object.keys(CASES).sort());
});

test('a malformed value is refused naming the variable and its value, as one line with code bad-environment', () => {
  for (const [name, { bad }] of Object.entries(CASES)) {
    for (const value of bad) {
      assert.throws(
        () => readEnvironment({ [name]: value }),
        (error: unknown) =>
          error instanceof InputError &&
          error.code === 'bad-environment' &&
          error.message.startsWith(`environment variable ${name}=${JSON.stringify(value)} is not `) &&
          !error.message.includes('\n'),
        `${name}=${value}`,
      );
    }
  }
});

test('valid values are accepted, and unset or empty means the default', () => {
  for (const [name, { good }] of Object.entries(CASES)) for (const value of good) assert.doesNotThrow(() => readEnvironment({ [name]: value }), `${name}=${value}`);
  assert.deepEqual(readEnvironment({}), { debug: false, launcherPid: null });
  assert.deepEqual(readEnvironment({ LESIONSEG_DEBUG: '', LESIONSEG_CPU_BLOCK_CACHE_MIB: '' }), { debug: false, launcherPid: null });
  assert.deepEqual(readEnvironment({ LESIONSEG_DEBUG: '1', LESIONSEG_LAUNCHER_PID: '4242' }), { debug: true, launcherPid: 4242 });
  // Text variables are the scripts' and libraries' own: never refused here.
  assert.doesNotThrow(() => readEnvironment({ LESIONSEG_SKIP_APT: 'yes please', OMP_WAIT_POLICY: 'whatever', WORLD_SIZE: 'x' }));
});

test('addonEnvironment checks the addon variables only, and sets the idle waits unless the user set them', () => {
  assert.throws(() => addonEnvironment({ LESIONSEG_CPU_BLOCK_CACHE_MIB: 'abc' }), /LESIONSEG_CPU_BLOCK_CACHE_MIB="abc"/);
  assert.throws(() => addonEnvironment({ LESIONSEG_MALLOC_TUNING: 'off' }), /LESIONSEG_MALLOC_TUNING="off"/);
  // LESIONSEG_DEBUG is the CLI's (readEnvironment refuses it there), not the addon's.
  assert.doesNotThrow(() => addonEnvironment({ LESIONSEG_DEBUG: 'yes' }));
  assert.deepEqual(addonEnvironment({}), { OMP_WAIT_POLICY: 'PASSIVE', OPENBLAS_THREAD_TIMEOUT: '4' });
  assert.deepEqual(addonEnvironment({ OMP_WAIT_POLICY: 'ACTIVE', GOTO_THREAD_TIMEOUT: '8' }), {});
  assert.deepEqual(addonEnvironment({ GOMP_SPINCOUNT: '1000' }), { OPENBLAS_THREAD_TIMEOUT: '4' });
});

test('a LESIONSEG_* name the table does not declare is refused, naming the closest declared one; other names pass', () => {
  const refusal = (env: Record<string, string>): string => {
    try {
      readEnvironment(env);
    } catch (error) {
      assert.ok(error instanceof InputError && error.code === 'bad-environment');
      return error.message;
    }
    return 'accepted';
  };
  assert.equal(
    refusal({ LESIONSEG_CPU_BLOCK_CACHE_MB: '512' }),
    'environment variable LESIONSEG_CPU_BLOCK_CACHE_MB is not one lesionseg reads (did you mean LESIONSEG_CPU_BLOCK_CACHE_MIB? README "Environment variables" lists them all)',
  );
  assert.match(refusal({ LESIONSEG_DEBGU: '1' }), /did you mean LESIONSEG_DEBUG\?/);
  // Declared names (whoever reads them) and other programs' variables are not refused.
  assert.equal(refusal({ LESIONSEG_SLURM_DIR: '/tmp/x', LESIONSEG_PYTHON: '/usr/bin/python3', PATH: '/bin', OMP_NUM_THREADS: '2' }), 'accepted');
});
