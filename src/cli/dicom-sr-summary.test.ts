/**
 * The DICOM SR of a case summary, as radiology IT checks it and as a user gets it:
 *   - srReportOf on a hand-written summary: one group per region, an empty region's percentage left
 *     out, the scores with Pan et al.'s method;
 *   - SRs on SEGs of two phantom series written by Debian's pydicom (ASCII, one infection label,
 *     lungs and lobes; ISO 2022 IR 87 Japanese, two infection labels, lobes) go through David
 *     Clunie's dciodvfy (no error; no warning but the one README "### DICOM" explains: our private
 *     coding scheme 99LESIONSEG is not among its defined terms) and PixelMed's DicomSRValidator (IOD
 *     and TID 1500 tree: no error, no warning); PixelMed's DicomInstanceValidator, whose Debian
 *     build knows no SR IOD, says exactly that and nothing else;
 *   - pydicom reads every number back equal to the summary's (exact: the SR carries the double as
 *     FD wherever its DS text would round it), the study, evidence, references and text;
 *   - `predict --output-type nifti,dicom-seg,dicom-sr --summary --lungs --lobes` on a DICOM series:
 *     the SR read back equals <case>.summary.json number for number; `dicom-seg,dicom-sr --lobes`
 *     alone (no nifti, no --summary) gives the same lobe numbers; dicom-sr without dicom-seg, or on
 *     NIfTI input, exits 2 before the model loads, and with a model of lungs only before predicting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Affine } from '../core/index.js';
import { LOBE_NAMES, lobeSeverityScore, severitySummary, type LobeName, type SeveritySummary } from '../eval/index.js';
import { readDicomSeries, readNifti, readSegReference, writeDicomSeg, writeNifti } from '../io/index.js';
import { dcm2niixAvailable, dciodvfy, makeDicomSeries, pixelmedValidate, pydicomAvailable, readSrWithPydicom, validatorsAvailable, type SrRead } from '../io/test-support.js';
import { FIXTURES, TINY_CONFIG, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { srReportOf, TRACKING_IDS, writeSummarySr } from './dicom-sr-summary.js';
import { lesionseg } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-sr-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

const VOLUME = 'SCT:118565006';
const SITE_VOLUME = '99LESIONSEG:SITEVOL';
const INVOLVED = '99LESIONSEG:INVOLVED';
const OUTSIDE = '99LESIONSEG:OUTSIDE';
const LOBE_SCORE = '99LESIONSEG:LOBESCORE';
const TOTAL_SCORE = '99LESIONSEG:CTSS';

/** What the SR must hold, by tracking identifier and concept, written out from the summary alone. */
function expectedNumbers(summary: SeveritySummary): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = { [TRACKING_IDS.infection]: { [VOLUME]: summary.infection.volumeMl } };
  const region = (r: { volumeMl: number; infectionMl: number; percentInvolved: number | null }) => ({ [VOLUME]: r.infectionMl, [SITE_VOLUME]: r.volumeMl, ...(r.percentInvolved !== null ? { [INVOLVED]: r.percentInvolved } : {}) });
  if (summary.lungs !== null) {
    out[TRACKING_IDS.infection]![OUTSIDE] = summary.lungs.infectionOutsideLungsMl;
    for (const side of ['left', 'right', 'both'] as const) out[TRACKING_IDS[side]] = region(summary.lungs[side]);
  }
  if (summary.lobes !== null) {
    if (summary.lobes.severityScore !== null) out[TRACKING_IDS.infection]![TOTAL_SCORE] = summary.lobes.severityScore;
    for (const name of LOBE_NAMES) {
      const lobe = summary.lobes.perLobe[name];
      out[TRACKING_IDS[name]] = { ...region(lobe), ...(lobe.score !== null ? { [LOBE_SCORE]: lobe.score } : {}) };
    }
  }
  return out;
}

/** The SR's numbers, by tracking identifier and concept; units, methods and DS length checked on the way. */
function readNumbers(read: SrRead): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const group of read.groups) {
    out[group.tracking] = {};
    for (const m of group.measurements) {
      assert.equal(m.units, m.concept === INVOLVED ? '%' : m.concept === LOBE_SCORE || m.concept === TOTAL_SCORE ? '1' : 'ml', `${group.tracking} ${m.concept}`);
      assert.deepEqual(m.method, m.concept === LOBE_SCORE || m.concept === TOTAL_SCORE ? ['99LESIONSEG', 'PAN2020', 'Pan et al. Radiology 2020;295:715-721'] : null);
      assert.ok(m.ds.length <= 16, `DS '${m.ds}' longer than 16 characters`);
      out[group.tracking]![m.concept] = m.value;
    }
  }
  return out;
}

