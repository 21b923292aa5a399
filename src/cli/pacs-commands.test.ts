/**
 * `predict --pacs` and `pacs watch` against a real Orthanc with its DICOMweb plugin (one per file,
 * io/dicom/dicomweb/orthanc-test-support.ts), the phantom series stored into it by STOW-RS:
 *   - predict --pacs refuses before any request what it is given wrong (URL, UIDs, output types,
 *     model), and after the first QIDO-RS a study with two CT series (listed) or an MR series; it
 *     stores one SEG into the study that references the chosen series instance by instance
 *     (pydicom reads its frames back onto the source); a wrong password is one line, exit 2;
 *   - pacs watch --once stores one SEG per CT series, journals a Secondary Capture series (Modality
 *     CT) and a series with a short PixelData as failed with their reasons and goes on; a second
 *     pass does nothing; a watcher killed with SIGKILL while a series is claimed, and a store
 *     interrupted after it reached the server, are finished by the next --once with exactly one
 *     SEG per series in Orthanc; a held state folder cannot be locked again (folder-locked, exit 2);
 *     SIGTERM stops a waiting watcher with status 0 and its lock released.
 * Every series comes from one phantom series (make_dicom_series.py, pydicom) with its UIDs, study,
 * date and tags rewritten by dcmjs, so the fixtures cost one Python run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import dcmjs from 'dcmjs';
import { lockFolder, LOCK_FILE } from '../core/index.js';
import { DicomwebClient, encodeDicomSeg, readDicomHeader, readNifti } from '../io/index.js';
import { checkSegWithPydicom, dcm2niixAvailable, makeDicomSeries, orthancAvailable, pydicomAvailable, startOrthanc, type RunningOrthanc } from '../io/test-support.js';
import { FIXTURES, TINY_CONFIG, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { PacsJournal, predictFiles, watchPacs } from '../infer/index.js';
import { predictFromPacs } from './pacs-commands.js';
import { CLI, ROOT, STACK_LINE, type Run } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-pacs-'));
const at = (...parts: string[]): string => path.join(tmp, ...parts);
/** The UID root of make_dicom_series.py's fixtures; our studies and series hang below it. */
const ROOT_UID = '1.2.826.0.1.3680043.8.498.7713';
const STUDY_A = `${ROOT_UID}.100`;
const STUDY_B = `${ROOT_UID}.200`;
const seriesUid = (study: string, number: number): string => `${study}.${number}`;
const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

let orthanc: RunningOrthanc | null = null;
test.after(async () => {
  await orthanc?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** `lesionseg ...args` with the server's credentials (or `env`'s) in the environment. */
function lesionseg(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const credentials = { LESIONSEG_DICOMWEB_USER: orthanc!.user, LESIONSEG_DICOMWEB_PASSWORD: orthanc!.password };
    execFile(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...credentials, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

interface Variant {
  study: string;
  series: string;
  number: number;
  studyDate: string;
  modality?: string;
  sopClass?: string;
  /** The instance (0-based) whose PixelData loses its last 200 bytes. */
  shortInstance?: number;
}

/** The base series rewritten (dcmjs) as `variant` into `out`; returns its files. */
function rewriteSeries(base: string, out: string, variant: Variant): string[] {
  fs.mkdirSync(out, { recursive: true });
  return fs.readdirSync(base).sort().map((name, k) => {
    const bytes = fs.readFileSync(path.join(base, name));
    const dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)).dict);
    Object.assign(dataset, { StudyInstanceUID: variant.study, SeriesInstanceUID: variant.series, SOPInstanceUID: `${variant.series}.${k + 1}`, SeriesNumber: variant.number, SeriesDescription: `series ${variant.number}`, StudyDate: variant.studyDate });
    if (variant.modality !== undefined) dataset.Modality = variant.modality;
    if (variant.sopClass !== undefined) dataset.SOPClassUID = variant.sopClass;
    if (variant.shortInstance === k) dataset.PixelData = [(dataset.PixelData[0] as ArrayBuffer).slice(0, -200)];
    const file = path.join(out, name);
    fs.writeFileSync(file, encodeDicomSeg(dataset));
    return file;
  });
}

