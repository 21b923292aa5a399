/**
 * DICOMweb credentials from the environment: each accepted form gives the credentials and the
 * Authorization header RFC 6750 / RFC 7617 define (the Basic value checked against a hand-encoded
 * base64), each malformed or conflicting one is refused as 'bad-environment' naming the variables
 * and never the secret, and redaction blanks every form a secret takes in a text.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../../../core/index.js';
import { authorizationHeader, credentialHint, dicomwebAuthFromEnvironment, redactSecrets } from './auth.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicomweb-auth-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function secretFile(name: string, text: string | Buffer): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

test('none, a token, a token file, a user with a password or a password file', () => {
  assert.deepEqual(dicomwebAuthFromEnvironment({}), { kind: 'none' });
  assert.deepEqual(dicomwebAuthFromEnvironment({ LESIONSEG_DICOMWEB_TOKEN: '' }), { kind: 'none' }, 'empty is unset');
  assert.deepEqual(dicomwebAuthFromEnvironment({ LESIONSEG_DICOMWEB_TOKEN: 'abc.def' }), { kind: 'bearer', token: 'abc.def', source: 'LESIONSEG_DICOMWEB_TOKEN' });
  const tokenFile = secretFile('token', 'eyJhbGciOi.x-y_z\n');
  assert.deepEqual(dicomwebAuthFromEnvironment({ LESIONSEG_DICOMWEB_TOKEN_FILE: tokenFile }), { kind: 'bearer', token: 'eyJhbGciOi.x-y_z', source: `LESIONSEG_DICOMWEB_TOKEN_FILE (${tokenFile})` });
  const basic = dicomwebAuthFromEnvironment({ LESIONSEG_DICOMWEB_USER: 'Aladdin', LESIONSEG_DICOMWEB_PASSWORD: 'open sesame' });
  assert.deepEqual(basic, { kind: 'basic', user: 'Aladdin', password: 'open sesame', source: 'LESIONSEG_DICOMWEB_USER and LESIONSEG_DICOMWEB_PASSWORD' });
  // RFC 7617 section 2's own example.
  assert.equal(authorizationHeader(basic), 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==');
  const passwordFile = secretFile('password', 'pässwört\r\n');
  const fromFile = dicomwebAuthFromEnvironment({ LESIONSEG_DICOMWEB_USER: 'u', LESIONSEG_DICOMWEB_PASSWORD_FILE: passwordFile });
  assert.deepEqual(fromFile, { kind: 'basic', user: 'u', password: 'pässwört', source: `LESIONSEG_DICOMWEB_USER and LESIONSEG_DICOMWEB_PASSWORD_FILE (${passwordFile})` });
  assert.equal(authorizationHeader(fromFile), `Basic ${Buffer.from('u:pässwört', 'utf8').toString('base64')}`);
  assert.equal(authorizationHeader({ kind: 'bearer', token: 't0k' }), 'Bearer t0k');
  assert.equal(authorizationHeader({ kind: 'none' }), undefined);
});

test('conflicting, incomplete or malformed credentials: bad-environment naming the variables, never the secret', () => {
  const secret = 'hunter2-secret';
  const cases: [Record<string, string>, RegExp][] = [
    [{ LESIONSEG_DICOMWEB_TOKEN: secret, LESIONSEG_DICOMWEB_TOKEN_FILE: secretFile('t1', secret) }, /^environment variables LESIONSEG_DICOMWEB_TOKEN and LESIONSEG_DICOMWEB_TOKEN_FILE are both set; set one of them$/],
    [{ LESIONSEG_DICOMWEB_TOKEN: secret, LESIONSEG_DICOMWEB_USER: 'u', LESIONSEG_DICOMWEB_PASSWORD: secret }, /a bearer token \(LESIONSEG_DICOMWEB_TOKEN\) and basic credentials .* are both set; set one kind$/],
    [{ LESIONSEG_DICOMWEB_USER: 'u' }, /^LESIONSEG_DICOMWEB_USER is set without LESIONSEG_DICOMWEB_PASSWORD \(or LESIONSEG_DICOMWEB_PASSWORD_FILE\); set both$/],
    [{ LESIONSEG_DICOMWEB_PASSWORD: secret }, /^LESIONSEG_DICOMWEB_PASSWORD is set without LESIONSEG_DICOMWEB_USER; set both$/],
    [{ LESIONSEG_DICOMWEB_USER: 'dom:user', LESIONSEG_DICOMWEB_PASSWORD: secret }, /LESIONSEG_DICOMWEB_USER holds a colon or a control character/],
    [{ LESIONSEG_DICOMWEB_TOKEN_FILE: secretFile('two-lines', `${secret}\nsecond line\n`) }, /the token in LESIONSEG_DICOMWEB_TOKEN_FILE \(.*two-lines\) holds a space or a control character \(a second line in the file\?\)/],
    [{ LESIONSEG_DICOMWEB_TOKEN: `${secret} x` }, /the token in LESIONSEG_DICOMWEB_TOKEN holds a space or a control character/],
    [{ LESIONSEG_DICOMWEB_TOKEN_FILE: path.join(tmp, 'absent') }, /LESIONSEG_DICOMWEB_TOKEN_FILE names .*absent, which cannot be read \(ENOENT\)/],
    [{ LESIONSEG_DICOMWEB_USER: 'u', LESIONSEG_DICOMWEB_PASSWORD_FILE: secretFile('empty', '\n') }, /LESIONSEG_DICOMWEB_PASSWORD_FILE names .*empty, which is empty/],
    [{ LESIONSEG_DICOMWEB_TOKEN_FILE: secretFile('large', Buffer.alloc(70_000, 0x41)) }, /a file of 70000 bytes: not a secret \(at most 65536 bytes\)/],
  ];
  for (const [env, pattern] of cases) {
    assert.throws(
      () => dicomwebAuthFromEnvironment(env),
      (error: unknown) => {
        assert.ok(error instanceof InputError, String(error));
        assert.equal(error.code, 'bad-environment');
        assert.match(error.message, pattern);
        assert.ok(!error.message.includes(secret), error.message);
        return true;
      },
      JSON.stringify(Object.keys(env)),
    );
  }
});

test('redaction blanks the token, the password, user:password and their base64 and URL forms', () => {
  const basic = { kind: 'basic', user: 'alice', password: 'p@ss/word', source: 'LESIONSEG_DICOMWEB_USER and LESIONSEG_DICOMWEB_PASSWORD' } as const;
  const base64 = Buffer.from('alice:p@ss/word').toString('base64');
  assert.equal(redactSecrets(`got Basic ${base64} for p@ss/word (p%40ss%2Fword)`, basic), 'got Basic *** for *** (***)');
  assert.equal(redactSecrets('alice may pass', basic), 'alice may pass', 'the user name is not a secret');
  assert.equal(redactSecrets('Bearer tok-123 and dG9rLTEyMw==', { kind: 'bearer', token: 'tok-123' }), 'Bearer *** and ***');
  assert.equal(redactSecrets('a b', { kind: 'bearer', token: 'a' }), 'a b', 'a one-letter secret would blank every word');
  assert.equal(credentialHint(basic), 'check LESIONSEG_DICOMWEB_USER and LESIONSEG_DICOMWEB_PASSWORD');
  assert.match(credentialHint({ kind: 'none' }), /^no credentials were sent: set LESIONSEG_DICOMWEB_TOKEN/);
});
