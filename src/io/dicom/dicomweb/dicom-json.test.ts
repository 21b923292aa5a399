/**
 * The DICOM JSON model's readers against PS3.18 F.2's rules and PS3.5 9.1's UID syntax, on
 * hand-written data sets: PN values as objects (F.2.2), multi-valued CS, nested sequences (the
 * STOW-RS reply's shape), and the checks that refuse what is not DICOM JSON.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dicomJsonItems, dicomJsonString, dicomJsonStrings, isUid, parseDicomJsonArray, TAGS, type DicomJson } from './dicom-json.js';

const STUDY: DicomJson = {
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' }] },
  '00080061': { vr: 'CS', Value: ['CT', 'SEG'] },
  '00201208': { vr: 'IS', Value: [412] },
  '0020000D': { vr: 'UI', Value: ['1.2.840.113619.2.55.3'] },
  '00081030': { vr: 'LO' },
};

test('values as text: PN by its Alphabetic group, numbers as text, every value of a multi-valued CS, absent or empty as undefined', () => {
  assert.equal(dicomJsonString(STUDY, '00100010'), 'Yamada^Tarou');
  assert.equal(dicomJsonString(STUDY, '00201208'), '412');
  assert.equal(dicomJsonString(STUDY, TAGS.StudyInstanceUID), '1.2.840.113619.2.55.3');
  assert.equal(dicomJsonString(STUDY, '00081030'), undefined, 'present without a Value (type 2, empty)');
  assert.equal(dicomJsonString(STUDY, '00080020'), undefined, 'absent');
  assert.deepEqual(dicomJsonStrings(STUDY, '00080061'), ['CT', 'SEG']);
  assert.deepEqual(dicomJsonStrings(STUDY, '00080020'), []);
});

test('a STOW-RS reply: sequences of referenced and failed instances', () => {
  const parsed = parseDicomJsonArray(
    JSON.stringify([
      {
        [TAGS.ReferencedSOPSequence]: { vr: 'SQ', Value: [{ [TAGS.ReferencedSOPInstanceUID]: { vr: 'UI', Value: ['1.2.3'] } }] },
        [TAGS.FailedSOPSequence]: { vr: 'SQ', Value: [{ [TAGS.ReferencedSOPInstanceUID]: { vr: 'UI', Value: ['1.2.4'] }, [TAGS.FailureReason]: { vr: 'US', Value: [42752] } }] },
      },
    ]),
  );
  assert.ok('items' in parsed);
  const [reply] = parsed.items;
  assert.deepEqual(dicomJsonItems(reply!, TAGS.ReferencedSOPSequence).map((item) => dicomJsonString(item, TAGS.ReferencedSOPInstanceUID)), ['1.2.3']);
  const failed = dicomJsonItems(reply!, TAGS.FailedSOPSequence);
  assert.equal(dicomJsonString(failed[0]!, TAGS.FailureReason), '42752');
  assert.deepEqual(dicomJsonItems(reply!, '00081196'), [], 'absent sequence');
  assert.deepEqual(dicomJsonItems(STUDY, '00080061'), [], 'not a sequence');
});

test('what is not DICOM JSON is named with its place', () => {
  const problem = (text: string): string => {
    const parsed = parseDicomJsonArray(text);
    assert.ok('problem' in parsed, text);
    return parsed.problem;
  };
  assert.match(problem('[{"00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "ui"}}]}}]'), /item 1, tag 00081199 item 1, tag 00081155 has no valid "vr"/);
  assert.match(problem('[{"00081199": {"vr": "SQ", "Value": ["x"]}}]'), /item 1, tag 00081199 item 1 is not a JSON object/);
  assert.match(problem('[{}, {"0020000D": {"vr": "UI", "Value": "1.2"}}]'), /item 2, tag 0020000D's "Value" is not an array/);
  assert.match(problem('[{}, []]'), /item 2 is not a JSON object/);
  const deep = '{"00081199": {"vr": "SQ", "Value": ['.repeat(10) + '{}' + ']}}'.repeat(10);
  assert.match(problem(`[${deep}]`), /nests sequences deeper than 8/);
  assert.deepEqual(parseDicomJsonArray('[]'), { items: [] });
});

test('UIDs as PS3.5 9.1 writes them: digits and dots, no leading zero in a component, at most 64 characters', () => {
  for (const uid of ['1.2.840.10008.1.2.1', '0.1', '2.25.190426452958152049381384722390474358215', `1.${'2'.repeat(62)}`]) assert.equal(isUid(uid), true, uid);
  for (const uid of ['', '1.02', '1..2', '.1', '1.', '1.2.3/../4', '1.2 ', `1.${'2'.repeat(63)}`, '1.2.3a']) assert.equal(isUid(uid), false, uid);
});