const ready = (async () => {
  orthanc = await startOrthanc();
  const model = fixtureUNet();
  writeTestCheckpoint(at('run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  const phantom = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  makeDicomSeries(at('base'), { data: Int16Array.from(phantom.data as Int16Array), shape: phantom.shape, affine: phantom.affine });
  const client = new DicomwebClient(orthanc.dicomweb, { auth: { kind: 'basic', user: orthanc.user, password: orthanc.password } });
  /** Write a variant of the phantom series and store it into Orthanc; returns its local folder. */
  const upload = async (variant: Variant): Promise<string> => {
    const folder = at('series', variant.series);
    await client.store(rewriteSeries(at('base'), folder, variant));
    return folder;
  };
  return { client, upload };
})();

/** The SEG instances of a study, each with the series and instances it references (read by dcmjs). */
async function segsOf(client: DicomwebClient, study: string): Promise<{ sop: string; study: string; referencedSeries: string; referencedInstances: string[]; file: string }[]> {
  const items = (value: unknown): Record<string, unknown>[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]) as Record<string, unknown>[];
  const segs = [];
  for (const series of await client.searchSeries(study, { Modality: 'SEG' })) {
    const uid = (series['0020000E']!.Value as string[])[0]!;
    for (const file of await client.retrieveSeries(study, uid, at('retrieved', uid))) {
      const bytes = fs.readFileSync(file);
      const seg = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)).dict);
      const referenced = items(seg.ReferencedSeriesSequence)[0]!;
      segs.push({
        sop: seg.SOPInstanceUID as string,
        study: seg.StudyInstanceUID as string,
        referencedSeries: referenced.SeriesInstanceUID as string,
        referencedInstances: items(referenced.ReferencedInstanceSequence).map((item) => item.ReferencedSOPInstanceUID as string).sort(),
        file,
      });
    }
  }
  return segs;
}

/** The instances of `modality` in a study, each with the SOPInstanceUIDs its Current Requested Procedure Evidence Sequence names. */
async function evidenceOf(client: DicomwebClient, study: string, modality: string): Promise<{ sop: string; evidence: string[] }[]> {
  const items = (value: unknown): Record<string, unknown>[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]) as Record<string, unknown>[];
  const found = [];
  for (const series of await client.searchSeries(study, { Modality: modality })) {
    const uid = (series['0020000E']!.Value as string[])[0]!;
    for (const file of await client.retrieveSeries(study, uid, at('retrieved', uid))) {
      const bytes = fs.readFileSync(file);
      const dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)).dict);
      const evidence = items(dataset.CurrentRequestedProcedureEvidenceSequence).flatMap((studyItem) => items(studyItem.ReferencedSeriesSequence)).flatMap((seriesItem) => items(seriesItem.ReferencedSOPSequence)).map((item) => item.ReferencedSOPInstanceUID as string);
      found.push({ sop: dataset.SOPInstanceUID as string, evidence: evidence.sort() });
    }
  }
  return found;
}

const sopsOf = (folder: string): string[] => fs.readdirSync(folder).map((name) => readDicomHeader(path.join(folder, name)).text.SOPInstanceUID!).sort();

