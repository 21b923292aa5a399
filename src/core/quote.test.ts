/**
 * The quoting functions, each against its target's own reader: shellQuote against bash, csvText
 * by hand (the CSV writers against Python's csv module: src/eval/csv-injection.test.ts), dicomText by hand from
 * PS3.5 6.2 (LO: no backslash, 64 characters; LT keeps CR/LF). The SEG read back by pydicom is in
 * src/io/dicom/seg-text.test.ts; sbatchQuote against sbatch in src/experiments/slurm-quoting.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { controlCharacterIn, controlCharacterIssues, csvText, dicomText, shellQuote } from './quote.js';

test('csvText: formula leads get a quote prefix, then RFC 4180 quoting (hand-computed)', () => {
  assert.equal(csvText('=1+1'), "'=1+1");
  assert.equal(csvText('-2+3'), "'-2+3");
  assert.equal(csvText('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvText('\tx'), "'\tx");
  assert.equal(csvText('\rx'), `"'\rx"`);
  assert.equal(csvText('=HYPERLINK("http://x","a,b")'), `"'=HYPERLINK(""http://x"",""a,b"")"`);
  assert.equal(csvText('a,b'), '"a,b"');
  assert.equal(csvText('plain'), 'plain');
  assert.equal(csvText('case_001'), 'case_001');
});

test('dicomText: one LO value without backslash or control characters, cut at 64 characters; LT keeps line breaks', () => {
  assert.equal(dicomText('GGO\\consolidation', 'LO'), 'GGO/consolidation');
  assert.equal(dicomText('a\nb\u0000c', 'LO'), 'a b c');
  assert.equal(dicomText('x'.repeat(70), 'LO').length, 64);
  assert.equal(dicomText('é'.repeat(70), 'LO'), 'é'.repeat(64), 'characters, not bytes (ISO_IR 192)');
  assert.equal(dicomText('abcdefghijklmnopq', 'SH'), 'abcdefghijklmnop');
  assert.equal(dicomText('a\r\nb\\c\u0007', 'LT'), 'a\r\nb\\c ');
});

test('shellQuote: bash reads each quoted word back exactly; control characters are refused', () => {
  const words = ['plain', 'a b', "it's", '$(id)', '`id`', '"x"', 'a;b', '\\', '#c', '', '*'];
  const run = spawnSync('bash', ['-c', `printf '<%s>\\n' ${words.map(shellQuote).join(' ')}`], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, words.map((w) => `<${w}>\n`).join(''));
  assert.throws(() => shellQuote('a\nb'), /control character U\+000A/);
});

test('controlCharacterIssues: every string and key of a JSON value, by path', () => {
  assert.equal(controlCharacterIn('tab\there'), 'U+0009');
  assert.equal(controlCharacterIn('é ü'), null);
  const issues = controlCharacterIssues({ a: ['ok', 'x\ny'], 'k\u007f': 1, b: { c: '\u009b' } });
  assert.deepEqual(issues.map((i) => i.path), ['a.1', 'k\u007f', 'b.c']);
});