/** Volumes are voxel counts times the voxel volume: the SR's mL give the summary's voxel counts back exactly. */
function assertVoxelCounts(summary: SeveritySummary, numbers: Record<string, Record<string, number>>): void {
  assert.equal(numbers[TRACKING_IDS.infection]![VOLUME], summary.infection.voxels * summary.voxelVolumeMl);
  for (const [name, lobe] of Object.entries(summary.lobes?.perLobe ?? {})) {
    assert.equal(numbers[TRACKING_IDS[name as LobeName]]![SITE_VOLUME], lobe.voxels * summary.voxelVolumeMl);
  }
}

test('srReportOf: one group per region, the empty lobe without a percentage or score, scores with their method', () => {
  const lobe = (voxels: number, inside: number) => ({ voxels, volumeMl: voxels * 0.5, infectionVoxels: inside, infectionMl: inside * 0.5, percentInvolved: voxels === 0 ? null : (100 * inside) / voxels, score: voxels === 0 ? null : lobeSeverityScore((100 * inside) / voxels) });
  const perLobe = { lung_upper_lobe_left: lobe(10, 1), lung_lower_lobe_left: lobe(0, 0), lung_upper_lobe_right: lobe(8, 8), lung_middle_lobe_right: lobe(4, 0), lung_lower_lobe_right: lobe(20, 5) };
  const summary: SeveritySummary = { voxelVolumeMl: 0.5, infection: { voxels: 16, volumeMl: 8 }, lungs: null, lobes: { source: 'test', convention: '', perLobe, severityScore: null } };
  const report = srReportOf(summary, [3]);
  assert.deepEqual(report.segments, [3]);
  assert.deepEqual(report.groups.map((g) => g.trackingIdentifier), ['infection', ...LOBE_NAMES.map((name) => TRACKING_IDS[name])]);
  const codes = (index: number) => report.groups[index]!.measurements.map((m) => `${m.concept.CodingSchemeDesignator}:${m.concept.CodeValue}=${m.value}`);
  // No total: a lobe is empty (severityScore null).
  assert.deepEqual(codes(0), [`${VOLUME}=8`]);
  assert.deepEqual(codes(1), [`${VOLUME}=0.5`, `${SITE_VOLUME}=5`, `${INVOLVED}=10`, `${LOBE_SCORE}=2`]);
  assert.deepEqual(codes(2), [`${VOLUME}=0`, `${SITE_VOLUME}=0`]);
  assert.deepEqual(codes(3), [`${VOLUME}=4`, `${SITE_VOLUME}=4`, `${INVOLVED}=100`, `${LOBE_SCORE}=5`]);
  assert.deepEqual(report.groups[1]!.site, { site: { CodeValue: '45653009', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Upper lobe of lung' }, laterality: { CodeValue: '7771000', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Left' } });
  assert.equal(report.groups[4]!.site!.laterality, undefined, 'the middle lobe is unpaired');
  assert.deepEqual(report.groups[4]!.measurements.find((m) => m.concept.CodeValue === 'LOBESCORE')!.method!.CodeValue, 'PAN2020');
});

const SHAPE: [number, number, number] = [4, 6, 5];
const AFFINE: Affine = [[-0.8, 0, 0, 10], [0, -0.9, 0, 20], [0, 0, 2.5, -30], [0, 0, 0, 1]];
const DATA = Int16Array.from({ length: 120 }, (_, i) => (i * 37) % 120);
const [NZ, NY, NX] = SHAPE;
const LUNGS = Uint8Array.from({ length: 120 }, (_, i) => (i % NX < NX / 2 ? 1 : 2));
/** Lobes of the lung map: each lung split by slice (z), the right one in three. */
function lobeMasks(nz: number, ny: number, nx: number, lungs: Uint8Array): Record<LobeName, Uint8Array> {
  const rule: Record<LobeName, (z: number, left: boolean) => boolean> = {
    lung_upper_lobe_left: (z, left) => left && z >= nz / 2,
    lung_lower_lobe_left: (z, left) => left && z < nz / 2,
    lung_upper_lobe_right: (z, left) => !left && z >= (2 * nz) / 3,
    lung_middle_lobe_right: (z, left) => !left && z >= nz / 3 && z < (2 * nz) / 3,
    lung_lower_lobe_right: (z, left) => !left && z < nz / 3,
  };
  return Object.fromEntries(LOBE_NAMES.map((name) => [name, Uint8Array.from(lungs, (lung, i) => (rule[name](Math.floor(i / (ny * nx)), lung === 1) ? 1 : 0))])) as Record<LobeName, Uint8Array>;
}

