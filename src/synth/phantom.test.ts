/**
 * Properties of generated phantoms: tissue HU ranges, lesion sizes and positions per kind, lung
 * sides through the affine, determinism, and the Radiopaedia convention.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePhantom, huToRadiopaedia, radiopaediaToHu, TISSUE, type LesionKind, type Phantom, type TissueName } from './index.js';
import { componentSizes, neighbours6, percentile, valuesWhere, worldCentroid } from './test-support.js';

const SEEDS = [0, 1, 2, 3, 4, 5];
const cache = new Map<string, Phantom>();
function phantom(kind: LesionKind, seed: number): Phantom {
  const key = `${kind}:${seed}`;
  let p = cache.get(key);
  if (p === undefined) {
    p = generatePhantom(kind, { seed, size: 'tiny' });
    cache.set(key, p);
  }
  return p;
}

const voxelMl = (p: Phantom): number => p.image.spacing.reduce((a, b) => a * b, 1) / 1000;
const equivalentDiameterMm = (ml: number): number => Math.cbrt((6 * ml * 1000) / Math.PI);

/** Median HU of each healthy tissue must lie in its range; the middle half within it +- margin. */
const TISSUE_RANGES: Partial<Record<TissueName, [number, number]>> = {
  air: [-1010, -990],
  fat: [-100, -50],
  muscle: [20, 60],
  bone: [300, 1200],
  mediastinum: [30, 60],
  heart: [30, 60],
  lung: [-900, -700],
  abdomen: [20, 70],
  airway: [-1024, -900],
};

test('healthy tissues have their HU ranges (tiny and small)', () => {
  const cases = [phantom('covid', 0), phantom('tumor', 1), phantom('effusion', 2), generatePhantom('gtv', { seed: 3, size: 'small' })];
  for (const p of cases) {
    for (const [name, [low, high]] of Object.entries(TISSUE_RANGES) as [TissueName, [number, number]][]) {
      const code = TISSUE[name];
      const values = valuesWhere(p.image.data, (n) => p.tissues.data[n] === code);
      assert.ok(values.length > 10, `${name}: only ${values.length} voxels`);
      const median = percentile(values, 50);
      assert.ok(median >= low && median <= high, `${p.meta.kind}/${p.meta.size} ${name}: median ${median} outside [${low}, ${high}]`);
      // Blur mixes neighbours at borders (most voxels of thin layers at tiny size): loose quartiles.
      const margin = 40;
      const q1 = percentile(values, 25);
      const q3 = percentile(values, 75);
      assert.ok(q1 >= low - margin && q3 <= high + margin, `${p.meta.kind} ${name}: quartiles [${q1}, ${q3}] vs [${low}, ${high}]`);
    }
    const lung = percentile(valuesWhere(p.image.data, (n) => p.tissues.data[n] === TISSUE.lung), 50);
    const vessel = percentile(valuesWhere(p.image.data, (n) => p.tissues.data[n] === TISSUE.vessel), 50);
    assert.ok(vessel > lung + 300, `vessels (median ${vessel}) must stand out of lung (${lung})`);
  }
});

test('lesion HU per kind', () => {
  const ranges: Record<LesionKind, [number, number]> = { covid: [-700, -250], tumor: [0, 60], gtv: [0, 60], effusion: [0, 20] };
  for (const kind of ['covid', 'tumor', 'gtv', 'effusion'] as const) {
    for (const seed of SEEDS.slice(0, 3)) {
      // Solid lesions: interior voxels of 'small' phantoms (a 1.5 cm nodule has no interior at
      // tiny's 10 mm slices, and the z blur mixes its rim with lung).
      const p = kind === 'tumor' || kind === 'gtv' ? generatePhantom(kind, { seed, size: 'small' }) : phantom(kind, seed);
      const { data: label, shape } = p.label;
      const interior = (n: number): boolean => label[n] === 1 && (kind === 'covid' || neighbours6(n, ...shape).every((m) => label[m] === 1));
      const values = valuesWhere(p.image.data, interior);
      assert.ok(values.length >= 3, `${kind} seed ${seed}: ${values.length} interior voxels`);
      const median = percentile(values, 50);
      const [low, high] = ranges[kind];
      assert.ok(median >= low && median <= high, `${kind} seed ${seed}: lesion median ${median} outside [${low}, ${high}]`);
    }
  }
  // Some COVID lesions are consolidated: voxels in -100..40 exist.
  const consolidated = SEEDS.some((seed) => {
    const p = phantom('covid', seed);
    return valuesWhere(p.image.data, (n) => p.label.data[n] === 1 && p.tissues.data[n] === TISSUE.lesion).some((v) => v > -100 && v < 40);
  });
  assert.ok(consolidated);
});

