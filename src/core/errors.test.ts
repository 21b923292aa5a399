/**
 * Error messages as the CLI prints them (errorLines): one line per headline and per listed problem,
 * whatever the values in them hold. A path or a DICOM value with a newline or another control
 * character is escaped (oneLine), so that it cannot split the one line a refusal prints or forge a
 * line of a log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointError, InputError, ValidationError, errorLines, oneLine } from './errors.js';

test('oneLine escapes every C0 and C1 control character and leaves the rest', () => {
  assert.equal(oneLine('a\nb\rc\td'), 'a\\nb\\rc\\td');
  assert.equal(oneLine('\u0000\u001b[31m\u007f\u0085\u009f'), '\\u0000\\u001b[31m\\u007f\\u0085\\u009f');
  assert.equal(oneLine('Lunge rechts – 肺 / ü'), 'Lunge rechts – 肺 / ü', 'non-Latin text is not a control character');
});

test('errorLines: a file name with a newline stays on the refusal\'s one line; listed problems one line each', () => {
  const refused = new InputError('input not found', { file: '/data/a\nlesionseg: forged line.nii.gz' });
  assert.deepEqual(errorLines(refused), ['/data/a\\nlesionseg: forged line.nii.gz: input not found']);
  // The message keeps the value as it is for callers of the API.
  assert.equal(refused.message, '/data/a\nlesionseg: forged line.nii.gz: input not found');

  const validation = new ValidationError([
    { file: 'spec.json', path: 'arms.0', code: 'missing-field', message: 'no strategy' },
    { file: 'x\ny.json', path: '', code: 'validation', message: 'bad\tvalue' },
  ]);
  assert.equal(validation.message, '2 problems found:\n  - spec.json [arms.0]: no strategy\n  - x\ny.json: bad\tvalue');
  assert.deepEqual(errorLines(validation), ['2 problems found:', '  - spec.json [arms.0]: no strategy', '  - x\\ny.json: bad\\tvalue']);

  const checkpoint = new CheckpointError('cannot start \'finetune\'', { file: 'm.pth', items: ['featuresPerStage differs'] });
  assert.equal(checkpoint.message, 'm.pth: cannot start \'finetune\':\n  - featuresPerStage differs');
  assert.deepEqual(errorLines(checkpoint), ['m.pth: cannot start \'finetune\':', '  - featuresPerStage differs']);
  // Without the control characters the printed lines are the message, line for line.
  assert.equal(errorLines(checkpoint).join('\n'), checkpoint.message);
});
