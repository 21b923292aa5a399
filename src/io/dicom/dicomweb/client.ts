/**
 * A DICOMweb client (PS3.18): QIDO-RS search of studies, series and instances, WADO-RS retrieve of
 * a series into a folder, STOW-RS store of Part 10 files into a study, over Node's own fetch. The
 * credentials come from the environment (auth.ts); every request carries them, and no message or
 * log line does. GET requests are retried on transient failures (http.ts); a POST is never sent
 * twice. Nothing of a series is held in memory: WADO-RS replies and STOW-RS bodies stream
 * (multipart.ts, retrieve.ts). Every failure is one line naming the server and what was asked.
 */
import * as fs from 'node:fs';
import { InputError, SILENT_LOGGER, type Logger } from '../../../core/index.js';
import { readDicomHeader } from '../header.js';
import { authorizationHeader, redactSecrets, type DicomwebAuth } from './auth.js';
import { dicomJsonItems, dicomJsonString, isUid, parseDicomJsonArray, TAGS, type DicomJson } from './dicom-json.js';
import { excerpt, httpsAgent, IdleTimer, networkFailure, readText, statusFailure, withRetries, type HttpSettings } from './http.js';
import { multipartFileStream, multipartLength, newBoundary } from './multipart.js';
import { boundaryOf, receiveInstances } from './retrieve.js';

export type { DicomwebAuth } from './auth.js';
export type { DicomJson } from './dicom-json.js';

export interface DicomwebOptions {
  auth: DicomwebAuth;
  /** PEM file of the CA(s) to trust for https instead of Node's and the system's. */
  caFile?: string;
  /** Idle timeout: a request fails when no byte has come for this long (default 60 000 ms). */
  timeoutMs?: number;
  /** More tries of a GET after a transient failure (default 2). */
  retries?: number;
  /** The wait before the first retry, doubled for each next one (default 500 ms). */
  retryDelayMs?: number;
  logger?: Logger;
  /** Largest instance a retrieve accepts (default 2 GiB); a larger one is refused while it streams. */
  maxInstanceBytes?: number;
}

export const DICOMWEB_DEFAULTS = { timeoutMs: 60_000, retries: 2, retryDelayMs: 500, maxInstanceBytes: 2 * 1024 ** 3 } as const;

/** Largest QIDO-RS or STOW-RS JSON reply read (a search of a whole archive should use a limit). */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** What STOW-RS failure reasons (PS3.4 GG.4, PS3.18 10.5.3) mean, for the message. */
const FAILURE_REASONS: Readonly<Record<number, string>> = {
  0x0110: 'processing failure',
  0x0122: 'SOP class not supported',
  0x0124: 'not authorized',
  0xa700: 'out of resources',
  0xa900: 'data set does not match the SOP class',
  0xc000: 'cannot understand',
  0xc122: 'transfer syntax not supported',
};

function checkUid(uid: string, what: string): void {
  if (!isUid(uid)) throw new InputError(`${what} ${JSON.stringify(uid.slice(0, 80))} is not a DICOM UID (digits and dots, at most 64 characters)`, { code: 'bad-arguments' });
}

export class DicomwebClient {
  /** The base URL without a trailing slash, as messages name the server. */
  readonly baseUrl: string;
  private readonly settings: HttpSettings;
  private readonly maxInstanceBytes: number;

