/**
 * Regenerated reference phantoms against the values make_synth_fixtures.py measured on them with
 * numpy / scipy / nibabel: identical bytes (a golden lock on the generator), nibabel's orientation
 * codes, world centroids through the affine, connected components and tissue medians.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { generatePhantom, TISSUE, type LesionKind, type IntensityConvention, type TissueName } from './index.js';
import { componentSizes, neighbours6, percentile, sha256, valuesWhere, worldCentroid } from './test-support.js';

interface PhantomReference {
  name: string;
  kind: LesionKind;
  seed: number;
  caseIndex: number;
  intensity: IntensityConvention;
  axcodes: string[];
  sha256: { image: string; label: string; lungs: string; tissues: string };
  lungVoxels: { left: number; right: number };
  lungCentroidMm: { left: number[]; right: number[] };
  labelVoxels: number;
  labelVolumeMl: number;
  labelCentroidMm: number[];
  componentCount: number;
  componentVoxels: number[];
  labelInLung: { left: number; right: number };
  labelNextToMediastinum: number;
  tissueMedianValue: Partial<Record<TissueName, number>>;
}

const reference = JSON.parse(fs.readFileSync(new URL('../../test/fixtures/synth/synth_reference.json', import.meta.url), 'utf8')) as {
  phantoms: PhantomReference[];
};

function assertClose(actual: readonly number[], expected: readonly number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, n) => assert.ok(Math.abs(v - expected[n]!) <= tolerance, `${what}[${n}]: ${v} vs ${expected[n]}`));
}

test('reference phantoms match the numpy / scipy / nibabel measurements', () => {
  assert.equal(reference.phantoms.length, 5);
  for (const ref of reference.phantoms) {
    const p = generatePhantom(ref.kind, { seed: ref.seed, size: 'tiny', caseIndex: ref.caseIndex, intensity: ref.intensity });
    const what = ref.name;
    assert.equal(sha256(p.image.data), ref.sha256.image, `${what}: image bytes changed (regenerate the fixture if GENERATOR_VERSION was bumped)`);
    assert.equal(sha256(p.label.data), ref.sha256.label, `${what}: label bytes`);
    assert.equal(sha256(p.lungs.data), ref.sha256.lungs, `${what}: lung bytes`);
    assert.equal(sha256(p.tissues.data), ref.sha256.tissues, `${what}: tissue bytes`);
    // nibabel reads our affine as L, P, S storage order.
    assert.deepEqual(ref.axcodes, ['L', 'P', 'S']);
    const { shape, affine } = p.image;
    const lungs = p.lungs.data;
    const label = p.label.data;
    assert.equal(valuesWhere(lungs, (n) => lungs[n] === 1).length, ref.lungVoxels.left);
    assert.equal(valuesWhere(lungs, (n) => lungs[n] === 2).length, ref.lungVoxels.right);
    assertClose(worldCentroid(shape, affine, (n) => lungs[n] === 1)!, ref.lungCentroidMm.left, 1e-6, `${what} left centroid`);
    assertClose(worldCentroid(shape, affine, (n) => lungs[n] === 2)!, ref.lungCentroidMm.right, 1e-6, `${what} right centroid`);
    assert.ok(ref.lungCentroidMm.left[0]! < 0 && ref.lungCentroidMm.right[0]! > 0, 'RAS: patient left at x < 0');
    assert.equal(valuesWhere(label, (n) => label[n] === 1).length, ref.labelVoxels);
    assert.ok(Math.abs(p.meta.lesionVolumeMl - ref.labelVolumeMl) < 1e-3, `${what} label volume ${p.meta.lesionVolumeMl} vs ${ref.labelVolumeMl}`);
    assertClose(worldCentroid(shape, affine, (n) => label[n] === 1)!, ref.labelCentroidMm, 1e-6, `${what} label centroid`);
    assert.deepEqual(componentSizes(shape, label), ref.componentVoxels, `${what}: 6-connected components (scipy.ndimage.label)`);
    assert.equal(ref.componentVoxels.length, ref.componentCount);
    assert.equal(valuesWhere(label, (n) => label[n] === 1 && lungs[n] === 1).length, ref.labelInLung.left);
    assert.equal(valuesWhere(label, (n) => label[n] === 1 && lungs[n] === 2).length, ref.labelInLung.right);
    const nextToMediastinum = valuesWhere(label, (n) => {
      if (label[n] !== 1) return false;
      return p.tissues.data[n] === TISSUE.mediastinum || neighbours6(n, ...shape).some((m) => p.tissues.data[m] === TISSUE.mediastinum);
    }).length;
    assert.equal(nextToMediastinum, ref.labelNextToMediastinum, `${what}: label voxels next to the mediastinum`);
    for (const [name, median] of Object.entries(ref.tissueMedianValue) as [TissueName, number][]) {
      const values = valuesWhere(p.image.data, (n) => p.tissues.data[n] === TISSUE[name]);
      assert.equal(percentile(values, 50), median, `${what}: median of ${name}`);
    }
  }
});

test('reference cases have the properties the kinds promise', () => {
  const byName = new Map(reference.phantoms.map((r) => [r.name, r]));
  const covid = byName.get('covid_s3_c0')!;
  assert.ok(covid.labelInLung.left > 0 && covid.labelInLung.right > 0, 'covid is bilateral');
  assert.equal(covid.labelInLung.left + covid.labelInLung.right, covid.labelVoxels, 'covid is inside the lungs');
  const gtv = byName.get('gtv_s5')!;
  const tumor = byName.get('tumor_s5')!;
  assert.ok(gtv.labelVoxels > 2 * tumor.labelVoxels, 'GTV larger than the tumour');
  assert.ok(gtv.labelNextToMediastinum > 0, 'GTV touches the mediastinum');
  const effusion = byName.get('effusion_s5')!;
  assert.equal(effusion.labelInLung.left + effusion.labelInLung.right, 0, 'effusion is outside the lung mask');
  assert.ok(effusion.tissueMedianValue.fluid! >= 0 && effusion.tissueMedianValue.fluid! <= 20);
});
