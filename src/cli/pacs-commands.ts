/**
 * The PACS commands over DICOMweb (src/infer pacsInput.ts, pacsWatch.ts):
 *   - `predict --pacs URL --study UID [--series UID] [-o DIR]` (predict-commands.ts hands it here):
 *     the study's CT series retrieved, predicted, its DICOM outputs stored back into the study;
 *   - `pacs watch URL --model M [--state DIR] [--once] [--since DATE] [--interval S]`: every new CT
 *     series, exactly once (a journal in the state folder, locked against a second watcher).
 * Everything given is checked before the first request: the URL (http or https, no credentials in
 * it), the credentials' variables (LESIONSEG_DICOMWEB_*), the UIDs (digits and dots, at most 64
 * characters), the output types, the model (it resolves), the device, -o; then the first request
 * (QIDO-RS) shows whether the server takes the credentials, before anything is downloaded.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Command, Option } from '@commander-js/extra-typings';
import { assertDeviceAvailable, assertWritableOutput, InputError, type Logger, parseDevice, registerTemporaryPath, unregisterTemporaryPath, withFolderLock } from '../core/index.js';
import { choosePacsSeries, PACS_OUTPUT_TYPES, predictPacsSeries, resolveCheckpoints, watchPacs, type CheckpointChoice, type ModelFold, type OutputType, type PredictFilesOptions } from '../infer/index.js';
import { DicomwebClient, dicomwebAuthFromEnvironment, isUid } from '../io/index.js';
import { cudaDeviceCount } from '../tensor/index.js';
import { caseOutputHooks } from './case-summary.js';
import { interruptSignal } from './signals.js';
import { timestampedStderrLogger as stderrLogger } from './loggers.js';

/** Seconds between two passes of `pacs watch` by default. */
const DEFAULT_INTERVAL_SECONDS = 60;

function checkUid(value: string, option: string): void {
  if (!isUid(value)) throw new InputError(`${option} ${JSON.stringify(value.slice(0, 80))} is not a DICOM UID (digits and dots, at most 64 characters)`, { code: 'bad-arguments' });
}

/** The client of `url` with the environment's credentials; the URL and the variables are checked here. */
function clientFor(url: string, caFile: string | undefined, logger: Logger): DicomwebClient {
  const auth = dicomwebAuthFromEnvironment(process.env);
  if (caFile !== undefined && !fs.existsSync(caFile)) throw new InputError('--ca-file: not found', { file: caFile, code: 'not-found' });
  return new DicomwebClient(url, { auth, logger, ...(caFile !== undefined ? { caFile } : {}) });
}

/** What a PACS run may be asked to write: DICOM objects to store, and nifti only where -o keeps it. */
function checkPacsOutputTypes(types: readonly OutputType[], output: string | undefined, option: string): void {
  if (types.includes('nifti') && output === undefined) throw new InputError(`${option}: nifti is written only to a local folder: add -o DIR, or leave nifti out (a PACS stores DICOM)`, { code: 'bad-arguments' });
  if (types.includes('dicom-sr') && !types.includes('dicom-seg')) throw new InputError(`${option}: dicom-sr needs dicom-seg too: the report's measurements reference the SEG's segments`, { code: 'bad-arguments' });
}

/** The model resolves and the device exists: checked before anything is downloaded. */
function checkModelAndDevice(options: { model: string | readonly string[]; folds?: ModelFold[]; checkpoint?: CheckpointChoice; configuration?: string; device?: PredictFilesOptions['device'] }): void {
  const device = options.device ?? { type: 'cpu' as const };
  assertDeviceAvailable(device, device.type === 'cpu' ? 0 : cudaDeviceCount());
  for (const model of typeof options.model === 'string' ? [options.model] : options.model) resolveCheckpoints(model, options.folds, { ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}), ...(options.configuration !== undefined ? { configuration: options.configuration } : {}) });
}

export interface PacsPredictArguments {
  url: string;
  study: string;
  series?: string;
  /** -o: a folder keeping local copies of what is stored (and the NIfTI mask when asked for). */
  output?: string;
  caFile?: string;
  json: boolean;
}

/** `predict --pacs`: see the file comment. */
export async function predictFromPacs(args: PacsPredictArguments, options: Omit<PredictFilesOptions, 'input' | 'output' | 'series'>, logger: Logger): Promise<void> {
  checkUid(args.study, '--study');
  if (args.series !== undefined) checkUid(args.series, '--series');
  const outputTypes = options.outputTypes ?? PACS_OUTPUT_TYPES;
  checkPacsOutputTypes(outputTypes, args.output, '--output-type');
  if (options.saveProbabilities === true) throw new InputError('--save-probabilities is not written for DICOM input yet', { code: 'bad-arguments' });
  if (args.output !== undefined) assertWritableOutput(args.output, { option: '-o', kind: 'folder' });
  checkModelAndDevice(options);
  const client = clientFor(args.url, args.caFile, logger);
  try {
    await predictChosenSeries(client, args, { ...options, outputTypes }, logger);
  } finally {
    await client.close();
  }
}

