/**
 * The DICOMweb client against a real Orthanc with its DICOMweb plugin (one per file, started in
 * `before`): STOW-RS of two phantom series written by pydicom (make_dicom_series.py, whose UIDs are
 * known: study ROOT.1, series ROOT.2.N, instance ROOT.4.N.K), QIDO-RS finding them by those UIDs,
 * WADO-RS giving back instances whose UIDs and PixelData bytes equal the files sent, and a wrong
 * password or token refused as one line that names the variable to check and holds no secret.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, type Affine } from '../../../core/index.js';
import { readDicomHeader } from '../header.js';
import { makeDicomSeries, pydicomAvailable } from '../../test-support.js';
import { DicomwebClient } from './client.js';
import { dicomJsonString, dicomJsonStrings, TAGS } from './dicom-json.js';
import { orthancAvailable, startOrthanc, type RunningOrthanc } from './orthanc-test-support.js';

const ROOT = '1.2.826.0.1.3680043.8.498.7713';
const STUDY = `${ROOT}.1`;
const CT_SERIES = `${ROOT}.2.1`;
const MR_SERIES = `${ROOT}.2.2`;
const SLICES = 4;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicomweb-test-'));
let orthanc: RunningOrthanc | undefined;

before(async () => {
  if (fs.existsSync('/usr/sbin/Orthanc')) orthanc = await startOrthanc();
});
after(async () => {
  await orthanc?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A 4-slice 24x20 phantom with distinct values in every voxel (so that any reordering or cut shows in PixelData). */
function phantomSeries(out: string, seriesNumber: number, modality: string): string[] {
  const shape: [number, number, number] = [SLICES, 24, 20];
  const data = Int16Array.from({ length: shape[0] * shape[1] * shape[2] }, (_, i) => ((i * 37) % 2001) - 1000);
  const affine: Affine = [
    [-0.8, 0, 0, 101.5],
    [0, -0.9, 0, 80.25],
    [0, 0, 2.5, -180],
    [0, 0, 0, 1],
  ];
  makeDicomSeries(out, { data, shape, affine, seriesNumber, modality, description: `phantom ${modality}` });
  return fs.readdirSync(out).filter((name) => name.startsWith(`s${String(seriesNumber).padStart(2, '0')}_`)).sort().map((name) => path.join(out, name));
}

function pixelData(file: string): Buffer {
  const header = readDicomHeader(file);
  assert.ok(header.pixelData !== null && header.pixelData.length !== null, `${file} has PixelData of a defined length`);
  return fs.readFileSync(file).subarray(header.pixelData.offset, header.pixelData.offset + header.pixelData.length);
}

function client(auth: ConstructorParameters<typeof DicomwebClient>[1]['auth']): DicomwebClient {
  return new DicomwebClient(orthanc!.dicomweb, { auth, retries: 0, timeoutMs: 20_000 });
}

/** Orthanc and pydicom are there (pydicom checked once: each check starts a Python). */
let pydicom: boolean | undefined;
function ready(t: { skip(message: string): void }): boolean {
  if (!orthancAvailable(t)) return false;
  if (pydicom === undefined) return (pydicom = pydicomAvailable(t));
  if (!pydicom) t.skip('python3-pydicom is not installed');
  return pydicom;
}
let sent: { ct: string[]; mr: string[] } | undefined;

test('STOW-RS stores two phantom series into one study; the reply lists every instance', async (t) => {
  if (!ready(t)) return;
  const ct = phantomSeries(path.join(tmp, 'sent'), 1, 'CT');
  const mr = phantomSeries(path.join(tmp, 'sent'), 2, 'MR');
  assert.equal(ct.length, SLICES);
  const pacs = client({ kind: 'basic', user: orthanc!.user, password: orthanc!.password });
  const stored = await pacs.store(ct, STUDY);
  assert.deepEqual(stored.stored, Array.from({ length: SLICES }, (_, k) => `${ROOT}.4.1.${k + 1}`));
  assert.deepEqual((await pacs.store(mr)).stored, Array.from({ length: SLICES }, (_, k) => `${ROOT}.4.2.${k + 1}`));
  sent = { ct, mr };
});

test('QIDO-RS finds the study, its two series with their modalities, and the CT series instances', async (t) => {
  if (!ready(t)) return;
  assert.ok(sent !== undefined, 'the STOW test stored the series first');
  const pacs = client({ kind: 'basic', user: orthanc!.user, password: orthanc!.password });
  const studies = await pacs.searchStudies({ StudyInstanceUID: STUDY });
  assert.deepEqual(studies.map((study) => dicomJsonString(study, TAGS.StudyInstanceUID)), [STUDY]);
  assert.deepEqual(dicomJsonStrings(studies[0]!, '00080061').sort(), ['CT', 'MR']);
  const series = await pacs.searchSeries(STUDY);
  assert.deepEqual(series.map((item) => [dicomJsonString(item, TAGS.SeriesInstanceUID), dicomJsonString(item, TAGS.Modality)]).sort(), [
    [CT_SERIES, 'CT'],
    [MR_SERIES, 'MR'],
  ]);
  const onlyCt = await pacs.searchSeries(undefined, { Modality: 'CT' });
  assert.deepEqual(onlyCt.map((item) => dicomJsonString(item, TAGS.SeriesInstanceUID)), [CT_SERIES]);
  const instances = await pacs.searchInstances(STUDY, CT_SERIES);
  assert.deepEqual(instances.map((item) => dicomJsonString(item, TAGS.SOPInstanceUID)).sort(), sent.ct.map((file) => readDicomHeader(file).text.SOPInstanceUID).sort());
  assert.deepEqual(await pacs.searchStudies({ StudyInstanceUID: `${ROOT}.999` }), []);
});

