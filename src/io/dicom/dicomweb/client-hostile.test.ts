/**
 * The DICOMweb client against servers that misbehave on purpose (a node:http server per test): a
 * reply cut off mid-multipart, an instance over the size limit (declared, and only found while it
 * streams), a truncated or non-DICOM part, 503/504 then success (the retry counted), 401 and 500 (no
 * retry), malformed QIDO JSON, a STOW reply that refuses an instance, a POST never sent twice, a
 * silent server, a redirect, https with and without its CA. Each must end as one line with its code, name the series or the
 * request, hold no secret, and leave nothing in the destination folder. The reference is the
 * server's own request count and the bytes it received.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, type Logger } from '../../../core/index.js';
import { DicomwebClient, type DicomwebOptions } from './client.js';
import { MultipartParser } from './multipart.js';
import { ctInstance } from './orthanc-test-support.js';

const STUDY = '1.2.3.4';
const SERIES = '1.2.3.4.5';
const TOKEN = 'secret-token-4711';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicomweb-hostile-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A small CT instance of SERIES (a 16x16 int16 image: 512 bytes of PixelData). */
function instance(number: number): Buffer {
  return ctInstance({ study: STUDY, series: SERIES, sop: `${SERIES}.${number}` }, 16, number);
}

const BOUNDARY = 'hostile-boundary';
const part = (bytes: Buffer, contentLength?: number): Buffer =>
  Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n${contentLength !== undefined ? `Content-Length: ${contentLength}\r\n` : ''}\r\n`), bytes, Buffer.from('\r\n')]);
const CLOSE = Buffer.from(`--${BOUNDARY}--\r\n`);
const MULTIPART = { 'content-type': `multipart/related; type="application/dicom"; boundary=${BOUNDARY}` };

interface Hostile {
  url: string;
  requests: http.IncomingMessage[];
  bodies: Buffer[];
}

/** A server whose `handler` answers request number n (from 1); closed after the test. */
async function hostile(t: { after(fn: () => unknown): void }, handler: (n: number, request: http.IncomingMessage, response: http.ServerResponse) => void): Promise<Hostile> {
  const state: Hostile = { url: '', requests: [], bodies: [] };
  const server = http.createServer((request, response) => {
    state.requests.push(request);
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      state.bodies.push(Buffer.concat(chunks));
      handler(state.requests.length, request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/dicom-web`;
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return state;
}

function client(url: string, options: Partial<DicomwebOptions> = {}): DicomwebClient {
  return new DicomwebClient(url, { auth: { kind: 'bearer', token: TOKEN, source: 'LESIONSEG_DICOMWEB_TOKEN' }, retries: 2, retryDelayMs: 5, timeoutMs: 5000, ...options });
}

/** The call is refused with `code`, one line matching `pattern`, no secret in it. */
async function refused(call: Promise<unknown>, code: string, pattern: RegExp): Promise<string> {
  let message = '';
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    message = error.message;
    assert.equal(error.code, code, message);
    assert.match(message, pattern);
    assert.equal(message.split('\n').length, 1);
    assert.ok(!message.includes(TOKEN) && !message.includes(Buffer.from(TOKEN).toString('base64')), message);
    return true;
  });
  return message;
}

function emptyFolder(name: string): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(folder, { recursive: true });
  return folder;
}

test('a server that closes the connection mid-multipart: retried, then one line naming the series; nothing left', async (t) => {
  const server = await hostile(t, (_n, _request, response) => {
    response.writeHead(200, MULTIPART);
    response.write(part(instance(1)));
    response.write(part(instance(2)).subarray(0, 300), () => response.socket?.destroy());
  });
  const dest = emptyFolder('mid-transfer');
  await refused(
    client(server.url).retrieveSeries(STUDY, SERIES, dest),
    'dicomweb-unreachable',
    new RegExp(`: retrieving series ${SERIES} of study ${STUDY}: the server closed the connection mid-reply \\(after 3 tries\\); nothing half-written or new was left in ${dest}$`),
  );
  assert.equal(server.requests.length, 3, 'one try and two retries');
  assert.deepEqual(fs.readdirSync(dest), [], 'neither the whole first instance nor a temporary file');
});

test('a reply that ends cleanly before its closing boundary is a cut transfer too (retried)', async (t) => {
  const server = await hostile(t, (_n, _request, response) => {
    response.writeHead(200, MULTIPART);
    response.end(Buffer.concat([part(instance(1)), part(instance(2)).subarray(0, 200)]));
  });
  const dest = emptyFolder('cut');
  await refused(client(server.url, { retries: 1 }).retrieveSeries(STUDY, SERIES, dest), 'dicomweb-unreachable', /ended before its closing boundary in part 2 \(the connection closed mid-transfer\) \(after 2 tries\)/);
  assert.equal(server.requests.length, 2);
  assert.deepEqual(fs.readdirSync(dest), []);
});

