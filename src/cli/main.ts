/**
 * The `lesionseg` command line. Each command maps to one entry function of a lower layer; this is
 * the only place that reads argv or the environment and the only place that exits. User errors
 * (InputError) are printed without a stack trace and exit with status 2.
 */
import { Command } from '@commander-js/extra-typings';
import { isUserError, LesionsegError } from '../core/index.js';
import { registerEngineCommands } from './engine-commands.js';
import { registerDataCommands } from './data-commands.js';
import { registerEvalCommands } from './eval-commands.js';
import { registerPredictCommands } from './predict-commands.js';
import { registerTrainCommands } from './train-commands.js';
import { registerExperimentCommands } from './experiment-commands.js';
import { registerPretrainCommands } from './pretrain-commands.js';

export function buildProgram(): Command {
  const program = new Command()
    .name('lesionseg')
    .description('3D U-Net lesion segmentation in chest CT with transfer learning from non-COVID lung lesions')
    .version('0.1.0')
    .showHelpAfterError();
  registerEngineCommands(program);
  registerDataCommands(program);
  registerEvalCommands(program);
  registerPredictCommands(program);
  registerTrainCommands(program);
  registerExperimentCommands(program);
  registerPretrainCommands(program);
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (isUserError(error)) {
      process.stderr.write(`lesionseg: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (error instanceof LesionsegError) {
      process.stderr.write(`lesionseg: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}

await main();
