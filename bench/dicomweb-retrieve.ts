/**
 * Memory and speed of a WADO-RS retrieve of a large series: a local server (a child process, so its
 * buffers do not count) sends a series of `--instances` CT instances of 2048x2048 int16 (8 MiB each;
 * 128 make 1 GiB) as one multipart reply, and DicomwebClient.retrieveSeries writes them into a
 * temporary folder. Reports the bytes, the time, and this process' resident memory before the
 * retrieve and its highest value while it runs (sampled every 10 ms): streaming must keep that
 * far below the series' size.
 *
 *   node --import tsx bench/dicomweb-retrieve.ts [--instances 128] [--out results/dicomweb/retrieve.json]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { freePort } from '../src/core/index.js';
import { DicomwebClient } from '../src/io/index.js';
import { ctInstance } from '../src/io/dicom/dicomweb/orthanc-test-support.js';
import { option, report } from './support.js';

const instances = Number(option('instances', '128'));
const SIDE = 2048;
const TEMPLATE_SOP = '1.2.3.4.5.100000';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-bench-dicomweb-'));
const template = path.join(work, 'template.dcm');
fs.writeFileSync(template, ctInstance({ study: '1.2.3.4', series: '1.2.3.4.5', sop: TEMPLATE_SOP }, SIDE, 0));

// The server: each instance is the template with its SOPInstanceUID (meta and data set) replaced by one of the same length.
const SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const [template, count, port, old] = [fs.readFileSync(process.argv[1]), Number(process.argv[2]), Number(process.argv[3]), Buffer.from(process.argv[4])];
http.createServer(async (request, response) => {
  response.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=B' });
  for (let i = 1; i <= count; i++) {
    const body = Buffer.from(template);
    const sop = Buffer.from(String(Number(old.toString().split('.').pop()) + i).padStart(6, '0'));
    for (let at = body.indexOf(old); at >= 0; at = body.indexOf(old, at + 1)) sop.copy(body, at + old.length - sop.length);
    const part = Buffer.concat([Buffer.from('--B\\r\\nContent-Type: application/dicom\\r\\n\\r\\n'), body, Buffer.from('\\r\\n')]);
    if (!response.write(part)) await new Promise((resolve) => response.once('drain', resolve));
  }
  response.end('--B--\\r\\n');
}).listen(port, '127.0.0.1', () => console.log('ready'));
`;

const port = await freePort();
const server = spawn(process.execPath, ['-e', SERVER, template, String(instances), String(port), TEMPLATE_SOP], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  await new Promise((resolve) => server.stdout!.once('data', resolve));
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 10);
  const start = performance.now();
  const files = await new DicomwebClient(`http://127.0.0.1:${port}/dicom-web`, { auth: { kind: 'none' } }).retrieveSeries('1.2.3.4', '1.2.3.4.5', path.join(work, 'series'));
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  const bytes = files.reduce((sum, file) => sum + fs.statSync(file).size, 0);
  const mib = (value: number): number => Math.round((value / 1024 / 1024) * 10) / 10;
  report({
    instances: files.length,
    seriesMiB: mib(bytes),
    seconds: Math.round(seconds * 100) / 100,
    mibPerSecond: Math.round((bytes / 1024 / 1024 / seconds) * 10) / 10,
    rssBeforeMiB: mib(rssBefore),
    rssPeakDuringMiB: mib(rssPeak),
    node: process.version,
    cpus: os.cpus().length,
  });
} finally {
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