test('an instance over maxInstanceBytes: refused from its Content-Length before reading, or while it streams; never retried', async (t) => {
  const declared = await hostile(t, (_n, _request, response) => {
    response.writeHead(200, MULTIPART);
    response.write(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\nContent-Length: 10000000\r\n\r\n`);
  });
  const dest = emptyFolder('huge');
  await refused(client(declared.url, { maxInstanceBytes: 65536 }).retrieveSeries(STUDY, SERIES, dest), 'too-large', /instance 1 of the reply is 10000000 bytes, more than the 65536 allowed for one instance; refused before reading it/);
  assert.equal(declared.requests.length, 1);
  // Without a Content-Length: 64 KiB chunks without end; the client must stop reading at the limit.
  let sentBytes = 0;
  const endless = await hostile(t, (_n, _request, response) => {
    response.writeHead(200, MULTIPART);
    response.write(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`);
    const chunk = Buffer.alloc(65536, 7);
    const pump = (): void => {
      while (sentBytes < 256 * 1024 * 1024 && !response.destroyed) {
        sentBytes += chunk.length;
        if (!response.write(chunk)) return void response.once('drain', pump);
      }
    };
    response.on('close', () => undefined);
    pump();
  });
  await refused(client(endless.url, { maxInstanceBytes: 1024 * 1024 }).retrieveSeries(STUDY, SERIES, dest), 'too-large', /instance 1 of the reply goes on past the 1048576 bytes allowed for one instance; refused/);
  assert.equal(endless.requests.length, 1);
  // The socket buffers (a few MiB at most) are all the server could send beyond the limit.
  assert.ok(sentBytes < 64 * 1024 * 1024, `the server sent ${sentBytes} bytes before the client stopped it`);
  assert.deepEqual(fs.readdirSync(dest), []);
});

test('a truncated part, a part cut inside PixelData, a part that is not DICOM (each the 2nd of 3 in one chunk): dicomweb-reply naming it, not retried', async (t) => {
  const whole = instance(1);
  const replies: [Buffer, RegExp][] = [
    [part(whole.subarray(0, 1000), 2000), /instance 2 of the reply is 1000 bytes, its Content-Length says 2000 \(truncated\)/],
    [part(whole.subarray(0, whole.length - 100)), /instance 2 of the reply is truncated: its PixelData says 512 bytes, 412 follow/],
    [part(Buffer.from('<html>Internal error</html>'.padEnd(300, ' '))), /instance 2 of the reply \(300 bytes\) is not a DICOM Part 10 file \(no 'DICM' after the 128-byte preamble\)/],
    [part(instance(1)), /instance 2 of the reply repeats the SOPInstanceUID 1\.2\.3\.4\.5\.1/],
  ];
  for (const [second, pattern] of replies) {
    const server = await hostile(t, (_n, _request, response) => {
      response.writeHead(200, MULTIPART);
      response.end(Buffer.concat([part(instance(1)), second, part(instance(4)), CLOSE]));
    });
    const dest = emptyFolder(`truncated-${replies.findIndex(([, p]) => p === pattern)}`);
    await refused(client(server.url).retrieveSeries(STUDY, SERIES, dest), 'dicomweb-reply', pattern);
    assert.equal(server.requests.length, 1);
    assert.deepEqual(fs.readdirSync(dest), [], 'the good first instance is removed too');
  }
});

test('a failed retrieve into a folder holding an earlier copy: the earlier instance is kept whole, the new one removed', async (t) => {
  const dest = emptyFolder('earlier');
  fs.writeFileSync(path.join(dest, `${SERIES}.1.dcm`), instance(1));
  fs.writeFileSync(path.join(dest, 'notes.txt'), 'mine');
  const server = await hostile(t, (_n, _request, response) => {
    response.writeHead(200, MULTIPART);
    response.end(Buffer.concat([part(instance(1)), part(instance(3)), part(instance(2).subarray(0, 200)), CLOSE]));
  });
  await refused(client(server.url).retrieveSeries(STUDY, SERIES, dest), 'dicomweb-reply', /instance 3 of the reply is not a DICOM file lesionseg reads: /);
  assert.deepEqual(fs.readdirSync(dest).sort(), [`${SERIES}.1.dcm`, 'notes.txt']);
  assert.ok(fs.readFileSync(path.join(dest, `${SERIES}.1.dcm`)).equals(instance(1)));
});