test('left lung (label 1) is on the patient left: world x < 0 in RAS; right lung at x > 0', () => {
  for (const seed of SEEDS) {
    const p = phantom('tumor', seed);
    const left = worldCentroid(p.lungs.shape, p.lungs.affine, (n) => p.lungs.data[n] === 1)!;
    const right = worldCentroid(p.lungs.shape, p.lungs.affine, (n) => p.lungs.data[n] === 2)!;
    assert.ok(left[0] < -40, `left lung centroid x ${left[0]}`);
    assert.ok(right[0] > 40, `right lung centroid x ${right[0]}`);
    assert.ok(p.meta.lungVolumeMl.left > 800 && p.meta.lungVolumeMl.right > 800);
  }
});

test('covid: bilateral, inside the lungs, mostly peripheral and basal', () => {
  let basal = 0;
  let peripheralLesion = 0;
  let peripheralLung = 0;
  for (const seed of SEEDS) {
    const p = phantom('covid', seed);
    const { data: label } = p.label;
    const { data: lungs } = p.lungs;
    let inLeft = 0;
    let inRight = 0;
    for (let n = 0; n < label.length; n++) {
      if (label[n] !== 1) continue;
      assert.notEqual(lungs[n], 0, `seed ${seed}: infection outside the lungs at ${n}`);
      if (lungs[n] === 1) inLeft++;
      else inRight++;
    }
    assert.ok(inLeft > 0 && inRight > 0, `seed ${seed}: not bilateral (${inLeft} left, ${inRight} right)`);
    assert.ok(p.meta.lesionCount >= 3 && p.meta.lesionCount <= 8);
    const lesionZ = worldCentroid(p.label.shape, p.label.affine, (n) => label[n] === 1)![2];
    const lungZ = worldCentroid(p.lungs.shape, p.lungs.affine, (n) => lungs[n] !== 0)![2];
    if (lesionZ < lungZ) basal++;
    // Subpleural band: lung voxels within ~20 mm (in-plane steps) of non-lung.
    const band = inPlaneBoundaryBand(p, Math.ceil(20 / p.image.spacing[1]));
    let lesionInBand = 0;
    let lungInBand = 0;
    let lungCount = 0;
    let lesionCount = 0;
    for (let n = 0; n < label.length; n++) {
      if (lungs[n] === 0) continue;
      lungCount++;
      lungInBand += band[n]!;
      if (label[n] === 1) {
        lesionCount++;
        lesionInBand += band[n]!;
      }
    }
    peripheralLesion += lesionInBand / lesionCount;
    peripheralLung += lungInBand / lungCount;
  }
  assert.ok(basal >= 4, `infection below the lung centroid in only ${basal} of ${SEEDS.length} cases`);
  assert.ok(peripheralLesion / SEEDS.length > 0.5, `mean subpleural fraction of infection ${peripheralLesion / SEEDS.length}`);
  assert.ok(peripheralLesion > peripheralLung, `infection (${peripheralLesion}) not more subpleural than lung (${peripheralLung})`);
});

test('tumor: one lobulated nodule of 1-5 cm inside a lung', () => {
  for (const seed of SEEDS) {
    const p = phantom('tumor', seed);
    const components = componentSizes(p.label.shape, p.label.data);
    assert.equal(components.length, 1, `seed ${seed}: ${components.length} components`);
    const diameter = equivalentDiameterMm(components[0]! * voxelMl(p));
    assert.ok(diameter >= 10 && diameter <= 50, `seed ${seed}: equivalent diameter ${diameter} mm`);
    for (let n = 0; n < p.label.data.length; n++) if (p.label.data[n] === 1) assert.notEqual(p.lungs.data[n], 0);
  }
});

