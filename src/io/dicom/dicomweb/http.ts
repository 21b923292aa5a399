/**
 * The DICOMweb client's HTTP: Node's own fetch (undici), an idle timeout (an AbortSignal that fires
 * when no byte has come for `timeoutMs`: a series of 1 GB may take minutes, a silent server is
 * stopped after seconds), bounded retries with exponential backoff for idempotent requests on
 * transient failures only (a connection refused, reset or closed mid-reply, a timeout, HTTP
 * 502/503/504; never 4xx), and the one-line errors every failure becomes, with the credentials
 * removed from their text. https trusts Node's roots plus the system's bundle (a hospital's own CA
 * installed there), or only the CA file given.
 */
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import { createRequire } from 'node:module';
import type { Agent } from 'undici';
import { InputError, type InputErrorCode, type Logger } from '../../../core/index.js';
import { credentialHint, redactSecrets, type DicomwebAuth } from './auth.js';

/** Where Debian, Fedora/RHEL and Alpine keep the system's CA bundle. */
const SYSTEM_CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/** A failure worth another try (the same request may well succeed): thrown inside an attempt. */
export class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface HttpSettings {
  /** The server as messages name it (the base URL). */
  readonly server: string;
  readonly auth: DicomwebAuth;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly logger: Logger;
  readonly dispatcher: Agent | undefined;
}

/**
 * undici, loaded only for an https server. Loading it makes its Agent the global dispatcher of
 * Node's own fetch (when fetch has not run yet), and undici 6/7's HTTP/1 parser, paused by a body
 * read slower than it arrives (a retrieve writing each instance to disk), asserts `!this.paused`
 * when the server then closes the kept-alive connection: an uncaught exception that ended `pacs
 * watch` after its first series over http (nodejs/undici#5360, fixed in undici 8, which needs
 * Node 22). Over http, Node's own dispatcher is used and does not stop there.
 */
function undiciAgent(): typeof Agent {
  return (createRequire(import.meta.url)('undici') as { Agent: typeof Agent }).Agent;
}

/** The undici Agent for an https server: the CA file's certificates alone, or Node's roots and the system's bundle. */
export function httpsAgent(caFile: string | undefined): Agent {
  const Agent = undiciAgent();
  if (caFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(caFile, 'utf8');
    } catch (error) {
      throw new InputError(`the CA file cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { file: caFile, code: 'not-found' });
    }
    if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new InputError('the CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)', { file: caFile, code: 'dicomweb-tls' });
    return new Agent({ connect: { ca: text } });
  }
  const ca: string[] = [...tls.rootCertificates];
  const system = SYSTEM_CA_BUNDLES.find((file) => fs.existsSync(file));
  try {
    if (system !== undefined) ca.push(fs.readFileSync(system, 'utf8'));
  } catch {
    // A bundle that cannot be read: Node's own roots remain, and an untrusted server is refused by name.
  }
  return new Agent({ connect: { ca } });
}

/** An AbortSignal that fires after `timeoutMs` without a call to `touch` (the idle timeout). */
export class IdleTimer {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly timeoutMs: number) {
    this.touch();
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  get fired(): boolean {
    return this.controller.signal.aborted;
  }
  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.controller.abort(), this.timeoutMs);
    this.timer.unref();
  }
  clear(): void {
    clearTimeout(this.timer);
  }
}

/** The system error code inside a fetch failure (fetch's TypeError wraps undici's or the socket's). */
function errorCodeOf(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

const TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_|ERR_SSL_|HOSTNAME_MISMATCH)/;
/** What a network error code means, in the words of a message. */
const NETWORK_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed while the request was sent',
  UND_ERR_SOCKET: 'the server closed the connection mid-reply',
  UND_ERR_CLOSED: 'the server closed the connection mid-reply',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
};
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

/**
 * A failure of fetch or of reading a reply's body, as an error for the user (TLS, a wrong host
 * name) or a TransientError (connection refused, reset, closed mid-reply, idle timeout).
 */
export function networkFailure(settings: HttpSettings, what: string, error: unknown, timer: IdleTimer): Error {
  if (error instanceof InputError || error instanceof TransientError) return error;
  if (timer.fired) return new TransientError(`no reply for ${settings.timeoutMs / 1000} s`, undefined, { cause: error });
  const code = errorCodeOf(error);
  if (code !== undefined && TLS_CODES.test(code)) {
    return new InputError(
      `${settings.server}: ${what}: the server's certificate is not trusted (${code}); give the CA that signed it as the CA file, or check the URL`,
      { code: 'dicomweb-tls', cause: error },
    );
  }
  if (code === 'ENOTFOUND') return new InputError(`${settings.server}: ${what}: the host name does not resolve (ENOTFOUND); check the URL`, { code: 'dicomweb-unreachable', cause: error });
  // fetch reports a network failure as a TypeError 'fetch failed', a body cut off as 'terminated';
  // anything else (a file that cannot be written, a defect of ours) is not the network's and goes on as it is.
  const fromFetch = error instanceof TypeError && (error.message === 'fetch failed' || error.message === 'terminated');
  if (!fromFetch && (code === undefined || !TRANSIENT_CODES.has(code))) return error instanceof Error ? error : new Error(String(error));
  const cutOff = error instanceof TypeError && error.message === 'terminated';
  const why = NETWORK_REASONS[code ?? ''] ?? (cutOff ? NETWORK_REASONS.UND_ERR_SOCKET! : (code ?? (error instanceof Error && error.cause instanceof Error ? error.cause.message : 'the connection failed')));
  // Without a system error code, fetch refused the request itself (a port it never uses, a body that failed): not worth another try.
  if ((code !== undefined && TRANSIENT_CODES.has(code)) || (code === undefined && cutOff)) return new TransientError(why, undefined, { cause: error });
  return new InputError(`${settings.server}: ${what}: ${redactSecrets(why, settings.auth)}`, { code: 'dicomweb-unreachable', cause: error });
}