test('503, then 504, then success: retried with backoff, each retry logged; the instances arrive whole', async (t) => {
  const server = await hostile(t, (n, _request, response) => {
    if (n < 3) return void response.writeHead(n === 1 ? 503 : 504).end('busy');
    response.writeHead(200, MULTIPART);
    response.end(Buffer.concat([part(instance(1), instance(1).length), part(instance(2)), CLOSE]));
  });
  const warnings: string[] = [];
  const logger: Logger = { info() {}, warn: (message) => warnings.push(message) };
  const dest = emptyFolder('retried');
  const files = await client(server.url, { logger }).retrieveSeries(STUDY, SERIES, dest);
  assert.deepEqual(files, [path.join(dest, `${SERIES}.1.dcm`), path.join(dest, `${SERIES}.2.dcm`)]);
  assert.ok(fs.readFileSync(files[1]!).equals(instance(2)));
  assert.equal(server.requests.length, 3);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /: HTTP 503 Service Unavailable; trying again in 0\.0 s \(try 2 of 3\)$/);
  assert.match(warnings[1]!, /: HTTP 504 Gateway Timeout; trying again in 0\.0 s \(try 3 of 3\)$/);
  assert.equal(server.requests[0]!.headers.authorization, `Bearer ${TOKEN}`, 'the token is sent');
  assert.match(server.requests[0]!.headers.accept ?? '', /^multipart\/related; type="application\/dicom"/);
});

test('a server that cannot send a series as stored (406 to transfer-syntax=*) is asked again for its default syntax', async (t) => {
  const server = await hostile(t, (_n, request, response) => {
    if (/transfer-syntax/.test(request.headers.accept ?? '')) return void response.writeHead(406).end();
    response.writeHead(200, MULTIPART);
    response.end(Buffer.concat([part(instance(1)), CLOSE]));
  });
  const files = await client(server.url).retrieveSeries(STUDY, SERIES, emptyFolder('406'));
  assert.equal(files.length, 1);
  assert.deepEqual(server.requests.map((request) => request.headers.accept), ['multipart/related; type="application/dicom"; transfer-syntax=*', 'multipart/related; type="application/dicom"']);
});

test('401 is not retried and names the variable; a 500 echoing the credentials is quoted with them blanked', async (t) => {
  const denied = await hostile(t, (_n, _request, response) => void response.writeHead(401).end('who are you'));
  await refused(client(denied.url).searchStudies(), 'dicomweb-auth', /: searching studies: the server refused the credentials \(HTTP 401 Unauthorized\); check LESIONSEG_DICOMWEB_TOKEN$/);
  assert.equal(denied.requests.length, 1);
  const echo = await hostile(t, (_n, request, response) => void response.writeHead(500).end(`cannot parse header ${request.headers.authorization}`));
  const message = await refused(client(echo.url).searchSeries(STUDY), 'dicomweb-reply', /: searching the series of study 1\.2\.3\.4: HTTP 500 Internal Server Error \(cannot parse header Bearer \*\*\*\)$/);
  assert.ok(message.includes('***'));
  assert.equal(echo.requests.length, 1);
});

test('a QIDO reply that is not DICOM JSON: not JSON, not an array, an item without its vr', async (t) => {
  const bodies: [string, RegExp][] = [
    ['<html>login</html>', /: searching studies: the reply is not JSON \(.*\) \(Content-Type "text\/html": <html>login<\/html>\)$/],
    ['{"0020000D": {"vr": "UI"}}', /the reply is JSON but not an array of data sets/],
    ['[{"0020000D": {"Value": ["1.2"]}}]', /the reply is not DICOM JSON: item 1, tag 0020000D has no valid "vr"/],
    ['[{"StudyInstanceUID": {"vr": "UI"}}]', /item 1 has the key "StudyInstanceUID", not a tag of 8 hexadecimal digits/],
  ];
  for (const [body, pattern] of bodies) {
    const server = await hostile(t, (_n, _request, response) => void response.writeHead(200, { 'content-type': body.startsWith('<') ? 'text/html' : 'application/dicom+json' }).end(body));
    await refused(client(server.url).searchStudies(), 'dicomweb-reply', pattern);
    assert.equal(server.requests.length, 1);
  }
  const empty = await hostile(t, (n, _request, response) => void response.writeHead(n === 1 ? 204 : 200).end());
  assert.deepEqual(await client(empty.url).searchStudies(), [], '204 No Content');
  assert.deepEqual(await client(empty.url).searchStudies(), [], '200 with an empty body');
});

