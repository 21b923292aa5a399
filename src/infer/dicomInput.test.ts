/**
 * dicomCaseId: the output name of a series chosen in a folder. One series: the folder's name (as
 * before); several: `_series<SeriesNumber>`, or `_uid<last 12 digits of the UID>` when the number
 * is missing or two series share it, so that each `--series` run into one `-o` writes its own files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DicomSeries, DicomSeriesSummary } from '../io/index.js';
import { dicomCaseId } from './dicomInput.js';

const summary = (seriesInstanceUid: string, seriesNumber: number | null): DicomSeriesSummary => ({ seriesInstanceUid, seriesNumber, description: '', modality: 'CT', instances: 3 });
const series = (seriesInstanceUid: string, seriesNumber: number | null): DicomSeries => ({ seriesInstanceUid, seriesNumber }) as DicomSeries;

test('one series keeps the folder name; among several the SeriesNumber, or the UID tail when the number is missing or shared', () => {
  assert.equal(dicomCaseId('Chest CT (2024)', series('1.2.3', 3), [summary('1.2.3', 3)]), 'Chest_CT_2024_');
  const two = [summary('1.2.840.99.1234567890123', 3), summary('1.2.840.99.1234567890124', 4)];
  assert.equal(dicomCaseId('ct', series('1.2.840.99.1234567890124', 4), two), 'ct_series4');
  // Digits of 1.2.840.99.1234567890124 without dots: 12840991234567890124, the last 12: 234567890124.
  const shared = [summary('1.2.840.99.1234567890123', 3), summary('1.2.840.99.1234567890124', 3)];
  assert.equal(dicomCaseId('ct', series('1.2.840.99.1234567890124', 3), shared), 'ct_uid234567890124');
  assert.equal(dicomCaseId('ct', series('1.2.840.99.1234567890123', null), [summary('1.2.840.99.1234567890123', null), summary('1.2.9', 1)]), 'ct_uid234567890123');
});