test('WADO-RS retrieves the CT series: one <SOPInstanceUID>.dcm per instance, UIDs and PixelData bytes as sent', async (t) => {
  if (!ready(t)) return;
  assert.ok(sent !== undefined, 'the STOW test stored the series first');
  const pacs = client({ kind: 'basic', user: orthanc!.user, password: orthanc!.password });
  const dest = path.join(tmp, 'retrieved');
  const files = await pacs.retrieveSeries(STUDY, CT_SERIES, dest);
  assert.equal(files.length, SLICES);
  assert.deepEqual(fs.readdirSync(dest).sort(), sent.ct.map((file) => `${readDicomHeader(file).text.SOPInstanceUID}.dcm`).sort(), 'only the instances, no temporary file');
  for (const original of sent.ct) {
    const before = readDicomHeader(original);
    const copy = path.join(dest, `${before.text.SOPInstanceUID}.dcm`);
    const after = readDicomHeader(copy);
    for (const keyword of ['SOPInstanceUID', 'SeriesInstanceUID', 'StudyInstanceUID', 'SOPClassUID'] as const) assert.equal(after.text[keyword], before.text[keyword], keyword);
    assert.ok(pixelData(copy).equals(pixelData(original)), `${copy}: PixelData equals the file sent`);
  }
});

test('an instance over maxInstanceBytes from Orthanc (its parts carry Content-Length): refused before reading, naming the series', async (t) => {
  if (!ready(t)) return;
  assert.ok(sent !== undefined, 'the STOW test stored the series first');
  const dest = path.join(tmp, 'too-large');
  const pacs = new DicomwebClient(orthanc!.dicomweb, { auth: { kind: 'basic', user: orthanc!.user, password: orthanc!.password }, maxInstanceBytes: 1000 });
  await assert.rejects(pacs.retrieveSeries(STUDY, CT_SERIES, dest), (error: unknown) => {
    assert.ok(error instanceof InputError);
    assert.equal(error.code, 'too-large', error.message);
    assert.match(error.message, new RegExp(`retrieving series ${CT_SERIES.replace(/\./g, '\\.')} of study .*: instance 1 of the reply is \\d+ bytes, more than the 1000 allowed for one instance; refused before reading it; `));
    return true;
  });
  assert.deepEqual(fs.readdirSync(dest), []);
});

test('a wrong password, or a token Orthanc does not know: one line naming the server and the variable, no secret in it', async (t) => {
  if (!orthancAvailable(t)) return;
  const wrongPassword = `not-${orthanc!.password}`;
  const cases: [ConstructorParameters<typeof DicomwebClient>[1]['auth'], RegExp, string][] = [
    [{ kind: 'basic', user: orthanc!.user, password: wrongPassword, source: 'LESIONSEG_DICOMWEB_USER and LESIONSEG_DICOMWEB_PASSWORD' }, /check LESIONSEG_DICOMWEB_USER and LESIONSEG_DICOMWEB_PASSWORD$/, wrongPassword],
    [{ kind: 'bearer', token: 'tok-abc123', source: 'LESIONSEG_DICOMWEB_TOKEN' }, /check LESIONSEG_DICOMWEB_TOKEN$/, 'tok-abc123'],
    [{ kind: 'none' }, /no credentials were sent: set LESIONSEG_DICOMWEB_TOKEN/, orthanc!.password],
  ];
  for (const [auth, hint, secret] of cases) {
    const dest = path.join(tmp, `refused-${auth.kind}`);
    for (const call of [() => client(auth).searchStudies(), () => client(auth).retrieveSeries(STUDY, CT_SERIES, dest)]) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof InputError, String(error));
        assert.equal(error.code, 'dicomweb-auth');
        assert.equal(error.message.split('\n').length, 1);
        assert.ok(error.message.startsWith(`${orthanc!.dicomweb}: `), error.message);
        assert.match(error.message, /the server refused the credentials \(HTTP 401/);
        assert.match(error.message.replace(/; nothing half-written or new was left in .*$/, ''), hint);
        assert.ok(!error.message.includes(secret) && !error.message.includes(orthanc!.password), error.message);
        return true;
      });
    }
    assert.deepEqual(fs.existsSync(dest) ? fs.readdirSync(dest) : [], []);
  }
});

test('a series the server does not have: dicomweb-not-found naming it, nothing written', async (t) => {
  if (!orthancAvailable(t)) return;
  const dest = path.join(tmp, 'absent');
  const pacs = client({ kind: 'basic', user: orthanc!.user, password: orthanc!.password });
  await assert.rejects(pacs.retrieveSeries(STUDY, `${ROOT}.2.77`, dest), (error: unknown) => {
    assert.ok(error instanceof InputError);
    assert.equal(error.code, 'dicomweb-not-found', error.message);
    assert.match(error.message, new RegExp(`retrieving series ${ROOT.replace(/\./g, '\\.')}\\.2\\.77 of study`));
    return true;
  });
  assert.deepEqual(fs.readdirSync(dest), []);
});
