/**
 * `predict --summary --view --lungs --lobes` and `view` as a user runs them: the summary JSON's
 * numbers equal those counted by hand from the written mask and the given lung and lobe masks, the
 * page is written beside the mask; lung or lobe masks off the CT's grid, a missing lobe file and
 * an option without --summary/--view are refused with exit 2 naming the file, before any mask is
 * written; `view` writes a page and refuses a mask on another grid; `report` links a viewer page
 * per overlay case whose volumes it knows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Affine } from '../core/index.js';
import { LOBE_NAMES, lobeSeverityScore } from '../eval/index.js';
import { readNifti, writeNifti, type NiftiImage } from '../io/index.js';
import { FIXTURES, TINY_CONFIG, fixtureUNet, tinyInferencePlan, writeTestCheckpoint } from '../infer/test-support.js';
import { lesionseg, type Run } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-summary-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

function refused(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 2, `exit ${run.code}\n${run.stderr}`);
  assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack frames');
  assert.match(run.stderr, pattern);
}

/** A label map on the phantom's grid: x < half -> 1 (left), else 2 (right); lobes split each lung by z. */
const ready = (async () => {
  const model = fixtureUNet();
  writeTestCheckpoint(at('run'), 'checkpoint_final', model, TINY_CONFIG, tinyInferencePlan());
  model.dispose();
  fs.copyFileSync(path.join(FIXTURES, 'phantom.nii.gz'), at('ct.nii.gz'));
  const ct = await readNifti(at('ct.nii.gz'));
  const [nz, ny, nx] = ct.shape;
  const lungs = new Uint8Array(nz * ny * nx);
  const lobe = (name: string, z: number, x: number): boolean => {
    const left = x < nx / 2;
    if (name === 'lung_upper_lobe_left') return left && z >= nz / 2;
    if (name === 'lung_lower_lobe_left') return left && z < nz / 2;
    if (name === 'lung_upper_lobe_right') return !left && z >= (2 * nz) / 3;
    if (name === 'lung_middle_lobe_right') return !left && z >= nz / 3 && z < (2 * nz) / 3;
    return !left && z < nz / 3;
  };
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) lungs[(z * ny + y) * nx + x] = x < nx / 2 ? 1 : 2;
  const on = (data: Uint8Array, affine: Affine = ct.affine) => ({ data, shape: ct.shape, spacing: ct.spacing, affine });
  await writeNifti(at('lungs.nii.gz'), on(lungs), { datatype: 'uint8' });
  fs.mkdirSync(at('lobes'));
  for (const name of LOBE_NAMES) {
    const mask = new Uint8Array(lungs.length);
    for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) mask[(z * ny + y) * nx + x] = lobe(name, z, x) ? 1 : 0;
    await writeNifti(at('lobes', `${name}.nii.gz`), on(mask), { datatype: 'uint8' });
  }
  // The same lungs 2 mm away, and on a grid of another shape.
  const shifted = ct.affine.map((row, r) => (r === 0 ? [row[0], row[1], row[2], row[3] + 2] : [...row])) as Affine;
  await writeNifti(at('lungs-shifted.nii.gz'), on(lungs, shifted), { datatype: 'uint8' });
  await writeNifti(at('lungs-small.nii.gz'), { data: lungs.subarray(0, (nz - 1) * ny * nx), shape: [nz - 1, ny, nx], spacing: ct.spacing, affine: ct.affine }, { datatype: 'uint8' });
  return { ct, lungs };
})();

