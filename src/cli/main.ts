/**
 * The `lesionseg` command line. Each command maps to one entry function of a lower layer; this is
 * the only place that reads argv or the environment and the only place that exits.
 *
 * Exit status (README "Exit codes"):
 * - 0: success, and also `--help`, `--version`, and a reader that closed the pipe early
 *   (`lesionseg info FILE | head -3`): the command stops quietly, with the status it had decided
 *   so far (`check` sets 1 once it has found problems), and nothing goes to stderr.
 * - 2: the user's mistake: an InputError (printed as one line, no stack trace) and every usage error
 *   of commander (unknown option or command, missing argument, value not among the choices),
 *   printed as commander's one-line message with a pointer to the command's --help.
 * - 1: anything else: a LesionsegError that is not the input's fault (the addon not built, a libtorch
 *   failure) as its one-line message, and an unexpected error as "internal error" plus one line;
 *   the stack trace only with LESIONSEG_DEBUG=1. Commands may also set 1 themselves (`check` when it
 *   finds problems).
 *
 * The command modules are imported inside main(), not at the top: they import the tensor layer,
 * which loads the addon when it is imported, and a missing addon must reach the handler below.
 */
import { Command, CommanderError, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { errorLines, isUserError, LesionsegError, oneLine, readEnvironment } from '../core/index.js';
import { removeTemporaryFilesOnSignals } from './cleanupSignals.js';

const EXIT_INTERNAL = 1;
const EXIT_USER = 2;

/** LESIONSEG_DEBUG=1 adds stack traces (and causes) to the one-line messages (set in main()). */
let DEBUG = false;

/** The full name of a (sub)command as a user types it: 'lesionseg bench train-step'. */
function commandPath(command: CommandUnknownOpts): string {
  const names: string[] = [];
  for (let at: CommandUnknownOpts | null = command; at; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

/**
 * Commander's usage errors as one line on stderr, with the command's --help named, and thrown
 * (exitOverride) instead of exiting, so that main() maps them to status 2. Applied to every
 * command, since commander copies these settings only to commands created after them.
 */
function configureUsageErrors(command: CommandUnknownOpts): void {
  const helpHint = `${commandPath(command)} --help`;
  command.exitOverride().configureOutput({
    outputError: (text, write) => write(`lesionseg: ${text.trim().replace(/^error: /, '').replace(/\.$/, '')} (see '${helpHint}')\n`),
  });
  for (const sub of command.commands) configureUsageErrors(sub);
}

export async function buildProgram(): Promise<Command> {
  const [engine, data, evaluation, predict, train, experiment, pretrain] = await Promise.all([
    import('./engine-commands.js'),
    import('./data-commands.js'),
    import('./eval-commands.js'),
    import('./predict-commands.js'),
    import('./train-commands.js'),
    import('./experiment-commands.js'),
    import('./pretrain-commands.js'),
  ]);
  const program = new Command()
    .name('lesionseg')
    .description('3D U-Net lesion segmentation in chest CT with transfer learning from non-COVID lung lesions')
    .version('0.1.0');
  engine.registerEngineCommands(program);
  data.registerDataCommands(program);
  evaluation.registerEvalCommands(program);
  predict.registerPredictCommands(program);
  train.registerTrainCommands(program);
  experiment.registerExperimentCommands(program);
  pretrain.registerPretrainCommands(program);
  (await import('./export-commands.js')).registerExportCommands(program);
  (await import('./view-commands.js')).registerViewCommand(program);
  (await import('./pacs-commands.js')).registerPacsCommands(program);
  configureUsageErrors(program);
  return program;
}

function causeChain(error: unknown): string {
  let text = error instanceof Error ? (error.stack ?? String(error)) : String(error);
  for (let cause = error instanceof Error ? error.cause : undefined; cause !== undefined; ) {
    text += `\ncaused by: ${cause instanceof Error ? (cause.stack ?? String(cause)) : String(cause)}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return text;
}

/** A rank of a data-parallel run says which one it is (its peers print too). */
const RANK_PREFIX = Number(process.env.WORLD_SIZE ?? process.env.SLURM_NTASKS ?? 1) > 1 ? `rank ${process.env.RANK ?? process.env.SLURM_PROCID ?? '?'}: ` : '';

/** Print `error` for the user and return the exit status it stands for. */
function report(error: unknown): number {
  if (error instanceof CommanderError) {
    // --help and --version end with status 0; the message of a usage error is already printed.
    return error.exitCode === 0 ? 0 : EXIT_USER;
  }
  let status: number;
  if (error instanceof LesionsegError) {
    // A value from outside in the message (a path holding a newline) is escaped, not printed raw.
    process.stderr.write(`lesionseg: ${RANK_PREFIX}${errorLines(error).join('\n')}\n`);
    status = isUserError(error) ? EXIT_USER : EXIT_INTERNAL;
  } else {
    const name = error instanceof Error ? error.name : typeof error;
    const message = oneLine((error instanceof Error ? error.message : String(error)).split('\n')[0]!);
    const hint = DEBUG ? '' : ' (run with LESIONSEG_DEBUG=1 for the stack trace)';
    process.stderr.write(`lesionseg: internal error (${name}): ${message}${hint}\n`);
    status = EXIT_INTERNAL;
  }
  if (DEBUG) process.stderr.write(`${causeChain(error)}\n`);
  return status;
}

/**
 * A reader that closed the pipe (`| head`) ends the command quietly, as SIGPIPE ends a Unix tool:
 * Node ignores SIGPIPE and reports EPIPE as an 'error' event, which would otherwise be thrown
 * with a stack trace. Any other write error on stdout is reported once; on stderr, where nothing
 * can be reported any more, the process just ends.
 */
function handleClosedPipes(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') process.exitCode = report(new LesionsegError('stdout', `cannot write to stdout: ${error.message}`));
    process.exit();
  });
  process.stderr.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') process.exitCode ??= EXIT_INTERNAL;
    process.exit();
  });
}

async function main(): Promise<void> {
  handleClosedPipes();
  removeTemporaryFilesOnSignals();
  // An error thrown outside the command's promise (an event handler, a timer) is reported the same way.
  process.on('uncaughtException', (error) => {
    process.exitCode = report(error);
    process.exit();
  });
  try {
    // Every variable is checked before any command module (and the addon) loads: README
    // "Environment variables", src/core/environment.ts.
    DEBUG = readEnvironment(process.env).debug;
    const program = await buildProgram();
    await program.parseAsync(process.argv);
  } catch (error) {
    process.exitCode = report(error);
  }
}

await main();
