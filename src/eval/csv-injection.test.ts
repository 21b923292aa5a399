/**
 * CSV injection (OWASP): case ids that a spreadsheet would run as formulas (= + - @, tab, CR) and
 * cells with commas, quotes and line breaks, written by the CSV writers through core's csvText and
 * read back by Python's csv module (RFC 4180): one row per case, each id one cell, prefixed with '
 * where it led with a formula character.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { severitySummaryCsv, type SeveritySummary } from './severity.js';

const HOSTILE = ['=1+1', '+cmd', '-2+3', '@SUM(A1)', '\tx', '\rx', '=HYPERLINK("http://x","a,b")', 'a,b', 'say "hi"', 'plain', '', "it's", 'a\\b', 'line\nbreak'];

test('Python\'s csv module reads each cell back as one cell: the text, with the prefix where it was a formula', (t) => {
  const rows = HOSTILE.map((caseId) => ({ caseId, summary: { infection: { volumeMl: 1.5 }, lungs: null, lobes: null } as unknown as SeveritySummary }));
  const text = severitySummaryCsv(rows);
  const read = spawnSync('/usr/bin/python3', ['-c', 'import csv,io,json,sys; print(json.dumps([r[:2] for r in csv.reader(io.StringIO(sys.stdin.read(), newline=""))]))'], { input: text, encoding: 'utf8' });
  if (read.error !== undefined) {
    if (process.env.CI === 'true') assert.fail(String(read.error));
    return t.skip('no /usr/bin/python3');
  }
  assert.equal(read.status, 0, read.stderr);
  const parsed = JSON.parse(read.stdout) as string[][];
  assert.equal(parsed.length, HOSTILE.length + 1, 'one row per case: no cell split a row');
  HOSTILE.forEach((caseId, i) => {
    const expected = /^[=+\-@\t\r]/.test(caseId) ? `'${caseId}` : caseId;
    assert.deepEqual(parsed[i + 1], [expected, '1.500'], `row of ${JSON.stringify(caseId)}`);
  });
});

