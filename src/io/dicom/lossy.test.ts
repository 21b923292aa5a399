/**
 * lossyCompressionOf on hand-made headers: the stated ratio and method win; a lossy transfer syntax
 * without the attribute gives its method and the decoded / stored bytes ratio (hand-computed);
 * an explicit 00, or lossless syntaxes, give null.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DicomHeader } from './header.js';
import { lossyCompressionOf } from './lossy.js';

const header = (transferSyntaxUid: string, text: DicomHeader['text'] = {}, pixel: { offset: number; length: number | null } = { offset: 900, length: null }): DicomHeader => ({
  file: 'x.dcm', transferSyntaxUid, mediaStorageSopClassUid: '1.2.840.10008.5.1.4.1.1.2', hasPixelData: true, pixelData: pixel, fileBytes: 1000, text,
  numbers: { Rows: [10], Columns: [10], BitsAllocated: [16] },
  functionalGroups: null,
});

test('a JPEG baseline series without (0028,2110) is lossy: ISO_10918_1, ratio decoded / stored bytes', () => {
  // 10 x 10 x 2 bytes = 200 decoded; 1000 - 900 = 100 stored (encapsulated, undefined length) each: 2.0.
  assert.deepEqual(lossyCompressionOf([header('1.2.840.10008.1.2.4.50'), header('1.2.840.10008.1.2.4.50')]), { ratio: ['2.0'], method: ['ISO_10918_1'] });
  // One lossy instance among lossless ones makes the series lossy; only it counts: 200 / 40 = 5.0.
  assert.deepEqual(lossyCompressionOf([header('1.2.840.10008.1.2.1'), header('1.2.840.10008.1.2.4.91', {}, { offset: 960, length: null })]), { ratio: ['5.0'], method: ['ISO_15444_1'] });
});

test('the stated ratio and method are copied; 00 or lossless syntaxes give null', () => {
  assert.deepEqual(lossyCompressionOf([header('1.2.840.10008.1.2.1', { LossyImageCompression: '01', LossyImageCompressionRatio: '10\\2.5', LossyImageCompressionMethod: 'ISO_10918_1\\ISO_15444_1' })]), { ratio: ['10', '2.5'], method: ['ISO_10918_1', 'ISO_15444_1'] });
  assert.equal(lossyCompressionOf([header('1.2.840.10008.1.2.4.91', { LossyImageCompression: '00' })]), null);
  assert.equal(lossyCompressionOf([header('1.2.840.10008.1.2.4.70'), header('1.2.840.10008.1.2.5'), header('1.2.840.10008.1.2')]), null);
});
