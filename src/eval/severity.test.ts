/**
 * The case summary against masks whose answers are counted by hand: a lung half involved is 50%, a
 * lobe 4% involved scores 1, one 26% involved scores 3; Pan et al.'s bins at their bounds; volumes
 * from the affine's voxel volume; the CSV.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../core/index.js';
import { LOBE_NAMES, lobeSeverityScore, severitySummary, severitySummaryCsv, SUMMARY_CSV_COLUMNS, type LobeName } from './severity.js';
import { voxelVolumeMl } from './mask.js';

test('lobeSeverityScore: Pan et al. bins, with the stated treatment of the bounds', () => {
  const cases: [number, number][] = [
    [0, 0],
    [1e-9, 1],
    [4, 1],
    [4.999, 1],
    [5, 2], // "5%-25%": 5 itself is in bin 2
    [25, 2],
    [25.5, 3], // between Pan's 25 and 26: above 25 is bin 3
    [26, 3],
    [49.9, 3],
    [50, 4], // Pan's bin 4 is "50%-75%" (the text said 51-75%; see README)
    [75, 4],
    [75.01, 5],
    [100, 5],
  ];
  for (const [percent, score] of cases) assert.equal(lobeSeverityScore(percent), score, `${percent}%`);
  assert.throws(() => lobeSeverityScore(-1), RangeError);
  assert.throws(() => lobeSeverityScore(Number.NaN), RangeError);
});

test('voxelVolumeMl is the product of the spacing: 0.8 x 0.8 x 2.5 mm = 1.6 uL; no spacing, no volume', () => {
  assert.equal(voxelVolumeMl([2.5, 0.8, 0.8]), 0.0016);
  // The spacing of an oblique 2 x 1 x 3 mm grid is pixdim exactly, so its voxel is 6 uL exactly.
  assert.equal(voxelVolumeMl([3, 1, 2]), 0.006);
  assert.throws(() => voxelVolumeMl([1, 0, 1]), InputError);
  assert.throws(() => voxelVolumeMl([1, NaN, 1]), InputError);
});

test('a lung half involved is 50%: left lung 200 voxels with 100 infected, right 100 voxels with 10; 5 infected voxels outside', () => {
  // 1000 voxels of 2 mm^3 = 0.002 mL: voxels 0..199 left lung, 200..299 right lung, the rest outside.
  const n = 1000;
  const lungs = new Uint8Array(n);
  lungs.fill(1, 0, 200);
  lungs.fill(2, 200, 300);
  const infection = new Uint8Array(n);
  infection.fill(1, 50, 150); // 100 voxels of the left lung
  infection.fill(1, 290, 300); // 10 of the right
  infection.fill(1, 500, 505); // 5 outside both
  const summary = severitySummary({ infection, voxelMl: 0.002, lungs: { labels: lungs, source: 'lungs.nii.gz' } });
  assert.equal(summary.infection.voxels, 115);
  assert.ok(Math.abs(summary.infection.volumeMl - 0.23) < 1e-12);
  const lungsSummary = summary.lungs!;
  assert.equal(lungsSummary.left.percentInvolved, 50);
  assert.equal(lungsSummary.right.percentInvolved, 10);
  assert.equal(lungsSummary.both.percentInvolved, (100 * 110) / 300);
  assert.ok(Math.abs(lungsSummary.left.volumeMl - 0.4) < 1e-12);
  assert.ok(Math.abs(lungsSummary.right.volumeMl - 0.2) < 1e-12);
  assert.ok(Math.abs(lungsSummary.infectionOutsideLungsMl - 0.01) < 1e-12);
  assert.equal(summary.lobes, null);
});

test('lobes: 4% involved scores 1, 26% scores 3, 0% scores 0, 60% scores 4, 100% scores 5; total 13', () => {
  // Five lobes of 100 voxels each, side by side; infection counted by hand per lobe.
  const n = 600;
  const masks = {} as Record<LobeName, Uint8Array>;
  LOBE_NAMES.forEach((name, k) => {
    masks[name] = new Uint8Array(n);
    masks[name].fill(1, 100 * k, 100 * (k + 1));
  });
  const infected: Record<LobeName, number> = { lung_upper_lobe_left: 4, lung_lower_lobe_left: 26, lung_upper_lobe_right: 0, lung_middle_lobe_right: 60, lung_lower_lobe_right: 100 };
  const infection = new Uint8Array(n);
  LOBE_NAMES.forEach((name, k) => infection.fill(1, 100 * k, 100 * k + infected[name]));
  infection.fill(1, 550, 560); // 10 voxels outside every lobe count in the volume only
  const summary = severitySummary({ infection, voxelMl: 0.001, lobes: { masks, source: 'lobes/' } });
  const lobes = summary.lobes!;
  assert.deepEqual(LOBE_NAMES.map((name) => lobes.perLobe[name].percentInvolved), [4, 26, 0, 60, 100]);
  assert.deepEqual(LOBE_NAMES.map((name) => lobes.perLobe[name].score), [1, 3, 0, 4, 5]);
  assert.equal(lobes.severityScore, 13);
  assert.equal(summary.infection.voxels, 200);
  assert.match(lobes.convention, /Pan et al\., Radiology 2020/);

  // An empty lobe mask has no percentage and leaves the total undefined rather than silently low.
  const emptyLobe = { ...masks, lung_middle_lobe_right: new Uint8Array(n) };
  const partial = severitySummary({ infection, voxelMl: 0.001, lobes: { masks: emptyLobe, source: 'lobes/' } }).lobes!;
  assert.equal(partial.perLobe.lung_middle_lobe_right.percentInvolved, null);
  assert.equal(partial.severityScore, null);

  const csv = severitySummaryCsv([{ caseId: 'case_1', summary }]).trim().split('\n');
  assert.equal(csv[0], SUMMARY_CSV_COLUMNS.join(','));
  const row = csv[1]!.split(',');
  assert.equal(row.length, SUMMARY_CSV_COLUMNS.length);
  assert.equal(row[0], 'case_1');
  assert.equal(row[1], '0.200');
  assert.equal(row[2], '', 'no lungs given: empty cells');
  assert.equal(row[SUMMARY_CSV_COLUMNS.indexOf('lung_lower_lobe_left_score')], '3');
  assert.equal(row[SUMMARY_CSV_COLUMNS.indexOf('severity_score')], '13');
});

test('masks on another grid are refused', () => {
  assert.throws(
    () => severitySummary({ infection: new Uint8Array(10), voxelMl: 1, lungs: { labels: new Uint8Array(9), source: 'l.nii.gz' } }),
    (e: unknown) => e instanceof InputError && /l\.nii\.gz/.test(e.message),
  );
});

test('labelRoles by name; a prediction of lungs + infection gives each infected voxel its row\'s nearest lung', async () => {
  const { labelRoles, lungLabelsFromPrediction } = await import('./severity.js');
  assert.deepEqual(labelRoles({ background: 0, 'left lung': 1, 'right lung': 2, infection: 3 }), { left: 1, right: 2, infection: [3] });
  assert.deepEqual(labelRoles({ background: 0, infection: 1, ignore: 2 }), { left: null, right: null, infection: [1] });
  // One row of 10 voxels: right lung (2) x 0-2, infection x 3-4, gap x 5, left lung (1) x 6-7, infection x 8-9.
  const row = [2, 2, 2, 3, 3, 0, 1, 1, 3, 3];
  const lungs = lungLabelsFromPrediction(row, [1, 1, 10], labelRoles({ background: 0, 'left lung': 1, 'right lung': 2, infection: 3 }));
  // In LUNG_LABELS: left 1, right 2; x 4 is 2 from the right lung and 2 from the left: the lower x wins.
  assert.deepEqual([...lungs], [2, 2, 2, 2, 2, 0, 1, 1, 1, 1]);
  // Half of the left lung infected (2 of 4 voxels) is 50%.
  const infection = row.map((v) => (v === 3 ? 1 : 0));
  const summary = severitySummary({ infection, voxelMl: 1, lungs: { labels: lungs, source: 'model' } });
  assert.equal(summary.lungs!.left.percentInvolved, 50);
  assert.equal(summary.lungs!.right.percentInvolved, 40);
});
