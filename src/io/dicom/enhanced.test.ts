/**
 * Enhanced CT frames from a header (dicom-enhanced.ts), on hand-made headers: the per-frame group
 * wins over the shared one, which wins over the top level; a frame count that the per-frame
 * functional groups do not match is refused naming the file. (Reading real Enhanced CT files,
 * compressed ones included, is tested in dicom-decode.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../core/index.js';
import type { DicomHeader } from './header.js';
import { enhancedCtFrames, ENHANCED_CT_IMAGE_STORAGE } from './enhanced.js';

function header(frames: number, perFrame: number): DicomHeader {
  return {
    file: '/data/ct.dcm',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    mediaStorageSopClassUid: ENHANCED_CT_IMAGE_STORAGE,
    hasPixelData: true,
    pixelData: { offset: 1000, length: 8 * frames },
    fileBytes: 1000 + 8 * frames,
    text: { SOPClassUID: ENHANCED_CT_IMAGE_STORAGE, Modality: 'CT' },
    numbers: { NumberOfFrames: [frames], RescaleSlope: [1], RescaleIntercept: [0] },
    functionalGroups: {
      shared: { text: {}, numbers: { RescaleIntercept: [-1024], PixelSpacing: [0.5, 0.6] } },
      perFrame: Array.from({ length: perFrame }, (_, index) => ({ text: {}, numbers: { ImagePositionPatient: [0, 0, 2 * index], ...(index === 1 ? { RescaleIntercept: [-1000] } : {}) } })),
    },
  };
}

test('each frame takes its own group, then the shared one, then the top level', () => {
  const frames = enhancedCtFrames(header(3, 3));
  assert.deepEqual(frames.map((f) => f.frame), [1, 2, 3]);
  assert.deepEqual(frames.map((f) => f.numbers.ImagePositionPatient), [[0, 0, 0], [0, 0, 2], [0, 0, 4]]);
  assert.deepEqual(frames.map((f) => f.numbers.RescaleIntercept), [[-1024], [-1000], [-1024]]);
  assert.deepEqual(frames.map((f) => f.numbers.RescaleSlope), [[1], [1], [1]]);
  assert.deepEqual(frames[2]!.numbers.PixelSpacing, [0.5, 0.6]);
});

test('NumberOfFrames that the per-frame functional groups do not match is refused naming the file', () => {
  assert.throws(() => enhancedCtFrames(header(3, 2)), (error: unknown) => {
    assert.ok(error instanceof InputError);
    assert.equal(error.file, '/data/ct.dcm');
    assert.equal(error.code, 'dicom-missing-tag');
    assert.match(error.message, /Enhanced CT image of 3 frames whose PerFrameFunctionalGroupsSequence \(5200,9230\) holds 2 items/);
    return true;
  });
});