const CASES: { name: string; spec: { charset?: string; text?: Record<string, string> }; labels: Record<string, number>; lungs: boolean; segments: number[] }[] = [
  { name: 'ascii', spec: {}, labels: { background: 0, infection: 1 }, lungs: true, segments: [1] },
  { name: 'jis', spec: { charset: '\\ISO 2022 IR 87', text: { PatientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう', StudyDescription: '胸部CT', ReferringPhysicianName: '佐藤^花子' } }, labels: { background: 0, 'ground glass': 1, consolidation: 2 }, lungs: false, segments: [1, 2] },
];

test('SRs on the SEGs of ASCII and Japanese sources: dciodvfy and PixelMed clean but for the explained warning, every number read back by pydicom', async (t) => {
  if (!pydicomAvailable(t) || !validatorsAvailable(t)) return;
  const written = [];
  for (const item of CASES) {
    const dir = at(item.name);
    makeDicomSeries(dir, { data: DATA, shape: SHAPE, affine: AFFINE, ...item.spec });
    const series = readDicomSeries(dir);
    const mask = Uint8Array.from(DATA, (v) => (v > 80 ? 2 : v > 40 ? 1 : 0)).map((v) => (item.segments.length === 1 ? Math.min(v, 1) : v));
    const labels = Object.entries(item.labels).filter(([, v]) => v !== 0).map(([name, value]) => ({ value, name }));
    const seg = at(`${item.name}.seg.dcm`);
    await writeDicomSeg(seg, series, mask, labels, { softwareVersion: 'lesionseg 9.9.9' });
    const summary = severitySummary({ infection: mask, voxelMl: (0.8 * 0.9 * 2.5) / 1000, ...(item.lungs ? { lungs: { labels: LUNGS, source: 'test' } } : {}), lobes: { masks: lobeMasks(NZ, NY, NX, LUNGS), source: 'test' } });
    const sr = at(`${item.name}.sr.dcm`);
    await writeSummarySr(sr, seg, summary, item.labels);
    written.push({ item, series, seg, sr, summary });
  }
  // Three JVMs at once: each spends seconds compiling PixelMed's rules, most of it on one core.
  const [instanceValidator, ...srValidator] = await Promise.all([pixelmedValidate(written[0]!.sr), ...written.map(({ sr }) => pixelmedValidate(sr, 'DicomSRValidator'))]);
  assert.deepEqual(instanceValidator!.lines, ['IOD (SOP Class) unrecognized'], 'PixelMed\'s DicomInstanceValidator (Debian 20220618) has no SR IOD: if it learns one, check what it says and update README');
  for (const [index, { item, series, seg, sr, summary }] of written.entries()) {
    const clunie = dciodvfy(sr);
    assert.ok(clunie.lines.includes('Comprehensive3DSR'), `dciodvfy did not check ${sr} as a Comprehensive 3D SR: ${clunie.lines.join(' | ')}`);
    assert.deepEqual(clunie.errors, [], `dciodvfy errors on ${item.name}`);
    assert.ok(clunie.warnings.every((line) => line === 'Warning - Unrecognized defined term <99LESIONSEG> for value 1 of attribute <Coding Scheme Designator>'), `dciodvfy warnings on ${item.name}: ${clunie.warnings.join(' | ')}`);
    const pm = srValidator[index]!;
    assert.deepEqual(pm.lines, ['Found Comprehensive3DSR IOD', 'Found Root Template TID_1500 (MeasurementReport)', 'Root Template Validation Complete', 'IOD validation complete'], `PixelMed DicomSRValidator on ${item.name}`);
    t.diagnostic(`${item.name} (${item.segments.length} infection segment(s)): dciodvfy ${clunie.errors.length} errors ${clunie.warnings.length} warnings (99LESIONSEG); PixelMed DicomSRValidator ${pm.errors.length} errors ${pm.warnings.length} warnings`);

    const read = readSrWithPydicom(sr);
    const segRef = readSegReference(seg);
    assert.equal(read.sopClass, '1.2.840.10008.5.1.4.1.1.88.34');
    assert.deepEqual([read.modality, read.charset, read.study, read.evidenceStudies], ['SR', 'ISO_IR 192', series.studyInstanceUid, [series.studyInstanceUid]]);
    assert.deepEqual(read.evidence, { [series.seriesInstanceUid]: series.instances.map((i) => i.sopInstanceUid), [segRef.seriesInstanceUid]: [segRef.sopInstanceUid] });
    assert.deepEqual(read.codingSchemes, [['99LESIONSEG', 'lesionseg measurements']]);
    assert.deepEqual([read.title, read.template, read.language, read.observerType, read.observerName, read.procedure], [['DCM', '126000'], ['DCMR', '1500'], ['RFC5646', 'en-US', 'English (United States)'], ['DCM', '121007', 'Device'], 'lesionseg', ['LN', '25045-6', 'CT unspecified body region']]);
    assert.equal(read.imageLibrary, series.instances.length);
    assert.deepEqual(read.algorithm, ['lesionseg', 'lesionseg 9.9.9']);
    for (const [keyword, value] of Object.entries(item.spec.text ?? {})) assert.equal(read.text[keyword], value, `${item.name} ${keyword}`);
    for (const group of read.groups) {
      assert.deepEqual([group.relationship, group.segClass, group.segInstance, group.segments, group.sourceSeries], ['CONTAINS', '1.2.840.10008.5.1.4.1.1.66.4', segRef.sopInstanceUid, item.segments, series.seriesInstanceUid], group.tracking);
      // Segment type: Lesion for the names here (dicom-seg SEGMENT_CODES).
      assert.deepEqual(group.finding, ['SCT', '52988006', 'Lesion']);
    }
    assert.equal(new Set(read.groups.map((g) => g.trackingUid)).size, read.groups.length, 'one tracking UID per group');
    assert.deepEqual(read.groups.find((g) => g.tracking === TRACKING_IDS.lung_lower_lobe_right)!.site, ['SCT', '90572001', 'Lower lobe of lung']);
    assert.deepEqual(read.groups.find((g) => g.tracking === TRACKING_IDS.lung_lower_lobe_right)!.laterality, ['SCT', '24028007', 'Right']);
    // One dciodvfy warning per private code: each such NUM concept and method, and the scheme's declaration.
    const privateCodes = read.groups.flatMap((g) => g.measurements.flatMap((m) => [m.concept, ...(m.method !== null ? [m.method[0]] : [])])).filter((c) => c.startsWith('99LESIONSEG')).length;
    assert.equal(clunie.warnings.length, privateCodes + 1, item.name);
    assert.equal(clunie.warnings.length, { ascii: 30, jis: 23 }[item.name], 'the counts README "### DICOM" quotes');
    const numbers = readNumbers(read);
    assert.deepEqual(numbers, expectedNumbers(summary), item.name);
    assertVoxelCounts(summary, numbers);
    assert.ok(summary.lobes!.severityScore! > 0, 'the phantom scores');
  }
});

test('predict --output-type nifti,dicom-seg,dicom-sr --summary --lungs --lobes: the SR holds the numbers of <case>.summary.json; dicom-sr alone or on NIfTI exits 2', async (t) => {
  if (!pydicomAvailable(t) || !dcm2niixAvailable(t) || !validatorsAvailable(t)) return;
  const model = fixtureUNet();
  writeTestCheckpoint(at('run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  const phantom = await readNifti(path.join(FIXTURES, 'phantom.nii.gz'));
  makeDicomSeries(at('ct'), { data: Int16Array.from(phantom.data as Int16Array), shape: phantom.shape, affine: phantom.affine });
  const [nz, ny, nx] = phantom.shape;
  const lungs = Uint8Array.from({ length: nz * ny * nx }, (_, i) => (i % nx < nx / 2 ? 1 : 2));
  const on = (data: Uint8Array) => ({ data, shape: phantom.shape, spacing: phantom.spacing, affine: phantom.affine });
  await writeNifti(at('lungs.nii.gz'), on(lungs), { datatype: 'uint8' });
  fs.mkdirSync(at('lobes'));
  for (const [name, mask] of Object.entries(lobeMasks(nz, ny, nx, lungs))) await writeNifti(at('lobes', `${name}.nii.gz`), on(mask), { datatype: 'uint8' });

  const run = await lesionseg('predict', '-m', at('run'), '-i', at('ct'), '-o', at('out'), '--no-tta', '--output-type', 'nifti,dicom-seg,dicom-sr', '--summary', '--lungs', at('lungs.nii.gz'), '--lobes', at('lobes'), '--json');
  assert.equal(run.code, 0, run.stderr);
  const record = (JSON.parse(run.stdout) as { cases: { dicomSeg: string; dicomSr: string }[] }).cases[0]!;
  assert.deepEqual([record.dicomSeg, record.dicomSr], [at('out', 'ct.seg.dcm'), at('out', 'ct.sr.dcm')]);
  const json = JSON.parse(fs.readFileSync(at('out', 'ct.summary.json'), 'utf8')) as { summary: SeveritySummary };
  const read = readSrWithPydicom(record.dicomSr);
  // The fixture model's labels lesion (1) and effusion (2) both count as infection: one ROI of both segments.
  assert.deepEqual([...new Set(read.groups.map((g) => g.segments.join(',')))], ['1,2']);
  const numbers = readNumbers(read);
  assert.deepEqual(numbers, expectedNumbers(json.summary));
  assertVoxelCounts(json.summary, numbers);
  t.diagnostic(`SR of the phantom: infection ${numbers[TRACKING_IDS.infection]![VOLUME]} ml, CT severity score ${numbers[TRACKING_IDS.infection]![TOTAL_SCORE]}, ${read.groups.length} groups`);
  assert.deepEqual(dciodvfy(record.dicomSr).errors, []);

  // dicom-sr alone asks for the summary: no nifti, no --summary, lobes only.
  const alone = await lesionseg('predict', '-m', at('run'), '-i', at('ct'), '-o', at('alone'), '--no-tta', '--output-type', 'dicom-seg,dicom-sr', '--lobes', at('lobes'));
  assert.equal(alone.code, 0, alone.stderr);
  assert.deepEqual(fs.readdirSync(at('alone')).sort(), ['ct.seg.dcm', 'ct.sr.dcm']);
  assert.deepEqual(readNumbers(readSrWithPydicom(at('alone', 'ct.sr.dcm'))), expectedNumbers({ ...json.summary, lungs: null }));

  // A model that labels only lungs leaves the report nothing to measure: refused once its labels are read, before predicting.
  const lungsOnly = tinyInferencePlan();
  lungsOnly.datasets[0]!.labels = { background: 0, 'left lung': 1, 'right lung': 2 };
  const lungModel = fixtureUNet();
  writeTestCheckpoint(at('lungs-run'), 'checkpoint_final', lungModel, TINY_CONFIG, lungsOnly);
  lungModel.dispose();
  const noInfection = await lesionseg('predict', '-m', at('lungs-run'), '-i', at('ct'), '-o', at('lungs-out'), '--output-type', 'dicom-seg,dicom-sr');
  assert.equal(noInfection.code, 2, noInfection.stderr);
  assert.match(noInfection.stderr, /--output-type dicom-sr: the model's labels \(background, left lung, right lung\) hold no infection label/);
  assert.equal(fs.existsSync(at('lungs-out')), false);

  const noSeg = await lesionseg('predict', '-m', at('missing-model'), '-i', at('ct'), '-o', at('no-seg'), '--output-type', 'nifti,dicom-sr');
  assert.equal(noSeg.code, 2, noSeg.stderr);
  assert.match(noSeg.stderr, /--output-type dicom-sr needs dicom-seg too: the report's measurements reference the SEG's segments/);
  const nifti = await lesionseg('predict', '-m', at('missing-model'), '-i', path.join(FIXTURES, 'phantom.nii.gz'), '-o', at('x.nii.gz'), '--output-type', 'nifti,dicom-sr');
  assert.equal(nifti.code, 2, nifti.stderr);
  assert.match(nifti.stderr, /--output-type dicom-sr needs a DICOM series as -i/);
  assert.equal(fs.existsSync(at('no-seg')), false);
});