/** Read at most `maxBytes` of a reply's body as text (a short excerpt of an error page, a bounded JSON reply). */
export async function readText(response: Response, maxBytes: number, timer: IdleTimer): Promise<{ text: string; complete: boolean }> {
  if (response.body === null) return { text: '', complete: true };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const next = await reader.read();
      timer.touch();
      if (next.done) return { text: Buffer.concat(chunks).toString('utf8'), complete: true };
      chunks.push(next.value);
      total += next.value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        return { text: Buffer.concat(chunks).toString('utf8').slice(0, maxBytes), complete: false };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** A short, printable excerpt of a reply body for a message (one line, control characters dropped). */
export function excerpt(text: string, auth: DicomwebAuth, length = 120): string {
  const line = redactSecrets(text, auth).replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return line.length > length ? `${line.slice(0, length)}...` : line;
}

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), capped at `capMs`. */
function retryAfterMs(response: Response, capMs: number): number | undefined {
  const value = response.headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(seconds) ? Math.min(Math.max(seconds, 0), capMs) : undefined;
}

/**
 * The error for a reply whose status is not the one expected: 401/403 name the variables to check,
 * 404 becomes 'dicomweb-not-found', 502/503/504 a TransientError, any other an error quoting the
 * reply's first line. Reads (and so consumes) a bounded excerpt of the body.
 */
export async function statusFailure(settings: HttpSettings, what: string, response: Response, timer: IdleTimer): Promise<Error> {
  const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (response.status === 502 || response.status === 503 || response.status === 504) {
    await response.body?.cancel().catch(() => undefined);
    return new TransientError(status, retryAfterMs(response, 30_000));
  }
  const body = await readText(response, 4096, timer).catch(() => ({ text: '', complete: false }));
  const detail = excerpt(body.text, settings.auth);
  const tail = detail === '' ? '' : ` (${detail})`;
  if (response.status === 401 || response.status === 403) {
    return new InputError(`${settings.server}: ${what}: the server refused the credentials (${status}); ${credentialHint(settings.auth)}`, { code: 'dicomweb-auth' });
  }
  const code: InputErrorCode = response.status === 404 ? 'dicomweb-not-found' : 'dicomweb-reply';
  return new InputError(`${settings.server}: ${what}: ${status}${tail}`, { code });
}

/**
 * Run `attempt` (one whole request, its reply's body read) and try again on a TransientError, at
 * most `settings.retries` more times when `idempotent`, waiting retryDelayMs, then twice that, ...
 * (or what Retry-After asks for). The last failure becomes an InputError ('dicomweb-unreachable').
 */
export async function withRetries<T>(settings: HttpSettings, what: string, idempotent: boolean, attempt: (tryNumber: number) => Promise<T>): Promise<T> {
  const tries = idempotent ? settings.retries + 1 : 1;
  for (let tryNumber = 1; ; tryNumber++) {
    try {
      return await attempt(tryNumber);
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      const why = redactSecrets(error.message, settings.auth);
      if (tryNumber >= tries) {
        const count = tries === 1 ? (idempotent ? '' : ' (not retried: the request is not idempotent)') : ` (after ${tries} tries)`;
        throw new InputError(`${settings.server}: ${what}: ${why}${count}`, { code: 'dicomweb-unreachable', cause: error });
      }
      const delay = error.retryAfterMs ?? settings.retryDelayMs * 2 ** (tryNumber - 1);
      settings.logger.warn(`${settings.server}: ${what}: ${why}; trying again in ${(delay / 1000).toFixed(1)} s (try ${tryNumber + 1} of ${tries})`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