test('gtv: a larger central mass at the hilum that touches the mediastinum', () => {
  for (const seed of SEEDS) {
    const p = phantom('gtv', seed);
    const { data: label, shape } = p.label;
    const diameter = equivalentDiameterMm(valuesWhere(label, (n) => label[n] === 1).length * voxelMl(p));
    assert.ok(diameter >= 35 && diameter <= 95, `seed ${seed}: equivalent diameter ${diameter} mm`);
    const centroid = worldCentroid(shape, p.label.affine, (n) => label[n] === 1)!;
    const side = p.meta.lesions[0]!.side;
    const hilum = p.meta.hilumMm[side];
    const distance = Math.hypot(centroid[0] - hilum[0], centroid[1] - hilum[1], centroid[2] - hilum[2]);
    assert.ok(distance < 45, `seed ${seed}: GTV centroid ${distance} mm from the hilum`);
    const lung = worldCentroid(shape, p.lungs.affine, (n) => p.lungs.data[n] === (side === 'left' ? 1 : 2))!;
    assert.ok(Math.abs(centroid[0]) < Math.abs(lung[0]), 'GTV must be medial to its lung centroid');
    let touching = 0;
    for (let n = 0; n < label.length; n++) {
      if (label[n] !== 1) continue;
      if (neighbours6(n, ...shape).some((m) => p.tissues.data[m] === TISSUE.mediastinum || p.tissues.data[m] === TISSUE.heart)) touching++;
    }
    assert.ok(touching > 0, `seed ${seed}: GTV does not touch the mediastinum`);
  }
});

test('effusion: posterior, basal fluid in the pleural space that shrinks the lung', () => {
  for (const seed of SEEDS) {
    const p = phantom('effusion', seed);
    const { data: label, shape, affine } = p.label;
    let nextToLung = 0;
    for (let n = 0; n < label.length; n++) {
      if (label[n] !== 1) continue;
      assert.equal(p.lungs.data[n], 0, 'effusion voxels are not lung');
      assert.equal(p.tissues.data[n], TISSUE.fluid);
      if (neighbours6(n, ...shape).some((m) => p.lungs.data[m] !== 0)) nextToLung++;
    }
    assert.ok(nextToLung > 0, 'fluid borders the compressed lung');
    for (const record of p.meta.lesions) {
      const sideLabel = record.side === 'left' ? 1 : 2;
      const sign = record.side === 'left' ? -1 : 1;
      const fluid = worldCentroid(shape, affine, (n) => label[n] === 1 && Math.sign(p.image.affine[0][0] * (n % shape[2]) + p.image.affine[0][3]) === sign)!;
      const lung = worldCentroid(shape, affine, (n) => p.lungs.data[n] === sideLabel)!;
      assert.ok(fluid[1] < lung[1] - 20, `seed ${seed}: fluid y ${fluid[1]} not posterior to lung y ${lung[1]}`);
      assert.ok(fluid[2] < lung[2], `seed ${seed}: fluid z ${fluid[2]} not below lung z ${lung[2]}`);
      assert.ok(record.volumeMl > 20, `seed ${seed}: effusion ${record.volumeMl} mL`);
    }
  }
});

test('determinism: same seed gives identical bytes, another seed differs', () => {
  for (const kind of ['covid', 'effusion'] as const) {
    const a = generatePhantom(kind, { seed: 11, size: 'tiny' });
    const b = generatePhantom(kind, { seed: 11, size: 'tiny' });
    const c = generatePhantom(kind, { seed: 12, size: 'tiny' });
    assert.deepEqual(a.image.data, b.image.data);
    assert.deepEqual(a.label.data, b.label.data);
    assert.deepEqual(a.lungs.data, b.lungs.data);
    assert.deepEqual(a.meta, b.meta);
    assert.notDeepEqual(a.image.data, c.image.data);
    assert.notDeepEqual(a.label.data, c.label.data);
  }
  const viaCase = generatePhantom('tumor', { seed: 5, size: 'tiny', caseIndex: 2 });
  const plain = generatePhantom('tumor', { seed: 5, size: 'tiny' });
  assert.notDeepEqual(viaCase.image.data, plain.image.data);
});

