/**
 * Hostile spec values against the sbatch scripts (STYLE rule 20): a control character anywhere in
 * the spec is refused with its JSON path; values with ; $(...) backticks quotes # \ and "#SBATCH"
 * stay one value each: bash -n accepts the script, running its command line prints exactly the
 * arguments given (nothing injected runs), and sbatch itself (`sbatch -v`, which lists the options
 * it parsed before it contacts a controller: a three-line slurm.conf on an unused port suffices)
 * reads exactly the directives written, no more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ValidationError } from '../core/index.js';
import { sbatchOptions, sbatchScript } from './slurm.js';
import { validateExperimentSpec, type SlurmSettings } from './spec.js';
import type { StudyStep } from './studySteps.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slurm-quoting-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const PWNED = path.join(tmp, 'pwned');

const SPEC = {
  version: 1,
  name: 'q',
  datasets: { covid: { synth: { kind: 'covid', cases: 4 } } },
  sources: [],
  target: { dataset: 'covid', split: { limited: { folds: 2 } } },
  pretrained: ['none'],
  strategies: ['scratch'],
  pretraining: { epochs: 1, iterationsPerEpoch: 1 },
  training: { epochs: 1, iterationsPerEpoch: 1 },
  executor: 'slurm',
};

test('a control character anywhere in the spec is refused with its JSON path, every one at once', () => {
  const hostile = { ...SPEC, name: 'study\nrm -rf /', slurm: { partition: 'gpu\n#SBATCH --uid=0', extra: ['--comment=a\rb'], train: { time: '1:00\t' } }, target: { ...SPEC.target, lungs: 'a\u0085b' } };
  assert.throws(() => validateExperimentSpec(hostile, 'spec.json'), (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    const found = error.issues.filter((i) => i.code === 'control-character').map((i) => `${i.path} ${i.message.match(/U\+[0-9A-F]{4}/)![0]}`);
    assert.deepEqual(found.sort(), ['name U+000A', 'slurm.extra[0] U+000D', 'slurm.partition U+000A', 'slurm.train.time U+0009', 'target.lungs U+0085']);
    return true;
  });
  // The name defaults to the file's: a file name with a newline needs a 'name'.
  assert.throws(() => validateExperimentSpec({ ...SPEC, name: undefined }, 'st\nudy.json'), /\[name\].*control character U\+000A/);
});

/** Values each of which once added a shell line, a command or an option. */
const HOSTILE = {
  partition: `gpu;touch ${PWNED}`,
  account: `$(touch ${PWNED})`,
  qos: `\`touch ${PWNED}\``,
  memory: `16G #SBATCH --uid=0`,
  gpus: `a100:1' --uid=0 '`,
  comment: `--comment=x" --uid=0 "\\#y`,
  name: `it's "$(touch ${PWNED})" #1 \\`,
};

function hostileSettings(): SlurmSettings {
  const settings = validateExperimentSpec(SPEC, 's.json').slurm;
  return { ...settings, partition: HOSTILE.partition, account: HOSTILE.account, qos: HOSTILE.qos, memory: HOSTILE.memory, gpus: HOSTILE.gpus, time: '10:00', extra: [HOSTILE.comment] };
}

function step(args: string[]): StudyStep {
  return {
    key: 'train/none/scratch/fold_0', kind: 'train', name: 'train_none_scratch_fold0', label: 'scratch, fold 0', args, logFile: path.join(tmp, 'logs', 'x y;z.log'), after: [],
    isDone: () => false, progress: () => 0, prepare: () => undefined, cleanup: () => undefined,
  };
}

