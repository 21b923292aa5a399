/**
 * DICOMweb credentials: a bearer token or a user and password, taken from the environment or from a
 * file a variable names (LESIONSEG_DICOMWEB_TOKEN / _TOKEN_FILE, LESIONSEG_DICOMWEB_USER,
 * LESIONSEG_DICOMWEB_PASSWORD / _PASSWORD_FILE), never from the command line, so they appear neither
 * in `ps` nor in a shell's history. A secret is never part of a message: errors name the variable,
 * not its value, and `redactSecrets` removes every form of it (the token, the password, the Basic
 * header's base64) from any text the client prints or throws.
 */
import * as fs from 'node:fs';
import { InputError } from '../../../core/index.js';

/** `source` names the variables the secret came from (for the messages that say which one to check). */
export type DicomwebAuth =
  | { kind: 'none' }
  | { kind: 'bearer'; token: string; source?: string }
  | { kind: 'basic'; user: string; password: string; source?: string };

/** The variables read here, as README "Environment variables" lists them. */
export const DICOMWEB_VARIABLES = {
  token: 'LESIONSEG_DICOMWEB_TOKEN',
  tokenFile: 'LESIONSEG_DICOMWEB_TOKEN_FILE',
  user: 'LESIONSEG_DICOMWEB_USER',
  password: 'LESIONSEG_DICOMWEB_PASSWORD',
  passwordFile: 'LESIONSEG_DICOMWEB_PASSWORD_FILE',
} as const;

/** A secret file larger than this is not a token or a password (someone pointed at the wrong file). */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

type Env = Readonly<Record<string, string | undefined>>;

function refuse(message: string): never {
  throw new InputError(message, { code: 'bad-environment' });
}

/** The value of a variable, or of the file another one names (one trailing newline dropped); never both. */
function secretFrom(env: Env, name: string, fileName: string): { value: string; source: string } | undefined {
  const direct = env[name];
  const file = env[fileName];
  const hasDirect = direct !== undefined && direct !== '';
  const hasFile = file !== undefined && file !== '';
  if (hasDirect && hasFile) refuse(`environment variables ${name} and ${fileName} are both set; set one of them`);
  if (hasDirect) return { value: direct, source: name };
  if (!hasFile) return undefined;
  let bytes: Buffer;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_SECRET_FILE_BYTES) refuse(`environment variable ${fileName} names ${file}, a file of ${size} bytes: not a secret (at most ${MAX_SECRET_FILE_BYTES} bytes)`);
    bytes = fs.readFileSync(file);
  } catch (error) {
    if (error instanceof InputError) throw error;
    refuse(`environment variable ${fileName} names ${file}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const value = bytes.toString('utf8').replace(/\r?\n$/, '');
  if (value === '') refuse(`environment variable ${fileName} names ${file}, which is empty`);
  return { value, source: `${fileName} (${file})` };
}

/** Refuse a secret holding a control character or a space (a header value cannot carry it), without printing it. */
function checkSecret(secret: { value: string; source: string }, what: string): void {
  if (/[\u0000-\u0020\u007f-\u009f]/.test(secret.value)) {
    refuse(`the ${what} in ${secret.source} holds a space or a control character (a second line in the file?); an HTTP header cannot carry it`);
  }
}

/**
 * The credentials the environment gives: a token, or a user with a password, or none. Both kinds at
 * once, a user without a password (or the reverse), a variable and its _FILE twin together, an
 * unreadable or empty file: an InputError (code 'bad-environment') naming the variables, not the values.
 */
export function dicomwebAuthFromEnvironment(env: NodeJS.ProcessEnv): DicomwebAuth {
  const v = DICOMWEB_VARIABLES;
  const token = secretFrom(env, v.token, v.tokenFile);
  const password = secretFrom(env, v.password, v.passwordFile);
  const user = env[v.user] !== undefined && env[v.user] !== '' ? env[v.user]! : undefined;
  if (token !== undefined && (user !== undefined || password !== undefined)) {
    refuse(`a bearer token (${token.source.split(' ')[0]}) and basic credentials (${v.user}/${v.password}) are both set; set one kind`);
  }
  if (token !== undefined) {
    checkSecret(token, 'token');
    return { kind: 'bearer', token: token.value, source: token.source };
  }
  if (user === undefined && password === undefined) return { kind: 'none' };
  if (user === undefined) refuse(`${password!.source.split(' ')[0]} is set without ${v.user}; set both`);
  if (password === undefined) refuse(`${v.user} is set without ${v.password} (or ${v.passwordFile}); set both`);
  // RFC 7617: the user-id of Basic authentication cannot hold a colon.
  if (user.includes(':') || /[\u0000-\u001f\u007f-\u009f]/.test(user)) refuse(`${v.user} holds a colon or a control character, which Basic authentication cannot carry`);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(password.value)) refuse(`the password in ${password.source} holds a control character (a second line in the file?)`);
  return { kind: 'basic', user, password: password.value, source: `${v.user} and ${password.source}` };
}

/** The Authorization header's value, or undefined without credentials. */
export function authorizationHeader(auth: DicomwebAuth): string | undefined {
  if (auth.kind === 'bearer') return `Bearer ${auth.token}`;
  if (auth.kind === 'basic') return `Basic ${Buffer.from(`${auth.user}:${auth.password}`, 'utf8').toString('base64')}`;
  return undefined;
}

/** Every form a secret of `auth` can take in a text (the value, its Basic base64, URL-encoded). */
function secretForms(auth: DicomwebAuth): string[] {
  const secrets = auth.kind === 'bearer' ? [auth.token] : auth.kind === 'basic' ? [auth.password, `${auth.user}:${auth.password}`] : [];
  const forms = new Set<string>();
  for (const secret of secrets) {
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(Buffer.from(secret, 'utf8').toString('base64'));
  }
  const header = authorizationHeader(auth);
  if (header !== undefined) forms.add(header.slice(header.indexOf(' ') + 1));
  // A secret of one or two characters would blank ordinary words; such a secret is no secret anyway.
  return [...forms].filter((form) => form.length >= 3).sort((a, b) => b.length - a.length);
}

/** `text` with every form of the credentials replaced by `***`. */
export function redactSecrets(text: string, auth: DicomwebAuth): string {
  let out = text;
  for (const form of secretForms(auth)) out = out.split(form).join('***');
  return out;
}

/** Which variables to check, for a message about refused credentials. */
export function credentialHint(auth: DicomwebAuth): string {
  const v = DICOMWEB_VARIABLES;
  if (auth.kind === 'none') return `no credentials were sent: set ${v.token} (or ${v.tokenFile}), or ${v.user} and ${v.password} (or ${v.passwordFile})`;
  return `check ${auth.source ?? (auth.kind === 'bearer' ? v.token : `${v.user} and ${v.password}`)}`;
}
