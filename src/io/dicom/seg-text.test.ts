/**
 * Label names and descriptions from outside in a DICOM SEG: a backslash (LO's value delimiter,
 * PS3.5 6.2) must not turn one segment label into two values, nor a control character into
 * another line. Read back by Debian's pydicom (check_seg.py): one label each, as dicomText wrote it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { writeDicomSeg } from './seg.js';
import { readDicomSeries } from './series.js';
import { checkSegWithPydicom, makeDicomSeries, pydicomAvailable, PYTHON } from '../test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-seg-text-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a backslash in a label name stays one SegmentLabel value (pydicom reads one string, not two)', async (t) => {
  if (!pydicomAvailable(t)) return;
  const shape: [number, number, number] = [3, 4, 5];
  const data = Int16Array.from({ length: 60 }, (_, i) => i);
  const dir = path.join(tmp, 'series');
  makeDicomSeries(dir, { data, shape, affine: [[-0.8, 0, 0, 10], [0, -0.9, 0, 20], [0, 0, 2.5, -30], [0, 0, 0, 1]] });
  const series = readDicomSeries(dir);
  const mask = Uint8Array.from(data, (v) => (v > 40 ? 2 : v > 20 ? 1 : 0));
  const seg = path.join(tmp, 'out.seg.dcm');
  const labels = [{ value: 1, name: 'GGO\\consolidation' }, { value: 2, name: '=1+1\nnext' }];
  await writeDicomSeg(seg, series, mask, labels, { softwareVersion: 'v1\\v2', seriesDescription: 'a\\b' });
  const check = checkSegWithPydicom(seg, dir, path.join(tmp, 'volume.npy'));
  assert.deepEqual(check.segments.map((s) => s.label), ['GGO/consolidation', '=1+1 next']);
  const printed = execFileSync(PYTHON, ['-c', 'import pydicom,sys,json; d=pydicom.dcmread(sys.argv[1]); print(json.dumps([d.SeriesDescription, d.SoftwareVersions, d["SoftwareVersions"].VM]))', seg], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(printed), ['a/b', 'v1/v2', 1]);
});
