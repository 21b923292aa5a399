/**
 * The phantom's lobes: the fissure rule at points worked by hand, and on generated phantoms a
 * partition of the lung mask (every lung voxel in exactly one lobe of its own side, nothing outside
 * the lungs), all five lobes present, and the anatomy's order (upper lobes above lower ones,
 * the middle lobe in front of the right lower lobe); the lobe map written to lobesTr/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNifti } from '../io/index.js';
import { generatePhantom, LOBE_LABEL, LOBES_LABELS_FILE, LUNG_LABEL, lobeOf, splitLobes, writeSynthDataset } from './index.js';

test('lobeOf: the oblique fissure h = 0.75 - 0.6 a and the horizontal one h = 0.55, by hand', () => {
  // At the back (a = 0) the oblique fissure is at h = 0.75, at the front (a = 1) at h = 0.15.
  assert.equal(lobeOf('left', 0.76, 0), LOBE_LABEL.lung_upper_lobe_left);
  assert.equal(lobeOf('left', 0.74, 0), LOBE_LABEL.lung_lower_lobe_left);
  assert.equal(lobeOf('left', 0.16, 1), LOBE_LABEL.lung_upper_lobe_left);
  assert.equal(lobeOf('left', 0.14, 1), LOBE_LABEL.lung_lower_lobe_left);
  // Right lung, a = 0.5: oblique at h = 0.45; between 0.45 and 0.55 the middle lobe, above it the upper.
  assert.equal(lobeOf('right', 0.44, 0.5), LOBE_LABEL.lung_lower_lobe_right);
  assert.equal(lobeOf('right', 0.5, 0.5), LOBE_LABEL.lung_middle_lobe_right);
  assert.equal(lobeOf('right', 0.56, 0.5), LOBE_LABEL.lung_upper_lobe_right);
  // At the back the oblique fissure lies above the horizontal one: no middle lobe there.
  assert.equal(lobeOf('right', 0.6, 0), LOBE_LABEL.lung_lower_lobe_right);
});

test('splitLobes on a 1x3x3 grid worked by hand', () => {
  // One slice row per y; both lungs span y 0..2 (a = 0, 0.5, 1) and z 0..1 (h = 0 or 1).
  const lungs = Uint8Array.from([1, 1, 2, 1, 1, 2, 1, 1, 2, /* z = 1 */ 1, 1, 2, 1, 1, 2, 1, 1, 2]);
  const lobes = splitLobes(lungs, [2, 3, 3], [0, 1, 2], [0, 1]);
  const L = LOBE_LABEL;
  // z = 0 (h = 0): every voxel on or below the oblique fissure -> lower lobes.
  assert.deepEqual([...lobes.subarray(0, 9)], [2, 2, L.lung_lower_lobe_right, 2, 2, 5, 2, 2, 5]);
  // z = 1 (h = 1): above both fissures -> upper lobes.
  assert.deepEqual([...lobes.subarray(9)], [1, 1, L.lung_upper_lobe_right, 1, 1, 3, 1, 1, 3]);
});

test('generated phantoms: the lobes partition the lungs, all five present, in anatomical order', () => {
  for (const [kind, size, caseIndex] of [['covid', 'tiny', 0], ['effusion', 'tiny', 2], ['covid', 'small', 1]] as const) {
    const phantom = generatePhantom(kind, { seed: 11, size, caseIndex });
    const [nz, ny, nx] = phantom.lobes.shape;
    const count = new Array<number>(6).fill(0);
    const meanZ = new Array<number>(6).fill(0);
    const meanY = new Array<number>(6).fill(0);
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const n = (k * ny + j) * nx + i;
          const lobe = phantom.lobes.data[n]!;
          const lung = phantom.lungs.data[n]!;
          const expectedSide = lobe === 0 ? 0 : lobe <= 2 ? LUNG_LABEL.left : LUNG_LABEL.right;
          assert.equal(lung, expectedSide, `${kind} ${size}: voxel ${n} lung ${lung}, lobe ${lobe}`);
          count[lobe]!++;
          meanZ[lobe]! += k;
          meanY[lobe]! -= j; // the phantom's j runs toward posterior
        }
      }
    }
    for (let lobe = 1; lobe <= 5; lobe++) assert.ok(count[lobe]! > 0, `${kind} ${size}: lobe ${lobe} empty`);
    const z = (lobe: number) => meanZ[lobe]! / count[lobe]!;
    const y = (lobe: number) => meanY[lobe]! / count[lobe]!;
    assert.ok(z(LOBE_LABEL.lung_upper_lobe_left) > z(LOBE_LABEL.lung_lower_lobe_left));
    assert.ok(z(LOBE_LABEL.lung_upper_lobe_right) > z(LOBE_LABEL.lung_middle_lobe_right));
    assert.ok(z(LOBE_LABEL.lung_middle_lobe_right) > z(LOBE_LABEL.lung_lower_lobe_right) || y(LOBE_LABEL.lung_middle_lobe_right) > y(LOBE_LABEL.lung_lower_lobe_right));
    assert.ok(y(LOBE_LABEL.lung_middle_lobe_right) > y(LOBE_LABEL.lung_lower_lobe_right), 'middle lobe in front of the lower lobe');
  }
});

test('a covid dataset writes lobesTr/<case>.nii.gz (the phantom\'s lobes) and lobes.json naming them', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-lobes-'));
  try {
    await writeSynthDataset({ kind: 'covid', cases: 1, out, seed: 5, size: 'tiny' });
    const written = await readNifti(path.join(out, 'lobesTr', 'covid_000.nii.gz'));
    const phantom = generatePhantom('covid', { seed: 5, size: 'tiny', caseIndex: 0 });
    assert.deepEqual(Buffer.from(written.data as Uint8Array), Buffer.from(phantom.lobes.data));
    const names = JSON.parse(fs.readFileSync(path.join(out, LOBES_LABELS_FILE), 'utf8')) as { labels: Record<string, number> };
    assert.deepEqual(names.labels, { background: 0, ...LOBE_LABEL });
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