test('hostile values: bash -n accepts the script, its command line gets exactly the arguments, nothing injected runs', () => {
  const args = ['train', '--out', `run dir;$(touch ${PWNED})`, '--dataset', `\`touch ${PWNED}\``, `'"\\ #`];
  // printf '<%s>\n' prints each argument it gets on its own line: the arguments exec gives lesionseg.
  const options = { name: HOSTILE.name, settings: hostileSettings(), threads: 2, device: 'cuda', launcher: { executable: 'printf', args: ['<%s>\\n'], cwd: tmp } };
  const script = sbatchScript(step(args), options);
  const file = path.join(tmp, 'job.sbatch');
  fs.writeFileSync(file, script);
  const syntax = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
  assert.equal(syntax.status, 0, syntax.stderr);
  // Directives only where we wrote them: one per option, and no other line starts with #SBATCH or is a bare command.
  const lines = script.split('\n');
  assert.equal(lines.filter((l) => l.startsWith('#SBATCH')).length, sbatchOptions(step(args), options).length);
  assert.equal(lines.length, 2 + sbatchOptions(step(args), options).length + 3);
  const run = spawnSync('bash', [file], { encoding: 'utf8', cwd: tmp, env: { ...process.env, SLURM_JOB_ID: '7' } });
  assert.equal(run.status, 0, run.stderr);
  const printed = run.stdout.split('\n').filter((l) => l.startsWith('<')).join('\n');
  assert.equal(printed, args.map((a) => `<${a}>`).join('\n'));
  assert.match(run.stdout, new RegExp(`\\$ lesionseg ${args.join(' ').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  assert.equal(fs.existsSync(PWNED), false, 'an injected command ran');
  // A control character that got past the spec check is refused when the script is written.
  assert.throws(() => sbatchScript(step(['train', 'a\nb']), options), /control character U\+000A/);
  assert.throws(() => sbatchScript(step(['train']), { ...options, settings: { ...options.settings, partition: 'a\nb' } }), /control character U\+000A/);
});

test('sbatch itself parses exactly the directives written, each value whole', (t) => {
  if (spawnSync('sbatch', ['--version']).error !== undefined) {
    const why = 'sbatch is not installed (slurm-wlm; scripts/setup.sh installs it with LESIONSEG_WITH_SLURM=1, as npm test does)';
    if (process.env.CI === 'true') assert.fail(why);
    return t.skip(why);
  }
  // A controller that does not exist: sbatch -v lists the options it parsed, then fails to submit.
  const conf = path.join(tmp, 'slurm.conf');
  fs.writeFileSync(conf, 'ClusterName=quoting\nSlurmctldHost=localhost\nSlurmctldPort=1\nNodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=debug Nodes=localhost Default=YES\nMessageTimeout=1\nTCPTimeout=1\n');
  const settings = { ...hostileSettings(), memory: null, gpus: null };
  const options = { name: HOSTILE.name, settings, threads: 3, device: 'cpu', launcher: { executable: 'true', args: [], cwd: tmp } };
  const file = path.join(tmp, 'parse.sbatch');
  fs.writeFileSync(file, sbatchScript(step(['train']), options));
  const parsed = spawnSync('sbatch', ['-v', file], { encoding: 'utf8', env: { ...process.env, SLURM_CONF: conf }, timeout: 60_000 });
  const defined = new Map<string, string>();
  for (const line of parsed.stderr.split('\n')) {
    const m = /^sbatch: (\S[\w-]*)\s+: (.*)$/.exec(line);
    if (m !== null) defined.set(m[1]!, m[2]!);
  }
  assert.ok(defined.size > 0, `sbatch -v listed no options:\n${parsed.stderr}`);
  assert.equal(defined.get('partition'), HOSTILE.partition);
  assert.equal(defined.get('account'), HOSTILE.account);
  assert.equal(defined.get('qos'), HOSTILE.qos);
  assert.equal(defined.get('job-name'), `lesionseg-${HOSTILE.name}-train_none_scratch_fold0`);
  assert.equal(defined.get('comment'), HOSTILE.comment.slice('--comment='.length));
  assert.equal(defined.get('cpus-per-task'), '3');
  assert.equal(defined.get('uid'), undefined, `an injected --uid: ${parsed.stderr}`);
  assert.equal(defined.has('gid') || defined.has('uid'), false);
});
