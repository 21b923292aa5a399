/**
 * `pacs watch`: poll a DICOMweb server for new CT series and predict each exactly once, its DICOM
 * outputs stored back into its study. A pass searches studies (QIDO-RS) from a date on
 * (StudyDate=SINCE-, ModalitiesInStudy=CT: `--since`, else the day before today, recomputed at each
 * pass so that a study acquired just before midnight is still seen) and the CT series of each
 * (Modality=CT); a series the journal (pacsJournal.ts) has not finished is processed: claimed,
 * retrieved, predicted into the state folder, journalled as storing, stored, journalled as done,
 * one log line. A series that fails for its own reasons (not a CT image series, undecodable, a
 * truncated instance, refused by the server) is journalled as failed with its one-line reason and the
 * pass goes on with the next. A server that cannot be reached, refuses the credentials or the TLS
 * certificate, a decoder not installed, a disk full, are not the series' fault: its claim is released and the pass ends (with `--once` the
 * command ends with that error; otherwise the next pass tries again). `stop` (SIGTERM) is looked at
 * before each series and between its steps; a series stopped between steps has its claim released.
 */
import * as fs from 'node:fs';
import { type Logger, LesionsegError, SILENT_LOGGER } from '../core/index.js';
import { dicomJsonString, type DicomwebClient } from '../io/index.js';
import { MAX_ATTEMPTS, PacsJournal, type JournalEntry } from './pacsJournal.js';
import { predictPacsSeries, studySeries, type PacsSeries } from './pacsInput.js';
import type { PredictFilesOptions } from './predictFiles.js';

const STUDY_INSTANCE_UID = '0020000D';

/**
 * Error codes that are not the series' fault: the server's or the connection's, a decoder not
 * installed, a full disk. The pass ends and the series is not journalled, so it is tried again.
 */
const SERVICE_CODES = new Set(['dicomweb-unreachable', 'dicomweb-auth', 'dicomweb-tls', 'missing-tool', 'write-failed']);

export interface WatchOptions {
  stateFolder: string;
  /** One pass, then return. */
  once: boolean;
  /** YYYYMMDD: studies from this date on; null: from the day before the pass. */
  since: string | null;
  /** Seconds between passes. */
  intervalSeconds: number;
  /** How each series is predicted (model, device, output types ...); outputs go to the state folder. */
  predict: Omit<PredictFilesOptions, 'input' | 'series' | 'output'>;
  /** Aborted (SIGTERM): stop before the next series or step. */
  signal: AbortSignal;
  now?: () => Date;
}

export interface PassSummary {
  /** CT series found in the window. */
  seen: number;
  done: number;
  failed: number;
  /** Series finished in an earlier pass (journalled done or failed). */
  skipped: number;
}