function count(mask: ArrayLike<number>, where: (i: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (where(i)) n++;
  return n;
}

test('predict --summary --view --lungs --lobes: JSON numbers as counted by hand, a page beside the mask', async () => {
  const { ct, lungs } = await ready;
  const run = await lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at('out', 'ct.nii.gz'), '--no-tta', '--summary', '--view', '--lungs', at('lungs.nii.gz'), '--lobes', at('lobes'));
  assert.equal(run.code, 0, run.stderr);
  const mask: NiftiImage = await readNifti(at('out', 'ct.nii.gz'));
  const json = JSON.parse(fs.readFileSync(at('out', 'ct.summary.json'), 'utf8')) as { format: string; caseId: string; summary: { voxelVolumeMl: number; infection: { voxels: number }; lungs: { left: { voxels: number; percentInvolved: number | null }; right: { voxels: number; percentInvolved: number | null } }; lobes: { perLobe: Record<string, { percentInvolved: number | null; score: number | null }>; severityScore: number | null } } };
  assert.equal(json.format, 'lesionseg-case-summary');
  assert.equal(json.caseId, 'ct');
  const { summary } = json;
  // 0.8 x 0.9 x 2.5 mm voxels (the phantom's oblique affine) = 1.8 uL.
  assert.ok(Math.abs(summary.voxelVolumeMl - 0.0018) < 1e-7, `${summary.voxelVolumeMl}`);
  const infected = (i: number) => mask.data[i] !== 0; // the tiny model's labels: lesion 1, effusion 2, both infection
  assert.equal(summary.infection.voxels, count(mask.data as Uint8Array, infected));
  for (const [side, value] of [['left', 1], ['right', 2]] as const) {
    const voxels = count(lungs, (i) => lungs[i] === value);
    const inside = count(lungs, (i) => lungs[i] === value && infected(i));
    assert.equal(summary.lungs[side].voxels, voxels);
    assert.equal(summary.lungs[side].percentInvolved, (100 * inside) / voxels);
  }
  let total = 0;
  for (const name of LOBE_NAMES) {
    const lobeMask = (await readNifti(at('lobes', `${name}.nii.gz`))).data as Uint8Array;
    const percent = (100 * count(lobeMask, (i) => lobeMask[i] === 1 && infected(i))) / count(lobeMask, (i) => lobeMask[i] === 1);
    assert.equal(summary.lobes.perLobe[name]!.percentInvolved, percent, name);
    assert.equal(summary.lobes.perLobe[name]!.score, lobeSeverityScore(percent), name);
    total += lobeSeverityScore(percent);
  }
  assert.equal(summary.lobes.severityScore, total);
  assert.deepEqual(mask.shape, ct.shape);
  const page = fs.readFileSync(at('out', 'ct.html'), 'utf8');
  assert.match(page, /CT severity score/);
  assert.match(page, /<title>ct: prediction<\/title>/);
});

test('lung and lobe masks off the CT grid, a missing lobe, and --lungs alone are refused before any mask is written', async () => {
  await ready;
  const predict = (out: string, ...extra: string[]) => lesionseg('predict', '-m', at('run'), '-i', at('ct.nii.gz'), '-o', at(out, 'ct.nii.gz'), '--no-tta', ...extra);
  refused(await predict('bad1', '--summary', '--lungs', at('lungs-shifted.nii.gz')), /lungs-shifted\.nii\.gz: the lung mask does not lie on the grid of the CT .*ct\.nii\.gz: origin .* voxel centres lie up to \d/);
  refused(await predict('bad2', '--view', '--lungs', at('lungs-small.nii.gz')), /lungs-small\.nii\.gz: the lung mask does not lie on the grid of the CT .*: shape \[10, 18, 21\] \(z, y, x\) differs from its \[11, 18, 21\]/);
  fs.cpSync(at('lobes'), at('lobes-partial'), { recursive: true });
  fs.rmSync(at('lobes-partial', 'lung_middle_lobe_right.nii.gz'));
  refused(await predict('bad3', '--summary', '--lobes', at('lobes-partial')), /lobes-partial: --lobes: case 'ct' lacks lung_middle_lobe_right\.nii\.gz/);
  refused(await predict('bad4', '--lungs', at('lungs.nii.gz')), /--lungs and --lobes feed --summary, --view and --output-type dicom-sr/);
  refused(await predict('bad5', '--summary', '--lungs', at('nowhere.nii.gz')), /nowhere\.nii\.gz: --lungs: not found/);
  for (const out of ['bad1', 'bad2', 'bad3', 'bad4', 'bad5']) assert.equal(fs.existsSync(at(out, 'ct.nii.gz')), false, `${out}: no mask written`);
});

