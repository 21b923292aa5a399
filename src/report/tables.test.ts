/** Tables 1-3 from the hand-made study of test/fixtures/report (numpy-computed summaries; best cells listed by the fixture script). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { StudyResults } from '../experiments/index.js';
import { studyTables, tableCsv, tableMarkdown, type StudyTable } from './tables.js';

const fixtures = new URL('../../test/fixtures/report/', import.meta.url);
const results = JSON.parse(fs.readFileSync(new URL('study/results.json', fixtures), 'utf8')) as StudyResults;
const expectedBest = JSON.parse(fs.readFileSync(new URL('expected_tables.json', fixtures), 'utf8')) as Record<string, string[]>;

function bestByColumn(table: StudyTable): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  table.columns.forEach((column, c) => {
    const key = column.summary ? `${column.csvKey}_mean` : column.csvKey;
    out[key] = table.rows.filter((row) => row.cells[c]!.best).map((row) => `${row.pretrained}/${row.strategy}`).sort();
  });
  return out;
}

test('the three tables have the paper\'s columns and rows', () => {
  const [t1, t2, t3] = studyTables(results) as [StudyTable, StudyTable, StudyTable];
  assert.deepEqual(t1.columns.map((c) => c.header), ['DSC fold 0', 'DSC fold 1', 'DSC mean +/- std', 'NSD fold 0', 'NSD fold 1', 'NSD mean +/- std']);
  assert.deepEqual(t2.columns.map((c) => c.header), ['Sensitivity mean +/- std', 'F1 (of means) mean +/- std', 'Accuracy mean +/- std']);
  assert.deepEqual(t3.columns.map((c) => c.csvKey), ['dsc_fold0', 'dsc_fold1', 'dsc', 'nsd_fold0', 'nsd_fold1', 'nsd', 'sensitivity_fold0', 'sensitivity_fold1', 'sensitivity', 'secondsPerEpoch_fold0', 'secondsPerEpoch_fold1', 'secondsPerEpoch']);
  assert.equal(t1.rows.length, 3);
  assert.deepEqual(t3.rows.map((r) => r.strategy), ['scratch', 'continual', 'hybrid']);
  const hybrid = results.arms[2]!;
  const cell = t1.rows[2]!.cells[2]!;
  assert.equal(cell.mean, hybrid.summary.dsc.mean);
  assert.equal(cell.std, hybrid.summary.dsc.std);
  assert.equal(t1.rows[2]!.cells[0]!.mean, hybrid.folds[0]!.metrics.dsc);
});

test('the best value of every column is marked (highest; lowest seconds per epoch), as the fixture script says', () => {
  for (const table of studyTables(results)) {
    for (const [key, arms] of Object.entries(bestByColumn(table))) assert.deepEqual(arms, expectedBest[key], `${table.id} ${key}`);
  }
});

test('Markdown bolds the best cells and CSV keeps numbers, naming the best columns', () => {
  const [t1, , t3] = studyTables(results) as [StudyTable, StudyTable, StudyTable];
  const markdown = tableMarkdown(t1);
  const hybrid = results.arms[2]!;
  assert.ok(markdown.includes(`**${hybrid.folds[0]!.metrics.dsc!.toFixed(4)}**`), markdown);
  assert.match(markdown, /\| Hybrid-encoder Learning \| multi-lesion \|/);
  assert.match(markdown, /\| From scratch \| - \|/);
  const continual = results.arms[1]!;
  assert.ok(markdown.includes(`**${continual.summary.dsc.mean!.toFixed(4)} +/- ${continual.summary.dsc.std!.toFixed(4)}**`));
  const csv = tableCsv(t3).trim().split('\n');
  assert.equal(csv[0], 'strategy,pretrained,dsc_fold0,dsc_fold1,dsc_mean,dsc_std,nsd_fold0,nsd_fold1,nsd_mean,nsd_std,sensitivity_fold0,sensitivity_fold1,sensitivity_mean,sensitivity_std,secondsPerEpoch_fold0,secondsPerEpoch_fold1,secondsPerEpoch_mean,secondsPerEpoch_std,best');
  const scratch = csv[1]!.split(',');
  assert.equal(scratch[0], 'scratch');
  assert.equal(Number(scratch[16]), results.arms[0]!.summary.secondsPerEpoch.mean);
  assert.equal(scratch.at(-1), 'secondsPerEpoch_fold0;secondsPerEpoch_fold1;secondsPerEpoch_mean');
});

test('a single arm marks nothing best, and missing values print as n/a', () => {
  const one: StudyResults = { ...results, arms: [{ ...results.arms[0]!, summary: { ...results.arms[0]!.summary, nsd: { mean: null, std: null, n: 0 } } }] };
  const [t1] = studyTables(one) as [StudyTable];
  assert.ok(t1.rows[0]!.cells.every((c) => !c.best));
  assert.match(tableMarkdown(t1), /\| n\/a \|/);
});
