/**
 * The study commands: `experiment SPEC.json | --preset demo|synthetic|paper --out DIR`, `report
 * RUN_DIR`, and `demo [--out DIR]` (the demo preset, then the report). Pre-training and training
 * steps run as child `lesionseg` processes started the way this process was (same Node flags and
 * entry script), which is why the launcher is built here, the only place that reads argv.
 */
import * as path from 'node:path';
import { type Command, Option } from '@commander-js/extra-typings';
import { assertDeviceAvailable, checkOutputs, InputError, parseDevice } from '../core/index.js';
import { cudaDeviceCount } from '../tensor/index.js';
import {
  activeStudyJobs,
  execCommandRunner,
  EXECUTOR_NAMES,
  experimentPreset,
  formatStatus,
  localExecutor,
  readExperimentSpec,
  runExperiment,
  slurmExecutor,
  SlurmClient,
  spawnStepRunner,
  startExperiment,
  studyStatus,
  type CommandLauncher,
  type ExecutorName,
  type ExperimentSpec,
  type StepExecutor,
  type StudyResults,
} from '../experiments/index.js';
import { armLabel, verdictSentence, writeReport, writeTables } from '../report/index.js';
import { terminalProgress } from './progress.js';
import { writeStudyViewers } from './view-commands.js';
import { checkThreads, positiveInt, threadCount } from './parse.js';
import { stderrLogger } from './loggers.js';

/** Start `lesionseg` again as this process was started (bin/lesionseg.js, or node --import tsx src/cli/main.ts). */
export function selfLauncher(): CommandLauncher {
  const entry = process.argv[1];
  if (entry === undefined) throw new InputError('cannot tell how lesionseg was started (no entry script in argv)');
  return { executable: process.execPath, args: [...process.execArgv, entry] };
}


function fixed(value: number | null, digits: number): string {
  return value === null ? 'n/a' : value.toFixed(digits);
}

