/**
 * The SEG as radiology IT checks it: single- and multi-label SEGs of phantom series written by
 * Debian's pydicom (ASCII with Laterality; ISO 2022 IR 87 Japanese; GB18030 Chinese; ISO_IR 144
 * Cyrillic from a lossy source, implicit VR) go through David Clunie's dciodvfy (dicom3tools) and
 * PixelMed's DicomInstanceValidator, and are read back by pydicom:
 *   - dciodvfy: no error and no warning;
 *   - PixelMed: no error and no warning except the three README "### DICOM" explains as the
 *     validator's, not the file's (PS3.3 C.7.3.1 and PS3.5 6.1.2.3 / C.12.1.1.2): "Missing
 *     conditional attribute" Laterality (required only for a paired body part, which a chest is
 *     not; dciodvfy refuses it present, even where the source carries one), "Illegal character(s)" listing only non-ASCII characters of a UTF-8 (ISO_IR 192) value,
 *     and ISO_IR 192 as an "Unrecognized defined term" (PixelMed 20220618 predates it in its list);
 *   - pydicom decodes Patient's Name, Patient ID, Study Description, Referring Physician's Name
 *     and Accession Number of the SEG (UTF-8) to what it decodes from the source (its own charset);
 *   - a lossy source gives LossyImageCompression 01 with its ratio and method; every frame's
 *     source image reference says SpatialLocationsPreserved YES; ContentCreatorName is empty.
 * A SEG of an Enhanced CT (the same series as one multi-frame file, make_enhanced_ct.py) passes the
 * same checks, lists the one instance once, and each frame's ReferencedFrameNumber is the source
 * frame pydicom finds at the frame's ImagePositionPatient.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Affine } from '../../core/index.js';
import { writeDicomSeg } from './seg.js';
import { readDicomSeries } from './series.js';
import { readNpy } from '../dataset/npy.js';
import { checkSegWithPydicom, dciodvfy, DICOM_FIXTURES, makeDicomSeries, pixelmedValidate, pydicomAvailable, PYTHON, validatorsAvailable, type SeriesSpec, type ValidatorReport } from '../test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-seg-validate-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SHAPE: [number, number, number] = [4, 6, 5];
const AFFINE: Affine = [[-0.8, 0, 0, 10], [0, -0.9, 0, 20], [0, 0, 2.5, -30], [0, 0, 0, 1]];
const DATA = Int16Array.from({ length: 120 }, (_, i) => (i * 37) % 120);
const TEXT = ['PatientName', 'PatientID', 'StudyDescription', 'ReferringPhysicianName', 'AccessionNumber'] as const;

interface Case {
  name: string;
  spec: Partial<SeriesSpec>;
  labels: number;
  /** What the text attributes hold (the characters pydicom encoded into the source). */
  text: Partial<Record<(typeof TEXT)[number], string>>;
}

