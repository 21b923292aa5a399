/**
 * The watcher's journal and its decisions, without a server (a stand-in client answering QIDO-RS
 * from a list; the real round trip is src/cli/pacs-commands.test.ts): entries written and read
 * back per state, a UID that is not one never names a file, a damaged entry is refused naming its
 * file; a series claimed twice by killed processes is failed without a retrieve; a series whose
 * retrieve fails for its own reason is failed and the next one tried; a server that went away
 * releases the claim (the attempt does not count) and ends a --once pass with its error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../core/index.js';
import type { DicomJson, DicomwebClient } from '../io/index.js';
import { MAX_ATTEMPTS, PacsJournal } from './pacsJournal.js';
import { dicomDate, watchPass, type WatchOptions } from './pacsWatch.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pacs-watch-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const STUDY = '1.2.3.4';
const uidJson = (tag: string, value: string): DicomJson => ({ [tag]: { vr: 'UI', Value: [value] } });

/** A client whose QIDO-RS answers hold one study of `series` (all CT), and whose retrieve runs `retrieve`. */
function standIn(series: string[], retrieve: (uid: string) => Promise<string[]>): { client: DicomwebClient; retrieved: string[] } {
  const retrieved: string[] = [];
  const client = {
    baseUrl: 'http://pacs.invalid/dicom-web',
    searchStudies: async () => [uidJson('0020000D', STUDY)],
    searchSeries: async () => series.map((uid, k) => ({ ...uidJson('0020000E', uid), '00080060': { vr: 'CS', Value: ['CT'] }, '00200011': { vr: 'IS', Value: [k + 1] } })),
    retrieveSeries: async (_study: string, uid: string) => {
      retrieved.push(uid);
      return retrieve(uid);
    },
    store: async () => {
      throw new Error('nothing is stored in these tests');
    },
  };
  return { client: client as unknown as DicomwebClient, retrieved };
}

function options(stateFolder: string): WatchOptions {
  return { stateFolder, once: true, since: '20250101', intervalSeconds: 1, predict: { model: path.join(tmp, 'unused') }, signal: new AbortController().signal };
}

test('journal entries per state read back; done and failed remove the results; a non-UID never names a file; a damaged entry is refused naming it', () => {
  const journal = new PacsJournal(path.join(tmp, 'journal'), () => new Date('2025-03-01T10:00:00Z'));
  assert.equal(journal.get('1.2.3.4.5'), null);
  journal.claim(STUDY, '1.2.3.4.5', 1);
  assert.deepEqual(journal.get('1.2.3.4.5'), { state: 'claimed', study: STUDY, series: '1.2.3.4.5', attempt: 1, pid: process.pid, at: '2025-03-01T10:00:00.000Z' });
  fs.mkdirSync(journal.resultsOf('1.2.3.4.5'), { recursive: true });
  journal.storing(STUDY, '1.2.3.4.5', 1, [{ file: '/x/a.seg.dcm', sopInstanceUid: '2.25.1' }]);
  assert.equal(journal.get('1.2.3.4.5')?.state, 'storing');
  journal.done(STUDY, '1.2.3.4.5', ['2.25.1']);
  assert.deepEqual(journal.get('1.2.3.4.5'), { state: 'done', study: STUDY, series: '1.2.3.4.5', stored: ['2.25.1'], at: '2025-03-01T10:00:00.000Z' });
  assert.equal(fs.existsSync(journal.resultsOf('1.2.3.4.5')), false);
  journal.failed(STUDY, '1.2.3.4.6', 'first line\nsecond line');
  const failed = journal.get('1.2.3.4.6');
  assert.equal(failed?.state === 'failed' ? failed.reason : null, 'first line');
  assert.deepEqual(journal.counts(), { claimed: 0, storing: 0, done: 1, failed: 1 });
  assert.throws(() => journal.claim(STUDY, '../../escape', 1), { code: 'dicomweb-reply', message: /"\.\.\/\.\.\/escape", which is not a DICOM UID/ });
  assert.equal(fs.existsSync(path.join(tmp, 'escape.json')), false);
  fs.writeFileSync(path.join(journal.seriesFolder, '1.2.3.4.7.json'), '{"state": "clai');
  assert.throws(() => journal.get('1.2.3.4.7'), { code: 'bad-json', message: new RegExp(`${path.join(journal.seriesFolder, '1.2.3.4.7.json').replaceAll('.', '\\.')}: is not a journal entry`) });
  fs.writeFileSync(path.join(journal.seriesFolder, '1.2.3.4.8.json'), JSON.stringify({ state: 'done', series: '1.2.3.4.9' }));
  assert.throws(() => journal.get('1.2.3.4.8'), { code: 'bad-value' });
});

test('watchPass: a series interrupted twice is failed without a retrieve; a series failing for its own reason is failed and the next tried; a server gone releases the claim', async () => {
  const state = path.join(tmp, 'state');
  const journal = new PacsJournal(state);
  journal.claim(STUDY, '1.2.3.4.1', MAX_ATTEMPTS);
  const { client, retrieved } = standIn(['1.2.3.4.1', '1.2.3.4.2', '1.2.3.4.3'], async (uid) => {
    if (uid === '1.2.3.4.2') throw new InputError('retrieving series 1.2.3.4.2: part 3 is not DICOM', { code: 'dicomweb-reply' });
    throw new InputError('retrieving series 1.2.3.4.3: the server closed the connection', { code: 'dicomweb-unreachable' });
  });
  await assert.rejects(watchPass(client, journal, options(state)), { code: 'dicomweb-unreachable' });
  assert.deepEqual(retrieved, ['1.2.3.4.2', '1.2.3.4.3'], 'the twice-interrupted series is not retrieved again');
  const first = journal.get('1.2.3.4.1');
  assert.equal(first?.state, 'failed');
  assert.match((first as { reason: string }).reason, new RegExp(`interrupted ${MAX_ATTEMPTS} times while being processed \\(the process was killed or crashed; last by PID ${process.pid}`));
  assert.deepEqual(journal.get('1.2.3.4.2'), { ...journal.get('1.2.3.4.2'), state: 'failed', reason: 'retrieving series 1.2.3.4.2: part 3 is not DICOM' });
  assert.equal(journal.get('1.2.3.4.3'), null, 'the claim of a series the server failed on is released');
});

test('dicomDate: YYYYMMDD in UTC, days back across a month', () => {
  assert.equal(dicomDate(new Date('2025-03-01T00:30:00Z')), '20250301');
  assert.equal(dicomDate(new Date('2025-03-01T00:30:00Z'), 1), '20250228');
  assert.equal(dicomDate(new Date('2024-03-01T00:30:00Z'), 1), '20240229');
});
