/**
 * The report of a tiny hand-made study (test/fixtures/report/study): tables, figures, one
 * self-contained HTML page; then the page in headless Chromium (Debian `chromium`): it loads, the
 * tables are in the DOM and every image decoded (the page's own check sets data-images-ok).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InputError } from '../core/index.js';
import { readStudyResults, writeReport } from './writeReport.js';

const CHROMIUM = '/usr/bin/chromium';
const fixtureStudy = fileURLToPath(new URL('../../test/fixtures/report/study/', import.meta.url));

function copyStudy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-report-'));
  fs.cpSync(fixtureStudy, dir, { recursive: true });
  return dir;
}

test('writeReport writes tables, figures and a self-contained page', () => {
  const dir = copyStudy();
  try {
    const written = writeReport(dir);
    for (const id of ['table1', 'table2', 'table3']) {
      assert.ok(fs.existsSync(path.join(dir, 'tables', `${id}.md`)));
      assert.ok(fs.existsSync(path.join(dir, 'tables', `${id}.csv`)));
    }
    const html = fs.readFileSync(written.html, 'utf8');
    assert.equal((html.match(/<table>/g) ?? []).length, 3);
    // CT, ground truth and one panel per arm (3), each an inline PNG; also saved as files.
    assert.equal((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 5);
    assert.equal((html.match(/<svg /g) ?? []).length, 6);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing is loaded from the network');
    const pngs = written.figures.filter((f) => f.endsWith('.png'));
    assert.equal(pngs.length, 5);
    for (const file of pngs) assert.deepEqual([...fs.readFileSync(file).subarray(1, 4)], [0x50, 0x4e, 0x47]);
    // A 24 px slice at 1.5 mm is enlarged 13x to about 320 px.
    const ihdr = fs.readFileSync(pngs[0]!);
    assert.equal(ihdr.readUInt32BE(16), 24 * 13);
    assert.ok(written.figures.some((f) => f.endsWith('dscBox.svg')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a folder without results.json, or another file, is a clear InputError', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-report-'));
  try {
    assert.throws(() => readStudyResults(dir), (e: unknown) => e instanceof InputError && /no results\.json/.test(e.message));
    fs.writeFileSync(path.join(dir, 'results.json'), '{"format":"other"}');
    assert.throws(() => readStudyResults(dir), (e: unknown) => e instanceof InputError && /not a lesionseg study results file/.test(e.message));
    fs.writeFileSync(path.join(dir, 'results.json'), '{');
    assert.throws(() => readStudyResults(dir), (e: unknown) => e instanceof InputError && /not valid JSON/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function dumpDom(file: string, profile: string): Promise<string> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
    '--virtual-time-budget=5000',
    '--dump-dom',
    pathToFileURL(file).href,
  ];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)));
  });
}

test('the page loads in headless Chromium with its tables and every image decoded', { skip: fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (Debian package: chromium); skipping the browser check` }, async () => {
  const dir = copyStudy();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-chromium-'));
  try {
    const { html } = writeReport(dir);
    const dom = await dumpDom(html, profile);
    assert.match(dom, /data-images-ok="5\/5"/, 'every image decoded');
    assert.equal((dom.match(/<table>/g) ?? []).length, 3);
    assert.match(dom, /Table 1: DSC and NSD per fold/);
    assert.match(dom, /class="best"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(profile, { recursive: true, force: true });
  }
});
