/**
 * dicom-sr.ts without a validator: DS text of the summary's doubles (at most 16 characters, PS3.5
 * 6.2) and the FD beside it exactly when the text rounds; the content tree's references and
 * numbers on a hand-made SEG reference; a segment the SEG lacks is refused. The validators and
 * pydicom read SRs in src/cli/dicom-sr-summary.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDicomSr, decimalString, type SegReference } from './sr.js';
import { CODES, LOBE_SITES } from './sr-codes.js';

test('decimalString: the shortest round-trip text when it fits 16 characters, else the most digits that fit', () => {
  assert.equal(decimalString(12.5), '12.5');
  assert.equal(decimalString(0), '0');
  assert.equal(decimalString(-3), '-3');
  assert.equal(decimalString(1e-7), '1e-7');
  // 4.656599946030973 (17 characters) loses its last digit.
  assert.equal(decimalString(4.656599946030973), '4.65659994603097');
  assert.equal(decimalString(1 / 3), '0.33333333333333');
  assert.equal(decimalString(-1 / 3), '-0.3333333333333');
  // 1.2345678901234568e20 prints as 21 digits: the exponent form keeps 11 significant digits.
  assert.equal(decimalString(1.2345678901234568e20), '1.2345678901e+20');
  for (const value of [Math.PI * 1e-12, 123456.78901234567, 99.99999999999999, 2 ** 53 + 2]) {
    const text = decimalString(value);
    assert.ok(text.length <= 16, text);
    assert.ok(Math.abs(Number(text) - value) <= Math.abs(value) * 1e-10, `${text} vs ${value}`);
  }
  assert.throws(() => decimalString(Number.NaN), RangeError);
});

const SEG: SegReference = {
  dataset: { StudyInstanceUID: '1.2.3', PatientName: 'Doe^Jane', PatientID: 'P1', SeriesNumber: 1005, StudyDescription: 'chest' },
  sopInstanceUid: '1.2.3.4.5',
  seriesInstanceUid: '1.2.3.4',
  sourceSeriesUid: '1.2.3.9',
  sourceInstances: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUid: '1.2.3.9.1' }, { sopClassUid: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUid: '1.2.3.9.2' }],
  segments: new Map([[1, { label: 'lesion', type: { CodeValue: '52988006', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Lesion' } }], [2, { label: 'effusion', type: { CodeValue: '60046008', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Pleural effusion' } }]]),
  softwareVersion: 'lesionseg 1.0',
};

type Node = Record<string, any>;
const named = (items: Node[], code: string): Node[] => items.filter((item) => item.ConceptNameCodeSequence?.[0]?.CodeValue === code);

test('buildDicomSr: study, evidence, one group per region with the SEG reference, NUM as DS plus FD only where DS rounds', () => {
  const sr = buildDicomSr(SEG, {
    segments: [1, 2],
    groups: [{ trackingIdentifier: 'infection in left upper lobe', site: LOBE_SITES.lung_upper_lobe_left, measurements: [
      { concept: CODES.volume, units: CODES.milliliter, value: 12.5 },
      { concept: CODES.percentInvolved, units: CODES.percent, value: 100 / 3 },
      { concept: CODES.lobeSeverityScore, units: CODES.noUnits, value: 3, method: CODES.panMethod },
    ] }],
  }, { seriesInstanceUid: '9.9', sopInstanceUid: '9.9.1' }) as Node;
  assert.deepEqual([sr.StudyInstanceUID, sr.PatientName, sr.StudyDescription, sr.SeriesNumber, sr.Modality, sr.SOPClassUID], ['1.2.3', 'Doe^Jane', 'chest', 1006, 'SR', '1.2.840.10008.5.1.4.1.1.88.34']);
  const evidence = sr.CurrentRequestedProcedureEvidenceSequence[0];
  assert.equal(evidence.StudyInstanceUID, '1.2.3');
  assert.deepEqual(evidence.ReferencedSeriesSequence.map((s: Node) => [s.SeriesInstanceUID, s.ReferencedSOPSequence.map((r: Node) => r.ReferencedSOPInstanceUID)]), [['1.2.3.9', ['1.2.3.9.1', '1.2.3.9.2']], ['1.2.3.4', ['1.2.3.4.5']]]);
  const measurements = named(sr.ContentSequence, '126010')[0]!.ContentSequence as Node[];
  const group = named(measurements, '125007')[0]!.ContentSequence as Node[];
  assert.equal(named(group, '112039')[0]!.TextValue, 'infection in left upper lobe');
  // Two segments of different types: the finding is Lesion; one Referenced Segment item lists both.
  assert.equal(named(group, '121071')[0]!.ConceptCodeSequence[0].CodeValue, '52988006');
  assert.deepEqual(named(group, '121191')[0]!.ReferencedSOPSequence[0], { ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.66.4', ReferencedSOPInstanceUID: '1.2.3.4.5', ReferencedSegmentNumber: [1, 2] });
  assert.equal(named(group, '121232')[0]!.UID, '1.2.3.9');
  const site = named(group, '363698007')[0]!;
  assert.deepEqual([site.ConceptCodeSequence[0].CodeValue, site.ContentSequence[0].ConceptCodeSequence[0].CodeValue], ['45653009', '7771000']);
  const numbers = group.filter((item) => item.ValueType === 'NUM').map((item) => item.MeasuredValueSequence[0]);
  assert.deepEqual(numbers.map((m: Node) => [m.NumericValue, m.FloatingPointValue, m.MeasurementUnitsCodeSequence[0].CodeValue]), [['12.5', undefined, 'ml'], ['33.3333333333333', 100 / 3, '%'], ['3', undefined, '1']]);
  assert.equal(named(group.filter((item) => item.ValueType === 'NUM')[2]!.ContentSequence, '370129005')[0]!.ConceptCodeSequence[0].CodeValue, 'PAN2020');
  assert.throws(() => buildDicomSr(SEG, { segments: [3], groups: [] }), /the SEG has no segment 3 \(it has 1, 2\)/);
});