/** A short plain-text table: one line per arm with the means over folds. */
export function shortTable(results: StudyResults): string {
  const rows = results.arms.map((arm) => [armLabel(arm), fixed(arm.summary.dsc.mean, 4), fixed(arm.summary.nsd.mean, 4), fixed(arm.summary.sensitivity.mean, 4), fixed(arm.summary.secondsPerEpoch.mean, 2)]);
  const header = ['strategy (pre-trained)', 'DSC', 'NSD', 'Sens', 's/epoch'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The executor a study runs its steps with: child processes here, or Slurm jobs (the same `lesionseg` start either way). */
function executorFor(spec: ExperimentSpec, out: string, detach: boolean): StepExecutor {
  const launcher = selfLauncher();
  if (spec.executor === 'local') return localExecutor(spawnStepRunner(launcher), spec.jobs);
  return slurmExecutor({
    root: path.resolve(out),
    name: spec.name,
    settings: spec.slurm,
    launcher: { ...launcher, cwd: process.cwd() },
    threads: spec.threads,
    device: spec.device,
    jobs: spec.jobs,
    detach,
    client: new SlurmClient(execCommandRunner()),
    log: stderrLogger.info,
  });
}

async function runStudy(spec: ExperimentSpec, out: string): Promise<StudyResults> {
  if (spec.executor === 'local') {
    // Child processes here and Slurm jobs on the same run folders would overwrite each other.
    const active = await activeStudyJobs(path.resolve(out), new SlurmClient(execCommandRunner())).catch(() => []);
    if (active.length > 0) throw new InputError(`${active.length} Slurm job(s) of this study are still queued or running (${active.join(', ')}): collect them with --executor slurm, or scancel them first`, { file: path.resolve(out), code: 'jobs-in-flight' });
  }
  stderrLogger.info(`study '${spec.name}' in ${path.resolve(out)}: logs of each step in ${path.join(path.resolve(out), 'logs')}`);
  const results = await runExperiment({ spec, outDir: out, executor: executorFor(spec, out, false), logger: stderrLogger, progress: terminalProgress() });
  writeTables(results, path.join(out, 'tables'));
  return results;
}

export function registerExperimentCommands(program: Command): void {
  program
    .command('experiment')
    .description('run a transfer study (pre-train, train each arm, seed and fold, predict, evaluate; resumable; on a finished folder it only rewrites) and write results.json, Tables 1-3 and findings.md')
    .argument('[spec]', 'experiment spec JSON')
    .option('--preset <name>', 'a built-in study instead of a spec: demo, synthetic, paper')
    .option('--out <dir>', 'study folder (created; an existing one is continued)')
    .option('--jobs <n>', "steps run at once, each its own process (overrides the spec's jobs)", positiveInt('jobs'))
    .option('--threads <n>', "CPU threads of each step (overrides the spec's threads; at most 4 per CPU)", threadCount('threads'))
    .addOption(new Option('--executor <name>', "where pre-training, training and prediction run: child processes here (local) or Slurm jobs (slurm); overrides the spec's executor").choices(EXECUTOR_NAMES))
    .option('--detach', 'slurm: submit every step as a job (dependencies by afterok), write DIR/slurm/jobs.json and exit; the same command without --detach later waits for them and writes the results')
    .option('--status <dir>', 'list every step of the study in DIR (done, running, queued, failed, interrupted, not started) and exit')
    .action(async (specFile, options) => {
      if (options.status !== undefined) {
        const client = new SlurmClient(execCommandRunner());
        process.stdout.write(`${formatStatus(await studyStatus(options.status, client))}\n`);
        return;
      }
      if (options.out === undefined) throw new InputError('give the study folder: --out DIR (or --status DIR to list its steps)', { code: 'bad-arguments' });
      if ((specFile === undefined) === (options.preset === undefined)) throw new InputError('give either a spec file or --preset demo|synthetic|paper (one of them)', { code: 'bad-arguments' });
      // The study folder is continued, and keeps its own copy of the spec: only the output rule's
      // path checks apply ('-', writable), not the spec inside it.
      checkOutputs([{ path: options.out, option: '--out', kind: 'folder' }], []);
      const read = specFile !== undefined ? readExperimentSpec(specFile) : experimentPreset(options.preset!, process.cwd());
      const executor: ExecutorName = options.executor ?? read.executor;
      if (options.detach === true && executor !== 'slurm') throw new InputError('--detach needs the Slurm executor (--executor slurm, or "executor": "slurm" in the spec)', { code: 'bad-arguments' });
      const spec: ExperimentSpec = { ...read, jobs: options.jobs ?? read.jobs, threads: options.threads ?? read.threads, executor };
      // The spec's device and threads reach every step; refuse them here, before the first step starts.
      const device = parseDevice(spec.device);
      assertDeviceAvailable(device, device.type === 'cpu' ? 0 : cudaDeviceCount(), `the spec's device (${specFile ?? `preset ${options.preset}`})`);
      checkThreads(spec.threads, `the spec's threads (${specFile ?? `preset ${options.preset}`})`);
      if (options.detach === true) {
        stderrLogger.info(`study '${spec.name}' in ${path.resolve(options.out)}: submitting its steps to Slurm`);
        const outcome = await startExperiment({ spec, outDir: options.out, executor: executorFor(spec, options.out, true), logger: stderrLogger, progress: terminalProgress() });
        if (outcome.kind === 'detached') {
          process.stdout.write(
            `experiment: ${outcome.jobs.length} job(s) queued or running (${outcome.jobs.map((j) => j.jobId).join(', ') || 'none'}); job list ${outcome.registry}\n` +
              `watch them: lesionseg experiment --status ${options.out}; collect the results: the same command without --detach\n`,
          );
          return;
        }
        writeTables(outcome.results, path.join(options.out, 'tables'));
        process.stdout.write(`${shortTable(outcome.results)}\n\nexperiment: every step was done already; results ${path.join(options.out, 'results.json')}\n`);
        return;
      }
      const results = await runStudy(spec, options.out);
      const verdicts = (results.findings?.findings ?? []).map((f) => verdictSentence(f)).join('\n');
      process.stdout.write(`${shortTable(results)}\n\n${verdicts}${verdicts ? '\n\n' : ''}experiment: ${results.arms.length} arm(s) in ${results.wallSeconds.toFixed(0)} s (steps: ${(results.stepSeconds.total / 60).toFixed(1)} min over ${results.stepSeconds.timedSteps} timed step(s)); results ${path.join(options.out, 'results.json')}, tables and findings.md in ${path.join(options.out, 'tables')}\n`);
    });

  program
    .command('report')
    .description('write RUN_DIR/report/report.html (self-contained: tables, box plots, learning curves, seconds per epoch, CT overlays) and the figures beside it')
    .argument('<runDir>', 'study folder written by `lesionseg experiment`')
    .action(async (runDir) => {
      const written = writeReport(runDir, { viewers: await writeStudyViewers(runDir, stderrLogger.warn) });
      process.stdout.write(`report: ${written.html} (${written.figures.length} figures in ${path.join(path.dirname(written.html), 'figures')})\n`);
    });

  program
    .command('demo')
    .description('the whole study in small: four small phantom datasets, multi-lesion pre-training, every strategy on one COVID fold, prediction, evaluation and the report (about 4-5 minutes on 2 CPU cores)')
    .option('--out <dir>', 'study folder', 'lesionseg-demo')
    .action(async (options) => {
      checkOutputs([{ path: options.out, option: '--out', kind: 'folder' }], []);
      const started = performance.now();
      const results = await runStudy(experimentPreset('demo', process.cwd()), options.out);
      const written = writeReport(options.out, { viewers: await writeStudyViewers(options.out, stderrLogger.warn) });
      const wall = (performance.now() - started) / 1000;
      process.stdout.write(`${shortTable(results)}\n(measured on ${results.hardware?.model ?? 'an unknown CPU'}, ${results.hardware?.cores ?? '?'} cores)\n\ndemo: finished in ${wall.toFixed(0)} s (wall); report ${written.html}; tables in ${path.join(options.out, 'tables')}\n`);
    });
}