async function predictChosenSeries(client: DicomwebClient, args: PacsPredictArguments, options: Omit<PredictFilesOptions, 'input' | 'output' | 'series'>, logger: Logger): Promise<void> {
  const series = await choosePacsSeries(client, args.study, args.series);
  logger.info(`${client.baseUrl}: study ${args.study}, series ${series.seriesInstanceUid} (series ${series.seriesNumber ?? '-'}, ${JSON.stringify(series.description)}, ${series.instances} instances)`);
  // Without -o the outputs live in a temporary folder until they are stored.
  const temporary = args.output === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-pacs-out-')) : null;
  if (temporary !== null) registerTemporaryPath(temporary);
  try {
    const result = await predictPacsSeries(client, series, { ...options, output: args.output ?? temporary! }, logger);
    const summary = { url: client.baseUrl, study: args.study, series: series.seriesInstanceUid, stored: result.stored, ...(args.output !== undefined ? { case: result.record } : {}) };
    if (args.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else process.stdout.write(`predicted series ${series.seriesInstanceUid}; stored ${result.stored.length} object(s) into study ${args.study}${result.stored.length > 0 ? `: ${result.stored.join(', ')}` : ''}\n`);
  } finally {
    if (temporary !== null) {
      fs.rmSync(temporary, { recursive: true, force: true });
      unregisterTemporaryPath(temporary);
    }
  }
}

/** `--since`: YYYYMMDD or YYYY-MM-DD, a real date. */
function dicomDateOption(value: string): string {
  const digits = /^\d{4}-?\d{2}-?\d{2}$/.test(value) ? value.replaceAll('-', '') : '';
  const date = new Date(`${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6, 8)}T00:00:00Z`);
  if (digits === '' || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10).replaceAll('-', '') !== digits) {
    throw new InputError(`--since must be a date as YYYYMMDD or YYYY-MM-DD, got '${value}'`, { code: 'bad-arguments' });
  }
  return digits;
}

function intervalSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(Number.isFinite(n) && n >= 1 && n <= 86_400)) throw new InputError(`--interval must be seconds between 1 and 86400, got '${value}'`, { code: 'bad-arguments' });
  return n;
}

/** `--output-type` of `pacs watch`: DICOM types only (the results are stored, nothing is kept). */
function dicomOutputTypes(value: string): OutputType[] {
  const types = value.split(',').map((v) => v.trim());
  const unknown = types.filter((t) => !(PACS_OUTPUT_TYPES as readonly string[]).includes(t));
  if (unknown.length > 0 || types.length === 0) throw new InputError(`--output-type takes ${PACS_OUTPUT_TYPES.join(', ')} (comma-separated; pacs watch stores DICOM only), got '${value}'`, { code: 'bad-arguments' });
  return [...new Set(types)] as OutputType[];
}


export function registerPacsCommands(program: Command): void {
  const pacs = program.command('pacs').description('work with a PACS over DICOMweb (credentials from LESIONSEG_DICOMWEB_TOKEN, or _USER and _PASSWORD)');
  pacs
    .command('watch')
    .description('poll a DICOMweb service for new CT series, predict each exactly once and store its DICOM outputs back into its study')
    .argument('<url>', 'the DICOMweb service (http:// or https://)')
    .requiredOption('-m, --model <path>', 'the model, as predict -m takes it')
    .option('--state <dir>', 'the journal (one file per series: claimed, storing, done or failed) and the results waiting to be stored; one watcher per folder', 'pacs-watch-state')
    .option('--once', 'one pass, then exit (for cron and tests)')
    .option('--since <date>', 'studies from this StudyDate on, YYYYMMDD or YYYY-MM-DD (default: the day before each pass)', dicomDateOption)
    .option('--interval <seconds>', 'seconds between passes', intervalSeconds, DEFAULT_INTERVAL_SECONDS)
    .option('--output-type <types>', `what is stored, comma-separated (default ${PACS_OUTPUT_TYPES.join(',')})`, dicomOutputTypes)
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .addOption(new Option('--checkpoint <which>', 'checkpoint_final or checkpoint_best of each run or fold').choices(['final', 'best'] as const).default('final' as const))
    .option('--ca-file <pem>', 'for https://: the CA certificate(s) to trust instead of the system\'s')
    .action(async (url, options) => {
      const outputTypes = options.outputType ?? [...PACS_OUTPUT_TYPES];
      checkPacsOutputTypes(outputTypes, undefined, '--output-type');
      const predict = {
        model: options.model,
        checkpoint: options.checkpoint,
        device: parseDevice(options.device),
        outputTypes,
        softwareVersion: `lesionseg ${program.version() ?? ''}`.trim(),
        // The SR's numbers come from the case summary (case-summary.ts), as for predict.
        ...caseOutputHooks({ summary: false, view: false, dicomSr: outputTypes.includes('dicom-sr') }).hooks,
      };
      checkModelAndDevice(predict);
      if (fs.existsSync(options.state) && !fs.statSync(options.state).isDirectory()) throw new InputError('--state is a file, not a folder', { file: options.state, code: 'bad-output' });
      const client = clientFor(url, options.caFile, stderrLogger);
      const signal = interruptSignal('stopping after the current step (a series stopped between steps is processed again by the next watcher)');
      await withFolderLock(options.state, 'pacs watch', true, async () => {
        try {
          stderrLogger.info(`watching ${client.baseUrl} for CT series${options.since !== undefined ? ` from ${options.since} on` : ' of the last two days'}; journal in ${options.state}`);
          const total = await watchPacs(client, {
            stateFolder: options.state,
            once: options.once === true,
            since: options.since ?? null,
            intervalSeconds: options.interval,
            predict,
            signal,
          }, stderrLogger);
          if (signal.aborted) stderrLogger.info(`stopped by ${String(signal.reason)}: ${total.done} series done, ${total.failed} failed`);
        } finally {
          await client.close();
        }
      });
    });
}