  /**
   * Checks the URL (http or https, no credentials in it: they belong in the environment) and, for
   * https, reads the CA file now, so that a wrong one is refused before any work.
   */
  constructor(baseUrl: string, options: DicomwebOptions) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new InputError(`the DICOMweb URL ${JSON.stringify(baseUrl.replace(/\/\/[^/@]*@/, '//***@'))} is not a URL`, { code: 'bad-arguments' });
    }
    if (url.username !== '' || url.password !== '') {
      url.username = '';
      url.password = '';
      throw new InputError(`the DICOMweb URL ${url.href} holds credentials; put them in LESIONSEG_DICOMWEB_USER and LESIONSEG_DICOMWEB_PASSWORD (or _TOKEN) instead`, { code: 'bad-arguments' });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(`the DICOMweb URL ${url.href} is not http:// or https://`, { code: 'bad-arguments' });
    if (url.search !== '' || url.hash !== '') throw new InputError(`the DICOMweb URL ${url.href} holds a query or a fragment; give the service's base URL`, { code: 'bad-arguments' });
    if (url.protocol === 'http:' && options.caFile !== undefined) throw new InputError(`a CA file is given for the http:// URL ${url.href}; use https:// or leave the CA file out`, { code: 'bad-arguments' });
    this.baseUrl = url.href.replace(/\/+$/, '');
    const numbers = { ...DICOMWEB_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) };
    for (const [name, min] of [['timeoutMs', 1], ['retries', 0], ['retryDelayMs', 0], ['maxInstanceBytes', 1]] as const) {
      const value = numbers[name] as number;
      if (!Number.isInteger(value) || value < min) throw new InputError(`DICOMweb option ${name} = ${value} is not an integer >= ${min}`, { code: 'bad-arguments' });
    }
    this.maxInstanceBytes = numbers.maxInstanceBytes;
    this.settings = {
      server: this.baseUrl,
      auth: options.auth,
      timeoutMs: numbers.timeoutMs,
      retries: numbers.retries,
      retryDelayMs: numbers.retryDelayMs,
      logger: options.logger ?? SILENT_LOGGER,
      dispatcher: url.protocol === 'https:' ? httpsAgent(options.caFile) : undefined,
    };
  }

  /** Close the https connections kept open for the next request (a long-running watcher's clean stop). */
  async close(): Promise<void> {
    await this.settings.dispatcher?.close();
  }

  /** `text` with every form of this client's credentials replaced by `***` (for callers' own messages). */
  redact(text: string): string {
    return redactSecrets(text, this.settings.auth);
  }

  /** QIDO-RS /studies. */
  searchStudies(query: Record<string, string> = {}): Promise<DicomJson[]> {
    return this.search('/studies', query, 'searching studies');
  }

  /** QIDO-RS /series, or /studies/{uid}/series. */
  searchSeries(studyUid?: string, query: Record<string, string> = {}): Promise<DicomJson[]> {
    if (studyUid === undefined) return this.search('/series', query, 'searching series');
    checkUid(studyUid, 'the study UID');
    return this.search(`/studies/${studyUid}/series`, query, `searching the series of study ${studyUid}`);
  }

  /** QIDO-RS /studies/{uid}/series/{uid}/instances. */
  searchInstances(studyUid: string, seriesUid: string, query: Record<string, string> = {}): Promise<DicomJson[]> {
    checkUid(studyUid, 'the study UID');
    checkUid(seriesUid, 'the series UID');
    return this.search(`/studies/${studyUid}/series/${seriesUid}/instances`, query, `searching the instances of series ${seriesUid}`);
  }

  /**
   * WADO-RS retrieve of a series (multipart/related; type="application/dicom", in the transfer
   * syntax the server holds), each instance written to destFolder/<SOPInstanceUID>.dcm through a
   * temporary file and a rename, every byte checked; returns the files. A failure names the series
   * and removes every file this retrieve added to destFolder (a file already there, the same
   * instance, is replaced whole or left as it was).
   */
  async retrieveSeries(studyUid: string, seriesUid: string, destFolder: string): Promise<string[]> {
    checkUid(studyUid, 'the study UID');
    checkUid(seriesUid, 'the series UID');
    fs.mkdirSync(destFolder, { recursive: true });
    const what = `retrieving series ${seriesUid} of study ${studyUid}`;
    const url = `${this.baseUrl}/studies/${studyUid}/series/${seriesUid}`;
    // The series as stored (transfer-syntax=*, PS3.18 8.7.3.5.2), unless the server answers 406 Not
    // Acceptable to that: then as it converts by default (Explicit VR Little Endian).
    let accept = 'multipart/related; type="application/dicom"; transfer-syntax=*';
    try {
      return await withRetries(this.settings, what, true, async () => {
        const timer = new IdleTimer(this.settings.timeoutMs);
        try {
          let response = await this.send('GET', url, { accept }, what, timer);
          if (response.status === 406 && accept.includes('transfer-syntax')) {
            await response.body?.cancel().catch(() => undefined);
            accept = 'multipart/related; type="application/dicom"';
            this.settings.logger.info(`${this.baseUrl}: ${what}: the server does not send series as stored (HTTP 406); asking for its default transfer syntax`);
            response = await this.send('GET', url, { accept }, what, timer);
          }
          if (response.status === 204) throw new InputError(`${this.baseUrl}: ${what}: the server has no instance of it (HTTP 204)`, { code: 'dicomweb-not-found' });
          if (response.status !== 200) throw await statusFailure(this.settings, what, response, timer);
          const request = { what: `${this.baseUrl}: ${what}`, studyUid, seriesUid, destFolder, maxInstanceBytes: this.maxInstanceBytes, onBytes: () => timer.touch() };
          const boundary = boundaryOf(request, response.headers.get('content-type'));
          if (response.body === null) throw new InputError(`${this.baseUrl}: ${what}: the reply has no body`, { code: 'dicomweb-reply' });
          return await receiveInstances(request, response.body, boundary);
        } catch (error) {
          throw networkFailure(this.settings, what, error, timer);
        } finally {
          timer.clear();
        }
      });
    } catch (error) {
      if (error instanceof InputError && error.code !== 'bad-arguments') {
        throw new InputError(`${this.redact(error.message)}; nothing half-written or new was left in ${destFolder}`, { code: error.code, cause: error });
      }
      throw error;
    }
  }

  /**
   * STOW-RS of Part 10 files (POST /studies, or /studies/{uid} where each file must belong to that
   * study). Each file's header is read first (a file that is not DICOM is refused before anything is
   * sent); the body streams from disk. Returns the SOPInstanceUIDs stored, in the order of `files`;
   * throws naming each instance the server refused (Failed SOP Sequence) or did not list as stored.
   */
  async store(files: readonly string[], studyUid?: string): Promise<{ stored: string[] }> {
    if (files.length === 0) throw new InputError('nothing to store: no files given', { code: 'bad-arguments' });
    if (studyUid !== undefined) checkUid(studyUid, 'the study UID');
    const sops: string[] = [];
    const sizes: number[] = [];
    for (const file of files) {
      const header = readDicomHeader(file);
      const sop = header.text.SOPInstanceUID;
      if (sop === undefined || !isUid(sop)) throw new InputError(`has no valid SOPInstanceUID; it cannot be stored`, { file, code: 'dicom-bad-tag' });
      if (studyUid !== undefined && header.text.StudyInstanceUID !== studyUid) {
        throw new InputError(`belongs to study ${header.text.StudyInstanceUID ?? 'none'}, not to study ${studyUid} it is to be stored in`, { file, code: 'bad-arguments' });
      }
      sops.push(sop);
      sizes.push(fs.statSync(file).size);
    }
    const what = `storing ${files.length} instance${files.length === 1 ? '' : 's'}${studyUid !== undefined ? ` into study ${studyUid}` : ''}`;
    const url = `${this.baseUrl}/studies${studyUid !== undefined ? `/${studyUid}` : ''}`;
    const reply = await withRetries(this.settings, what, false, async () => {
      const timer = new IdleTimer(this.settings.timeoutMs);
      try {
        const boundary = newBoundary();
        const body = multipartFileStream(boundary, files, sizes, () => timer.touch());
        const headers = {
          accept: 'application/dicom+json',
          'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
          'content-length': String(multipartLength(boundary, sizes)),
        };
        const response = await this.send('POST', url, headers, what, timer, body);
        if (response.status !== 200 && response.status !== 202 && response.status !== 409) throw await statusFailure(this.settings, what, response, timer);
        return { status: response.status, ...(await readText(response, MAX_JSON_BYTES, timer)) };
      } catch (error) {
        throw networkFailure(this.settings, what, error, timer);
      } finally {
        timer.clear();
      }
    });
    return { stored: this.storeOutcome(what, reply, files, sops) };
  }

  /** The SOPInstanceUIDs a STOW-RS reply lists as stored; throws for every refused or missing one. */
  private storeOutcome(what: string, reply: { status: number; text: string; complete: boolean }, files: readonly string[], sops: readonly string[]): string[] {
    const prefix = `${this.baseUrl}: ${what}`;
    if (!reply.complete) throw new InputError(`${prefix}: the reply is longer than ${MAX_JSON_BYTES} bytes`, { code: 'dicomweb-reply' });
    const trimmed = reply.text.trim();
    const parsed = parseDicomJsonArray(trimmed.startsWith('{') ? `[${trimmed}]` : trimmed);
    if ('problem' in parsed || parsed.items.length !== 1) {
      const problem = 'problem' in parsed ? parsed.problem : `the reply holds ${parsed.items.length} data sets, not 1`;
      throw new InputError(`${prefix}: HTTP ${reply.status}, ${problem} (${excerpt(reply.text, this.settings.auth, 80)})`, { code: 'dicomweb-reply' });
    }
    const result = parsed.items[0]!;
    const stored = new Set(dicomJsonItems(result, TAGS.ReferencedSOPSequence).map((item) => dicomJsonString(item, TAGS.ReferencedSOPInstanceUID)));
    const fileOf = (sop: string | undefined): string => {
      const index = sop === undefined ? -1 : sops.indexOf(sop);
      return index >= 0 ? files[index]! : `an instance not sent (${sop ?? 'no UID'})`;
    };
    const problems = dicomJsonItems(result, TAGS.FailedSOPSequence).map((item) => {
      const sop = dicomJsonString(item, TAGS.ReferencedSOPInstanceUID);
      const reason = Number(dicomJsonString(item, TAGS.FailureReason));
      const reasonText = Number.isInteger(reason) ? ` reason 0x${reason.toString(16).toUpperCase().padStart(4, '0')}${FAILURE_REASONS[reason] !== undefined ? ` ${FAILURE_REASONS[reason]}` : ''}` : '';
      return `${fileOf(sop)} (${sop ?? 'no UID'}:${reasonText || ' no reason given'})`;
    });
    const failed = new Set(dicomJsonItems(result, TAGS.FailedSOPSequence).map((item) => dicomJsonString(item, TAGS.ReferencedSOPInstanceUID)));
    for (let i = 0; i < sops.length; i++) if (!stored.has(sops[i]) && !failed.has(sops[i])) problems.push(`${files[i]} (${sops[i]}: not listed as stored)`);
    if (problems.length > 0) {
      const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : '');
      throw new InputError(`${prefix}: the server refused ${problems.length} of ${files.length} (HTTP ${reply.status}): ${this.redact(shown)}`, { code: 'dicomweb-rejected' });
    }
    return [...sops];
  }

  /** A QIDO-RS search: 204 or an empty body is no match; anything but a DICOM JSON array is refused. */
  private search(route: string, query: Record<string, string>, what: string): Promise<DicomJson[]> {
    const parameters = new URLSearchParams(query).toString();
    const url = `${this.baseUrl}${route}${parameters === '' ? '' : `?${parameters}`}`;
    return withRetries(this.settings, what, true, async () => {
      const timer = new IdleTimer(this.settings.timeoutMs);
      try {
        const response = await this.send('GET', url, { accept: 'application/dicom+json' }, what, timer);
        if (response.status === 204) return [];
        if (response.status !== 200) throw await statusFailure(this.settings, what, response, timer);
        const body = await readText(response, MAX_JSON_BYTES, timer);
        if (!body.complete) throw new InputError(`${this.baseUrl}: ${what}: the reply is longer than ${MAX_JSON_BYTES} bytes; narrow the search`, { code: 'dicomweb-reply' });
        if (body.text.trim() === '') return [];
        const parsed = parseDicomJsonArray(body.text);
        if ('problem' in parsed) {
          const type = response.headers.get('content-type') ?? 'none';
          throw new InputError(`${this.baseUrl}: ${what}: ${parsed.problem} (Content-Type ${JSON.stringify(type.slice(0, 60))}: ${excerpt(body.text, this.settings.auth, 80)})`, { code: 'dicomweb-reply' });
        }
        return parsed.items;
      } catch (error) {
        throw networkFailure(this.settings, what, error, timer);
      } finally {
        timer.clear();
      }
    });
  }

  /** One request with the credentials and the idle timer; redirects are refused (they could carry the credentials elsewhere). */
  private async send(method: 'GET' | 'POST', url: string, headers: Record<string, string>, what: string, timer: IdleTimer, body?: ReadableStream<Uint8Array>): Promise<Response> {
    const authorization = authorizationHeader(this.settings.auth);
    const init: RequestInit & { dispatcher?: unknown; duplex?: 'half' } = {
      method,
      headers: authorization === undefined ? headers : { ...headers, authorization },
      signal: timer.signal,
      redirect: 'manual',
      ...(body !== undefined ? { body, duplex: 'half' as const } : {}),
      ...(this.settings.dispatcher !== undefined ? { dispatcher: this.settings.dispatcher } : {}),
    };
    const response = await fetch(url, init as RequestInit);
    timer.touch();
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel().catch(() => undefined);
      const location = response.headers.get('location') ?? 'nowhere';
      throw new InputError(`${this.baseUrl}: ${what}: the server redirects (HTTP ${response.status}) to ${excerpt(location, this.settings.auth, 100)}; give that URL instead`, { code: 'dicomweb-reply' });
    }
    return response;
  }
}