test('STOW-RS: the body is the files as multipart parts of the declared length; a refused instance is named with its reason', async (t) => {
  const files = [1, 2].map((number) => {
    const file = path.join(tmp, `stow-${number}.dcm`);
    fs.writeFileSync(file, instance(number));
    return file;
  });
  const server = await hostile(t, (_n, _request, response) => {
    const reply = {
      '00081199': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: [`${SERIES}.1`] } }] },
      '00081198': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: [`${SERIES}.2`] }, '00081197': { vr: 'US', Value: [0xa700] } }] },
    };
    response.writeHead(202, { 'content-type': 'application/dicom+json' }).end(JSON.stringify(reply));
  });
  await refused(client(server.url).store(files, STUDY), 'dicomweb-rejected', new RegExp(`: storing 2 instances into study 1\\.2\\.3\\.4: the server refused 1 of 2 \\(HTTP 202\\): ${files[1]} \\(1\\.2\\.3\\.4\\.5\\.2: reason 0xA700 out of resources\\)$`));
  const request = server.requests[0]!;
  assert.equal(request.method, 'POST');
  assert.equal(request.url, `/dicom-web/studies/${STUDY}`);
  assert.equal(Number(request.headers['content-length']), server.bodies[0]!.length);
  const boundary = /boundary=([^;]+)/.exec(request.headers['content-type'] ?? '')![1]!;
  const parser = new MultipartParser(boundary);
  const parts: Buffer[] = [];
  for (const event of [...parser.push(server.bodies[0]!)]) {
    if (event.kind === 'headers') parts.push(Buffer.alloc(0));
    if (event.kind === 'data') parts[parts.length - 1] = Buffer.concat([parts.at(-1)!, event.bytes]);
  }
  parser.finish();
  assert.deepEqual(parts.map((bytes) => bytes.equals(fs.readFileSync(files[parts.indexOf(bytes)]!))), [true, true]);
  // A 503 to a POST: not sent again (a store is not idempotent).
  const busy = await hostile(t, (_n, _request, response) => void response.writeHead(503).end());
  await refused(client(busy.url).store(files), 'dicomweb-unreachable', /: storing 2 instances: HTTP 503 Service Unavailable \(not retried: the request is not idempotent\)$/);
  assert.equal(busy.requests.length, 1);
  // A file of another study is refused before anything is sent.
  await refused(client(busy.url).store(files, '1.2.3.9'), 'bad-arguments', /stow-1\.dcm: belongs to study 1\.2\.3\.4, not to study 1\.2\.3\.9/);
  assert.equal(busy.requests.length, 1);
});

test('a silent server times out; a redirect is refused; a URL with credentials or a bad UID is refused before any request', async (t) => {
  const silent = await hostile(t, () => undefined);
  await refused(client(silent.url, { timeoutMs: 200, retries: 0 }).searchStudies(), 'dicomweb-unreachable', /: searching studies: no reply for 0\.2 s$/);
  const moved = await hostile(t, (_n, _request, response) => void response.writeHead(302, { location: 'http://elsewhere.example/dicom-web/studies' }).end());
  await refused(client(moved.url).searchStudies(), 'dicomweb-reply', /the server redirects \(HTTP 302\) to http:\/\/elsewhere\.example\/dicom-web\/studies; give that URL instead/);
  assert.equal(moved.requests.length, 1);
  const withCredentials = `http://bob:${TOKEN}@127.0.0.1:9/dicom-web`;
  assert.throws(() => client(withCredentials), (error: unknown) => error instanceof InputError && error.code === 'bad-arguments' && !error.message.includes(TOKEN) && /holds credentials; put them in LESIONSEG_DICOMWEB_USER/.test(error.message));
  await refused(client(moved.url).retrieveSeries('1.2.3/../4', SERIES, tmp), 'bad-arguments', /the study UID "1\.2\.3\/\.\.\/4" is not a DICOM UID/);
  assert.equal(moved.requests.length, 1);
});

test('https: trusted through the CA file given; without it the self-signed server is refused as untrusted, not retried', async (t) => {
  const key = path.join(tmp, 'server.key');
  const cert = path.join(tmp, 'server.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  let requests = 0;
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (_request, response) => {
    requests++;
    response.writeHead(200, { 'content-type': 'application/dicom+json' }).end(JSON.stringify([{ '0020000D': { vr: 'UI', Value: [STUDY] } }]));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/dicom-web`;
  assert.deepEqual(await client(url, { caFile: cert }).searchStudies(), [{ '0020000D': { vr: 'UI', Value: [STUDY] } }]);
  assert.equal(requests, 1);
  const trusting = client(url, { caFile: cert });
  await trusting.searchStudies();
  await trusting.close();
  assert.equal(requests, 2);
  await refused(client(url).searchStudies(), 'dicomweb-tls', /: searching studies: the server's certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\); give the CA that signed it as the CA file, or check the URL$/);
  assert.throws(() => client(url, { caFile: key }), (error: unknown) => error instanceof InputError && error.code === 'dicomweb-tls' && /server\.key: the CA file holds no PEM certificate/.test(error.message));
  assert.throws(() => client(url.replace('https:', 'http:'), { caFile: cert }), (error: unknown) => error instanceof InputError && error.code === 'bad-arguments');
  assert.equal(requests, 2);
});