test('view IMAGE MASK --out PAGE.html writes the page; a mask on another grid is refused', async () => {
  await ready;
  const ok = await lesionseg('view', at('ct.nii.gz'), at('lungs.nii.gz'), '--out', at('view', 'page.html'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /view: .*page\.html \(\d+\.\d MiB\)/);
  const page = fs.readFileSync(at('view', 'page.html'), 'utf8');
  assert.match(page, /lungs\.nii\.gz/);
  refused(await lesionseg('view', at('ct.nii.gz'), at('lungs-shifted.nii.gz'), '--out', at('view', 'bad.html')), /lungs-shifted\.nii\.gz: the mask does not lie on the grid of the CT/);
  refused(await lesionseg('view', at('ct.nii.gz'), '--out', at('view', 'page.png')), /--out must name an \.html file/);
  assert.equal(fs.existsSync(at('view', 'bad.html')), false);
});

test('report: an overlay case with its volumes gets a viewer page, linked from report.html', async () => {
  await ready;
  const study = at('study');
  fs.cpSync(fileURLToPath(new URL('../../test/fixtures/report/study/', import.meta.url)), study, { recursive: true });
  const overlayFile = path.join(study, 'overlays', 'case_a.json');
  const overlay = JSON.parse(fs.readFileSync(overlayFile, 'utf8')) as { predictions: unknown[]; files?: unknown };
  // The phantom stands in for the case: CT, lungs as the ground truth and as every arm's prediction.
  overlay.files = { image: at('ct.nii.gz'), groundTruth: at('lobes', 'lung_upper_lobe_left.nii.gz'), predictions: overlay.predictions.map(() => at('lobes', 'lung_lower_lobe_left.nii.gz')) };
  fs.writeFileSync(overlayFile, JSON.stringify(overlay));
  const run = await lesionseg('report', study);
  assert.equal(run.code, 0, run.stderr);
  const html = fs.readFileSync(path.join(study, 'report', 'report.html'), 'utf8');
  assert.match(html, /<a class="viewer" href="viewers\/case_a\.html">open in the 3D viewer<\/a>/);
  const page = fs.readFileSync(path.join(study, 'report', 'viewers', 'case_a.html'), 'utf8');
  assert.match(page, /ground truth/);
  assert.equal((page.match(/data-volume="/g) ?? []).length, 1 + overlay.predictions.length, 'one opacity slider per mask');
});

test('big CTs are reduced for the page by whole factors: 512x512x300 -> 2x2x3 blocks; affine moved to the block centres', async () => {
  const { viewerFactors, downsampleVolume, VIEWER_MAX_VOXELS } = await import('./view-commands.js');
  assert.deepEqual(viewerFactors([128, 256, 256]), [1, 1, 1], 'up to 256x256x128 stays full resolution');
  const factors = viewerFactors([300, 512, 512]);
  assert.deepEqual(factors, [3, 2, 2]);
  assert.ok(Math.floor(300 / 3) * 256 * 256 <= VIEWER_MAX_VOXELS);
  const volume = { data: Float32Array.from({ length: 2 * 2 * 4 }, (_, i) => i), shape: [2, 2, 4] as [number, number, number], spacing: [2, 1, 1] as [number, number, number], affine: [[1, 0, 0, 10], [0, 1, 0, 20], [0, 0, 2, 30], [0, 0, 0, 1]] as Affine };
  const mean = downsampleVolume(volume, [1, 2, 2], 'mean');
  assert.deepEqual(mean.shape, [2, 1, 2]);
  assert.deepEqual([...mean.data], [2.5, 4.5, 10.5, 12.5]);
  assert.deepEqual([...downsampleVolume(volume, [1, 2, 2], 'max').data], [5, 7, 13, 15]);
  assert.deepEqual(mean.affine[0], [2, 0, 0, 10.5]);
  assert.deepEqual(mean.spacing, [2, 2, 2]);
});