test('geometry: anisotropic spacing, LPS-stored affine, tiny/small shapes', () => {
  const tiny = phantom('covid', 0);
  assert.deepEqual(tiny.image.shape, [32, 64, 64]);
  const [sz, sy, sx] = tiny.image.spacing;
  assert.equal(sy, sx);
  assert.ok(sz > sx * 1.3, `z spacing ${sz} vs in-plane ${sx}`);
  assert.ok(sx > 4.5 && sx < 6.5);
  const a = tiny.image.affine;
  assert.ok(a[0][0] === -sx && a[1][1] === -sy && a[2][2] === sz);
  for (const volume of [tiny.label, tiny.lungs, tiny.tissues]) {
    assert.deepEqual(volume.affine, a);
    assert.deepEqual(volume.shape, tiny.image.shape);
  }
  const small = generatePhantom('covid', { seed: 0, size: 'small' });
  assert.deepEqual(small.image.shape, [64, 128, 128]);
  assert.ok(Math.abs(small.image.spacing[1] * 2 - sx) < 1e-9, 'same field of view, half the voxel');
});

test('Radiopaedia convention: 0..255 and maps back to HU', () => {
  const hu = generatePhantom('covid', { seed: 4, size: 'tiny', intensity: 'hu' });
  const rp = generatePhantom('covid', { seed: 4, size: 'tiny', intensity: 'radiopaedia' });
  assert.equal(rp.meta.intensity, 'radiopaedia');
  assert.deepEqual(rp.meta.intensityMapping, { windowHu: [-1250, 250], outputRange: [0, 255] });
  assert.deepEqual(rp.label.data, hu.label.data);
  let maxError = 0;
  for (let n = 0; n < rp.image.data.length; n++) {
    const v = rp.image.data[n]!;
    assert.ok(Number.isInteger(v) && v >= 0 && v <= 255);
    const original = hu.image.data[n]!;
    if (original > -1250 && original < 250) maxError = Math.max(maxError, Math.abs(radiopaediaToHu(v) - original));
  }
  // Half a step of 1500/255 HU, plus half a HU from rounding the HU image.
  assert.ok(maxError <= 1500 / 255 / 2 + 0.5 + 1e-9, `max error ${maxError}`);
  assert.equal(huToRadiopaedia(-5000), 0);
  assert.equal(huToRadiopaedia(5000), 255);
});

test('bad options raise InputError', () => {
  assert.throws(() => generatePhantom('lymph' as LesionKind, { seed: 0, size: 'tiny' }), /unknown lesion kind 'lymph'.*covid, tumor, gtv, effusion/);
  assert.throws(() => generatePhantom('covid', { seed: 0, size: 'huge' as 'tiny' }), /unknown size 'huge'/);
  assert.throws(() => generatePhantom('covid', { seed: 0.5, size: 'tiny' }), /seed must be an integer/);
});

/** 1 for lung voxels within `steps` in-plane 4-neighbour steps of a non-lung voxel. */
function inPlaneBoundaryBand(p: Phantom, steps: number): Uint8Array {
  const [nz, ny, nx] = p.lungs.shape;
  const lungs = p.lungs.data;
  const band = new Uint8Array(lungs.length);
  let inside = Uint8Array.from(lungs, (v) => (v !== 0 ? 1 : 0));
  for (let s = 0; s < steps; s++) {
    const next = new Uint8Array(inside.length);
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const n = (k * ny + j) * nx + i;
          if (inside[n] === 0) continue;
          const keep = i > 0 && i < nx - 1 && j > 0 && j < ny - 1 && inside[n - 1] && inside[n + 1] && inside[n - nx] && inside[n + nx];
          if (keep) next[n] = 1;
          else band[n] = 1;
        }
      }
    }
    inside = next;
  }
  return band;
}