/** YYYYMMDD of `date` (UTC) minus `days`. */
export function dicomDate(date: Date, days = 0): string {
  return new Date(date.getTime() - days * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
}

function isServiceError(error: unknown): boolean {
  return error instanceof LesionsegError && SERVICE_CODES.has(error.code);
}

/** One line of an error: a LesionsegError's message, or the name and first line of anything else. */
function reasonOf(error: unknown): string {
  if (error instanceof LesionsegError) return error.message.split('\n')[0]!;
  const name = error instanceof Error ? error.name : typeof error;
  return `internal error (${name}): ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`;
}

/** Predict's own progress lines are left out: the watcher logs one line per series. */
function quiet(logger: Logger): Logger {
  return { info: () => {}, warn: (message) => logger.warn(message) };
}

/** What becomes of one series; returns its new state, or null when it was finished before or stopped. */
async function processSeries(client: DicomwebClient, journal: PacsJournal, series: PacsSeries, options: WatchOptions, logger: Logger): Promise<JournalEntry['state'] | null> {
  const uid = series.seriesInstanceUid;
  const study = series.studyInstanceUid;
  const previous = journal.get(uid);
  if (previous?.state === 'done' || previous?.state === 'failed') return null;
  const t0 = performance.now();
  const seconds = (): string => ((performance.now() - t0) / 1000).toFixed(1);
  if (previous?.state === 'storing') {
    // The store may have reached the server: the same files again (same SOPInstanceUIDs), never a new prediction.
    const missing = previous.objects.filter((object) => !fs.existsSync(object.file));
    let reason: string;
    if (missing.length === 0) {
      try {
        const { stored } = await client.store(previous.objects.map((object) => object.file), study);
        journal.done(study, uid, stored, 'stored again after an interrupted store (same SOPInstanceUIDs)');
        logger.info(`${uid} (study ${study}): done, ${stored.length} object(s) stored again after an interrupted store (same SOPInstanceUIDs) in ${seconds()} s`);
        return 'done';
      } catch (error) {
        // The entry stays 'storing' when the server is away: the next pass sends the same files.
        if (isServiceError(error)) throw error;
        reason = reasonOf(error);
      }
    } else {
      reason = `an interrupted store's results are gone (${missing[0]!.file}); remove this entry to predict the series again`;
    }
    journal.failed(study, uid, reason);
    logger.info(`${uid} (study ${study}): failed: ${reason}`);
    return 'failed';
  }
  let attempt = 1;
  let note = '';
  if (previous?.state === 'claimed') {
    if (previous.attempt >= MAX_ATTEMPTS) {
      const reason = `interrupted ${previous.attempt} times while being processed (the process was killed or crashed; last by PID ${previous.pid} at ${previous.at})`;
      journal.failed(study, uid, reason);
      logger.info(`${uid} (study ${study}): failed: ${reason}`);
      return 'failed';
    }
    attempt = previous.attempt + 1;
    note = ` (attempt ${attempt}: attempt ${previous.attempt} by PID ${previous.pid} at ${previous.at} was interrupted)`;
  }
  journal.claim(study, uid, attempt);
  try {
    const result = await predictPacsSeries(client, series, { ...options.predict, output: journal.resultsOf(uid) }, quiet(logger), {
      stopRequested: () => options.signal.aborted,
      beforeStore: (objects) => journal.storing(study, uid, attempt, objects),
    });
    if (result.stopped) {
      journal.release(uid);
      return null;
    }
    journal.done(study, uid, result.stored, note === '' ? undefined : note.trim());
    logger.info(`${uid} (study ${study}): done${note}, ${result.stored.length} object(s) stored in ${seconds()} s`);
    return 'done';
  } catch (error) {
    if (isServiceError(error)) {
      journal.release(uid);
      throw error;
    }
    const reason = reasonOf(error);
    journal.failed(study, uid, reason);
    logger.info(`${uid} (study ${study}): failed${note}: ${reason}`);
    return 'failed';
  }
}

/** One pass over the window: every CT series not finished before. */
export async function watchPass(client: DicomwebClient, journal: PacsJournal, options: WatchOptions, logger: Logger = SILENT_LOGGER): Promise<PassSummary> {
  const now = options.now ?? (() => new Date());
  const since = options.since ?? dicomDate(now(), 1);
  const summary: PassSummary = { seen: 0, done: 0, failed: 0, skipped: 0 };
  const studies = await client.searchStudies({ StudyDate: `${since}-`, ModalitiesInStudy: 'CT' });
  for (const study of studies) {
    const studyUid = dicomJsonString(study, STUDY_INSTANCE_UID);
    if (studyUid === undefined) continue;
    for (const series of await studySeries(client, studyUid, { Modality: 'CT' })) {
      if (options.signal.aborted) return summary;
      summary.seen++;
      const state = await processSeries(client, journal, series, options, logger);
      if (state === 'done') summary.done++;
      else if (state === 'failed') summary.failed++;
      else if (state === null && !options.signal.aborted) summary.skipped++;
    }
  }
  return summary;
}

/** Resolves after `seconds`, or at once when `signal` is aborted. */
function sleep(seconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, seconds * 1000);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * Passes until `signal` is aborted (or one with `once`); the caller holds the state folder's lock.
 * Returns the totals of every pass.
 */
export async function watchPacs(client: DicomwebClient, options: WatchOptions, logger: Logger = SILENT_LOGGER): Promise<PassSummary> {
  const journal = new PacsJournal(options.stateFolder, options.now);
  const total: PassSummary = { seen: 0, done: 0, failed: 0, skipped: 0 };
  for (;;) {
    try {
      const pass = await watchPass(client, journal, options, logger);
      total.seen += pass.seen;
      total.done += pass.done;
      total.failed += pass.failed;
      total.skipped += pass.skipped;
      if (pass.done + pass.failed > 0 || options.once) logger.info(`pass: ${pass.seen} CT series in the window, ${pass.done} done, ${pass.failed} failed, ${pass.skipped} finished before`);
    } catch (error) {
      if (options.once || !isServiceError(error)) throw error;
      logger.warn(`${reasonOf(error)}; next pass in ${options.intervalSeconds} s`);
    }
    if (options.once || options.signal.aborted) return total;
    await sleep(options.intervalSeconds, options.signal);
    if (options.signal.aborted) return total;
  }
}