test('predict --pacs: arguments refused before any request; several CT series listed, MR refused; the SEG stored into the study references the chosen series, the SR the SEG and the series; a wrong password is one line', async (t) => {
  if (!orthancAvailable(t) || !pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { client, upload } = await ready;
  const url = orthanc!.dicomweb;
  await upload({ study: STUDY_A, series: seriesUid(STUDY_A, 4), number: 4, studyDate: '20240517' });
  const chosen = await upload({ study: STUDY_A, series: seriesUid(STUDY_A, 5), number: 5, studyDate: '20240517' });
  await upload({ study: STUDY_A, series: seriesUid(STUDY_A, 6), number: 6, studyDate: '20240517', modality: 'MR', sopClass: MR_IMAGE_STORAGE });

  // In-process, the refusals the command line would print (InputError: exit 2). The closed port 1 shows that no request was made.
  process.env.LESIONSEG_DICOMWEB_USER = orthanc!.user;
  process.env.LESIONSEG_DICOMWEB_PASSWORD = orthanc!.password;
  const base = { model: at('run'), outputTypes: ['dicom-seg' as const] };
  const refused = async (args: Parameters<typeof predictFromPacs>[0], options: Parameters<typeof predictFromPacs>[1], code: string, message: RegExp): Promise<void> => {
    await assert.rejects(predictFromPacs(args, options, { info: () => {}, warn: () => {} }), (error: Error & { code?: string }) => {
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
      return true;
    });
  };
  await refused({ url: 'ftp://127.0.0.1:1/dicom-web', study: STUDY_A, json: false }, base, 'bad-arguments', /is not http:\/\/ or https:\/\//);
  await refused({ url: 'http://127.0.0.1:1/dicom-web', study: '1.2.abc', json: false }, base, 'bad-arguments', /--study "1\.2\.abc" is not a DICOM UID/);
  await refused({ url: 'http://127.0.0.1:1/dicom-web', study: STUDY_A, series: `${'1.'.repeat(32)}1`, json: false }, base, 'bad-arguments', /--series .* is not a DICOM UID \(digits and dots, at most 64 characters\)/);
  await refused({ url: 'http://127.0.0.1:1/dicom-web', study: STUDY_A, json: false }, { ...base, outputTypes: ['nifti', 'dicom-seg'] }, 'bad-arguments', /nifti is written only to a local folder: add -o DIR/);
  await refused({ url: 'http://127.0.0.1:1/dicom-web', study: STUDY_A, json: false }, { ...base, model: at('no-model') }, 'missing-model', /no-model/);
  await refused({ url, study: STUDY_A, json: false }, base, 'dicom-several-series', new RegExp(`holds 2 CT series; choose one with --series UID: ${seriesUid(STUDY_A, 4).replaceAll('.', '\\.')} \\(series 4, "series 4", CT, 11 instances\\); ${seriesUid(STUDY_A, 5).replaceAll('.', '\\.')} \\(series 5`));
  await refused({ url, study: STUDY_A, series: seriesUid(STUDY_A, 6), json: false }, base, 'dicom-not-ct', /series 1\.2\.826\.0\.1\.3680043\.8\.498\.7713\.100\.6 is MR, not CT; lesionseg segments CT/);
  await refused({ url, study: `${ROOT_UID}.999`, json: false }, base, 'dicomweb-not-found', /has no such study/);
  assert.deepEqual(await segsOf(client, STUDY_A), [], 'nothing stored by a refusal');

  const run = await lesionseg(['predict', '-m', at('run'), '--pacs', url, '--study', STUDY_A, '--series', seriesUid(STUDY_A, 5), '-o', at('local')]);
  assert.equal(run.code, 0, run.stderr);
  // The default --output-type with --pacs: the SEG, then the SR that references it.
  const stored = /stored 2 object\(s\) into study [0-9.]+: ([0-9.]+), ([0-9.]+)$/m.exec(run.stdout);
  assert.ok(stored !== null, run.stdout);
  const segs = await segsOf(client, STUDY_A);
  assert.equal(segs.length, 1);
  assert.deepEqual({ sop: segs[0]!.sop, study: segs[0]!.study, series: segs[0]!.referencedSeries }, { sop: stored[1], study: STUDY_A, series: seriesUid(STUDY_A, 5) });
  assert.deepEqual(segs[0]!.referencedInstances, sopsOf(chosen));
  const srs = await evidenceOf(client, STUDY_A, 'SR');
  assert.equal(srs.length, 1);
  assert.equal(srs[0]!.sop, stored[2]);
  assert.deepEqual(srs[0]!.evidence, [...sopsOf(chosen), stored[1]!].sort(), 'the SR names the CT instances and the SEG as its evidence');
  // pydicom: every frame sits on its source instance of the chosen series.
  const check = checkSegWithPydicom(segs[0]!.file, chosen, at('seg-a.npy'));
  assert.equal(check.studyInstanceUid, STUDY_A);
  assert.equal(check.referencedSeries, seriesUid(STUDY_A, 5));
  assert.equal(check.misplacedFrames, 0);
  // -o kept the local copies of what was stored.
  assert.equal(readDicomHeader(at('local', `${seriesUid(STUDY_A, 5)}.seg.dcm`)).text.SOPInstanceUID, stored[1]);
  assert.equal(readDicomHeader(at('local', `${seriesUid(STUDY_A, 5)}.sr.dcm`)).text.SOPInstanceUID, stored[2]);

  const wrong = await lesionseg(['predict', '-m', at('run'), '--pacs', url, '--study', STUDY_A, '--series', seriesUid(STUDY_A, 4)], { LESIONSEG_DICOMWEB_PASSWORD: 'not-the-password' });
  assert.equal(wrong.code, 2, wrong.stderr);
  assert.equal(wrong.stderr.trim().split('\n').length, 1, wrong.stderr);
  assert.match(wrong.stderr, /the server refused the credentials \(HTTP 401/);
  assert.doesNotMatch(wrong.stderr, /not-the-password/);
  assert.equal((await segsOf(client, STUDY_A)).length, 1);
});

/** The journal entry of a series, as the watcher left it. */
function entryOf(state: string, series: string): { state: string; reason?: string; note?: string; stored?: string[] } {
  return JSON.parse(fs.readFileSync(path.join(state, 'series', `${series}.json`), 'utf8'));
}

test('pacs watch: each CT series once, failures journalled and passed over, a SIGKILL and an interrupted store finished once, the state folder locked, SIGTERM clean', async (t) => {
  if (!orthancAvailable(t) || !pydicomAvailable(t) || !dcm2niixAvailable(t)) return;
  const { client, upload } = await ready;
  const url = orthanc!.dicomweb;
  const state = at('state');
  const watch = ['pacs', 'watch', url, '-m', at('run'), '--state', state, '--since', '2025-01-01'];
  const b = (n: number): string => seriesUid(STUDY_B, n);
  await upload({ study: STUDY_B, series: b(1), number: 1, studyDate: '20250301' });
  await upload({ study: STUDY_B, series: b(2), number: 2, studyDate: '20250301', sopClass: SECONDARY_CAPTURE });
  await upload({ study: STUDY_B, series: b(3), number: 3, studyDate: '20250301', shortInstance: 5 });
  await upload({ study: STUDY_B, series: b(4), number: 4, studyDate: '20250301' });

  const first = await lesionseg([...watch, '--once']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stderr.split('\n').filter((line) => line.includes(`(study ${STUDY_B})`)).length, 4, first.stderr);
  assert.deepEqual([1, 2, 3, 4].map((n) => entryOf(state, b(n)).state), ['done', 'failed', 'failed', 'done']);
  assert.match(entryOf(state, b(2)).reason!, /SOPClassUID \(0008,0016\) is 1\.2\.840\.10008\.5\.1\.4\.1\.1\.7, not CT Image Storage/);
  assert.match(entryOf(state, b(3)).reason!, new RegExp(`instance ${b(3).replaceAll('.', '\\.')}\\.6: PixelData \\(7FE0,0010\\) holds 556 bytes`));
  assert.doesNotMatch(first.stderr, /lesionseg-pacs-|^\s+at /m);
  let segs = await segsOf(client, STUDY_B);
  assert.deepEqual(segs.map((seg) => seg.referencedSeries).sort(), [b(1), b(4)]);
  for (const seg of segs) assert.deepEqual(seg.referencedInstances, sopsOf(at('series', seg.referencedSeries)));
  assert.deepEqual(segs.find((seg) => seg.referencedSeries === b(1))!.sop, entryOf(state, b(1)).stored![0]);
  assert.equal((await evidenceOf(client, STUDY_B, 'SR')).length, 2, 'one SR per CT series');

  // The second pass in-process (the same code as the command's, without another process start).
  const lines: string[] = [];
  const again = await watchPacs(client, { stateFolder: state, once: true, since: '20250101', intervalSeconds: 1, predict: { model: at('run'), outputTypes: ['dicom-seg', 'dicom-sr'] }, signal: new AbortController().signal }, { info: (line) => lines.push(line), warn: (line) => lines.push(line) });
  assert.deepEqual(again, { seen: 4, done: 0, failed: 0, skipped: 4 });
  assert.deepEqual(lines, ['pass: 4 CT series in the window, 0 done, 0 failed, 4 finished before']);
  assert.equal((await segsOf(client, STUDY_B)).length, 2);

  // A watcher killed (SIGKILL) while series 5 is claimed; series 7's store reached the server but not the journal.
  await upload({ study: STUDY_B, series: b(5), number: 5, studyDate: '20250301' });
  await upload({ study: STUDY_B, series: b(6), number: 6, studyDate: '20250301' });
  const interrupted = await upload({ study: STUDY_B, series: b(7), number: 7, studyDate: '20250301' });
  const child = spawn(process.execPath, [...CLI, ...watch, '--once'], { cwd: ROOT, env: { ...process.env, LESIONSEG_DICOMWEB_USER: orthanc!.user, LESIONSEG_DICOMWEB_PASSWORD: orthanc!.password }, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const claim = path.join(state, 'series', `${b(5)}.json`);
  let seen = '';
  for (const deadline = Date.now() + 120_000; seen === '' && Date.now() < deadline; ) {
    if (fs.existsSync(claim)) seen = JSON.parse(fs.readFileSync(claim, 'utf8')).state;
    else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  child.kill('SIGKILL');
  await exited;
  assert.equal(seen, 'claimed', 'the watcher was killed while series 5 was claimed');
  assert.equal(fs.existsSync(path.join(state, LOCK_FILE)), true, 'a killed watcher leaves its lock');
  const results = new PacsJournal(state).resultsOf(b(7));
  const predicted = await predictFiles({ model: at('run'), input: interrupted, output: results, outputTypes: ['dicom-seg'] });
  const segFile = predicted.cases[0]!.dicomSeg!;
  const segSop = readDicomHeader(segFile).text.SOPInstanceUID!;
  await client.store([segFile], STUDY_B);
  new PacsJournal(state).storing(STUDY_B, b(7), 1, [{ file: segFile, sopInstanceUid: segSop }]);

  const restart = await lesionseg([...watch, '--once']);
  assert.equal(restart.code, 0, restart.stderr);
  assert.match(restart.stderr, new RegExp(`${b(5).replaceAll('.', '\\.')} \\(study [0-9.]+\\): done \\(attempt 2: attempt 1 by PID ${child.pid} at .* was interrupted\\)`));
  assert.match(restart.stderr, /stored again after an interrupted store \(same SOPInstanceUIDs\)/);
  assert.deepEqual([5, 6, 7].map((n) => entryOf(state, b(n)).state), ['done', 'done', 'done']);
  segs = await segsOf(client, STUDY_B);
  assert.deepEqual(segs.map((seg) => seg.referencedSeries).sort(), [b(1), b(4), b(5), b(6), b(7)], 'one SEG per CT series');
  assert.equal(segs.find((seg) => seg.referencedSeries === b(7))!.sop, segSop);
  assert.equal(fs.existsSync(results), false, 'results removed once stored');

  // A waiting watcher holds the folder: a second one is refused; SIGTERM ends the first with 0 and its lock removed.
  const waiting = spawn(process.execPath, [...CLI, ...watch, '--interval', '600'], { cwd: ROOT, env: { ...process.env, LESIONSEG_DICOMWEB_USER: orthanc!.user, LESIONSEG_DICOMWEB_PASSWORD: orthanc!.password }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  waiting.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ended = new Promise<number | null>((resolve) => waiting.once('exit', (code) => resolve(code)));
  for (const deadline = Date.now() + 120_000; !stderr.includes('watching ') && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.throws(() => lockFolder(state, 'pacs watch'), { code: 'folder-locked', message: new RegExp(`is in use by lesionseg pacs watch \\(PID ${waiting.pid}`) });
  waiting.kill('SIGTERM');
  assert.equal(await ended, 0, stderr);
  assert.match(stderr, /SIGTERM: stopping after the current step/);
  assert.doesNotMatch(stderr, new RegExp(STACK_LINE));
  assert.equal(fs.existsSync(path.join(state, LOCK_FILE)), false);
  assert.equal((await segsOf(client, STUDY_B)).length, 5);
  // Series 5 and 6 have their SR too; series 7's interrupted store held its SEG only.
  assert.equal((await evidenceOf(client, STUDY_B, 'SR')).length, 4);
});
