/**
 * Numbers in prose come from files (STYLE rule 19): the README's demo table is exactly what
 * `lesionseg demo` prints from the committed results/demo/results.json (scripts/record-demo.sh
 * wrote both), so editing one without the other fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StudyResults } from '../experiments/index.js';
import { shortTable } from './experiment-commands.js';
import { ROOT } from './test-support.js';

test('the README demo table equals the table printed from results/demo/results.json', () => {
  const results = JSON.parse(fs.readFileSync(path.join(ROOT, 'results', 'demo', 'results.json'), 'utf8')) as StudyResults;
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- demo-table: results\/demo\/results\.json -->\n\s*```\n([\s\S]*?)\n\s*```/.exec(readme);
  assert.ok(block, 'the README has the marked demo table');
  const quoted = block[1]!.split('\n').map((line) => line.replace(/^ {2}/, ''));
  assert.deepEqual(quoted, shortTable(results).split('\n'));
  assert.ok(results.hardware !== undefined && readme.includes(results.hardware.model), 'the README names the CPU results.json was measured on');
  const recorded = fs.readFileSync(path.join(ROOT, 'results', 'demo', 'README.md'), 'utf8');
  assert.ok(recorded.includes(shortTable(results)), 'results/demo/README.md holds the same table');
});