const CASES: Case[] = [
  { name: 'ascii', spec: { laterality: 'R' }, labels: 2, text: { PatientName: 'Phantom^Chest', PatientID: 'PHANTOM-001', AccessionNumber: 'ACC0001' } },
  { name: 'jis', spec: { charset: '\\ISO 2022 IR 87' }, labels: 2, text: { PatientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう', StudyDescription: '胸部CT', ReferringPhysicianName: '佐藤^花子' } },
  { name: 'gb18030', spec: { charset: 'GB18030' }, labels: 1, text: { PatientName: 'Wang^XiaoDong=王^小东', PatientID: 'ID-王-1', StudyDescription: '胸部 CT 平扫' } },
  { name: 'cyrillic-lossy', spec: { charset: 'ISO_IR 144', implicit: true, lossy: { ratio: '8.5', method: 'ISO_10918_1' } }, labels: 1, text: { PatientName: 'Иванов^Пётр', StudyDescription: 'КТ грудной клетки', AccessionNumber: 'А-17' } },
];

/** PixelMed's reports README "### DICOM" explains (see the file comment); anything else fails. */
function unexplained(report: ValidatorReport): string[] {
  return [...report.errors, ...report.warnings].filter((line) => {
    if (line === 'Error: GeneralSeriesModule/Laterality/: : Missing conditional attribute') return false;
    const illegal = /Illegal character\(s\) '(.*)' in value of (PN|LO|SH) VR/.exec(line);
    if (illegal !== null && [...illegal[1]!].every((c) => c.codePointAt(0)! > 0x7f)) return false;
    if (line === 'Warning: SOPCommonModule/SpecificCharacterSet/: SpecificCharacterSet/value[1]: Unrecognized defined term :ISO_IR 192:') return false;
    return true;
  });
}

/** pydicom's reading of a source instance and of the SEG: the text attributes and what the SEG says about lossiness, frames and creator. */
function readWithPydicom(source: string, seg: string): { source: Record<string, string>; seg: Record<string, unknown> } {
  const script = `
import json, sys, pydicom
keys = ${JSON.stringify(TEXT)}
def text(d):
    return {k: str(d.get(k, '')) for k in keys}
src, seg = pydicom.dcmread(sys.argv[1]), pydicom.dcmread(sys.argv[2])
frames = seg.PerFrameFunctionalGroupsSequence
out = text(seg)
out.update(charset=seg.SpecificCharacterSet, lossy=seg.LossyImageCompression,
  ratio=str(seg.LossyImageCompressionRatio) if 'LossyImageCompressionRatio' in seg else None,
  method=seg.get('LossyImageCompressionMethod'), creator=str(seg.ContentCreatorName), laterality=seg.get('Laterality'),
  preserved=sorted({f.DerivationImageSequence[0].SourceImageSequence[0].SpatialLocationsPreserved for f in frames}),
  algorithms=[[s.SegmentAlgorithmType, s.SegmentAlgorithmName] for s in seg.SegmentSequence])
print(json.dumps({'source': text(src), 'seg': out}, ensure_ascii=False))
`;
  return JSON.parse(execFileSync(PYTHON, ['-c', script, source, seg], { encoding: 'utf8' })) as { source: Record<string, string>; seg: Record<string, unknown> };
}

test('SEGs of ASCII, Japanese, Chinese and lossy Cyrillic sources: dciodvfy clean, PixelMed clean but for its explained reports, text decoded as in the source', async (t) => {
  if (!pydicomAvailable(t) || !validatorsAvailable(t)) return;
  const written: { item: Case; seg: string; source: string }[] = [];
  for (const item of CASES) {
    const dir = path.join(tmp, item.name);
    makeDicomSeries(dir, { data: DATA, shape: SHAPE, affine: AFFINE, ...item.spec, ...(item.text.StudyDescription !== undefined || item.spec.charset !== undefined ? { text: item.text } : {}) });
    const series = readDicomSeries(dir);
    // lesionseg's own header reader decodes the same characters.
    for (const [keyword, value] of Object.entries(item.text)) assert.equal(series.attributes[keyword as (typeof TEXT)[number]], value, `${item.name} ${keyword}`);
    const mask = Uint8Array.from(DATA, (v) => (v > 80 ? 2 : v > 40 ? 1 : 0));
    const labels = [{ value: 1, name: 'infection' }, { value: 2, name: 'effusion' }].slice(0, item.labels);
    const seg = path.join(tmp, `${item.name}.seg.dcm`);
    await writeDicomSeg(seg, series, mask, labels, { softwareVersion: 'lesionseg test' });
    written.push({ item, seg, source: series.instances[0]!.file });
  }
  // PixelMed's JVM takes seconds: two at a time.
  const pixelmed: ValidatorReport[] = [];
  for (let i = 0; i < written.length; i += 2) pixelmed.push(...await Promise.all(written.slice(i, i + 2).map(({ seg }) => pixelmedValidate(seg))));
  for (const [index, { item, seg, source }] of written.entries()) {
    const clunie = dciodvfy(seg);
    assert.ok(clunie.lines.includes('Segmentation'), `dciodvfy did not check ${seg} as a Segmentation: ${clunie.lines.join(' | ')}`);
    assert.deepEqual([...clunie.errors, ...clunie.warnings], [], `dciodvfy on ${item.name}`);
    const pm = pixelmed[index]!;
    assert.ok(pm.lines.includes('Found Segmentation IOD') && pm.lines.includes('IOD validation complete'), `PixelMed did not validate ${seg}: ${pm.lines.join(' | ')}`);
    assert.deepEqual(unexplained(pm), [], `PixelMed on ${item.name}`);
    t.diagnostic(`${item.name} (${item.labels} label${item.labels > 1 ? 's' : ''}): dciodvfy ${clunie.errors.length} errors ${clunie.warnings.length} warnings; PixelMed ${pm.errors.length} errors ${pm.warnings.length} warnings, all explained`);

    const read = readWithPydicom(source, seg);
    for (const keyword of TEXT) assert.equal(read.seg[keyword], read.source[keyword], `${item.name} ${keyword}`);
    for (const [keyword, value] of Object.entries(item.text)) assert.equal(read.seg[keyword], value, `${item.name} ${keyword}`);
    assert.equal(read.seg.charset, 'ISO_IR 192');
    assert.equal(read.seg.creator, '');
    assert.deepEqual(read.seg.preserved, ['YES']);
    assert.deepEqual(read.seg.algorithms, Array.from({ length: item.labels }, () => ['AUTOMATIC', 'lesionseg']));
    // Never copied: dciodvfy refuses Laterality where the body part is not a paired one (PS3.3 C.7.3.1).
    assert.equal(read.seg.laterality, null);
    if (item.spec.lossy !== undefined) {
      assert.deepEqual([read.seg.lossy, read.seg.ratio, read.seg.method], ['01', item.spec.lossy.ratio, item.spec.lossy.method]);
    } else {
      assert.deepEqual([read.seg.lossy, read.seg.ratio, read.seg.method], ['00', null, null]);
    }
  }
});

test('a SEG of an Enhanced CT source: each frame references its source frame by number in the one instance; dciodvfy and PixelMed clean as above; pydicom places every frame on that frame', async (t) => {
  if (!pydicomAvailable(t) || !validatorsAvailable(t)) return;
  makeDicomSeries(path.join(tmp, 'single-frame'), { data: DATA, shape: SHAPE, affine: AFFINE });
  fs.mkdirSync(path.join(tmp, 'enhanced'));
  execFileSync(PYTHON, [path.join(DICOM_FIXTURES, 'make_enhanced_ct.py'), path.join(tmp, 'single-frame'), path.join(tmp, 'enhanced', 'ct.dcm')]);
  const series = readDicomSeries(path.join(tmp, 'enhanced'));
  assert.deepEqual(series.instances.map((instance) => instance.frame), [1, 2, 3, 4]);
  // Label 1 on slices 0 and 2 only, label 2 on slices 1-3: frames skip the empty slices, so frame numbers are not frame order.
  const mask = Uint8Array.from(DATA, (v, i) => {
    const k = Math.floor(i / 30);
    return v > 80 && k >= 1 ? 2 : v > 40 && k % 2 === 0 ? 1 : 0;
  });
  const seg = path.join(tmp, 'enhanced.seg.dcm');
  await writeDicomSeg(seg, series, mask, [{ value: 1, name: 'infection' }, { value: 2, name: 'effusion' }], { softwareVersion: 'lesionseg test' });

  const clunie = dciodvfy(seg);
  assert.ok(clunie.lines.includes('Segmentation'), `dciodvfy did not check ${seg} as a Segmentation: ${clunie.lines.join(' | ')}`);
  assert.deepEqual([...clunie.errors, ...clunie.warnings], [], 'dciodvfy on the Enhanced CT SEG');
  const pm = await pixelmedValidate(seg);
  assert.ok(pm.lines.includes('Found Segmentation IOD') && pm.lines.includes('IOD validation complete'), `PixelMed did not validate ${seg}: ${pm.lines.join(' | ')}`);
  assert.deepEqual(unexplained(pm), [], 'PixelMed on the Enhanced CT SEG');
  t.diagnostic(`enhanced (2 labels): dciodvfy ${clunie.errors.length} errors ${clunie.warnings.length} warnings; PixelMed ${pm.errors.length} errors ${pm.warnings.length} warnings, all explained`);

  const check = checkSegWithPydicom(seg, path.join(tmp, 'enhanced'), path.join(tmp, 'enhanced.npy'));
  assert.deepEqual(check.referencedInstances, [series.instances[0]!.sopInstanceUid], 'the one multi-frame instance, listed once');
  // Segment 1's frames are slices 0 and 2 (frames 1 and 3), segment 2's slices 1-3 (frames 2-4).
  assert.deepEqual(check.referencedFrameNumbers, [1, 3, 2, 3, 4]);
  assert.equal(check.misplacedFrames, 0, `largest position difference ${check.maxPositionDifferenceMm} mm`);
  assert.deepEqual(Uint8Array.from(readNpy(path.join(tmp, 'enhanced.npy')).data as Uint8Array), mask);
});
