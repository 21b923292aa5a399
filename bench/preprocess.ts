/**
 * Benchmark: preprocessCase on one 512x512x300 int16 CT (spacing 2.5 x 0.7 x 0.7 mm [z, y, x], zero
 * outside a circular field of view, one lesion label) resampled to 1.5 x 0.78 x 0.78 mm, against
 * the same steps in numpy/scipy (bench/preprocess_scipy.py) on the same arrays in the same run.
 * The spacing ratio 2.5/0.7 > 3, so both use nnU-Net's separate-z path (cubic in-plane, nearest
 * along z). Prints one JSON object: seconds, ratio, and how far the two outputs differ.
 *
 *   node --import tsx bench/preprocess.ts [--no-reference]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo, identityAffine, Rng, type Shape3 } from '../src/core/index.js';
import { readNpy, writeNpy } from '../src/io/index.js';
import { preprocessCase, DATA_RESAMPLING, SEGMENTATION_RESAMPLING, type Plan } from '../src/data/index.js';

const SHAPE: Shape3 = [300, 512, 512];
const SPACING: Shape3 = [2.5, 0.7, 0.7];
const TARGET: Shape3 = [1.5, 0.78, 0.78];
const CT = { mean: -300, std: 420, percentile_00_5: -1024, percentile_99_5: 600 };

function syntheticCt(): { image: Int16Array; label: Uint8Array } {
  const rng = new Rng(7);
  const [nz, ny, nx] = SHAPE;
  const image = new Int16Array(nz * ny * nx);
  const label = new Uint8Array(nz * ny * nx);
  const noise = Int16Array.from({ length: 4096 }, () => Math.round(rng.normal(0, 25)));
  let i = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        const r2 = ((y - 256) / 250) ** 2 + ((x - 256) / 250) ** 2;
        if (r2 > 1) continue; // outside the scanner's field of view: 0, cropped by nnU-Net's nonzero crop
        const body = ((y - 260) / 170) ** 2 + ((x - 256) / 220) ** 2 <= 1;
        const lung = body && (((y - 250) / 110) ** 2 + ((x - 170) / 60) ** 2 <= 1 || ((y - 250) / 110) ** 2 + ((x - 342) / 60) ** 2 <= 1);
        const lesion = ((z - 150) / 12) ** 2 + ((y - 240) / 30) ** 2 + ((x - 170) / 25) ** 2 <= 1;
        const base = lesion ? -100 : lung ? -850 : body ? 40 : -1000;
        image[i] = base + noise[(i * 2654435761) >>> 20]!;
        if (lesion) label[i] = 1;
      }
    }
  }
  return { image, label };
}

function plan(): Plan {
  return {
    version: 1,
    preset: 'nnunet',
    datasets: [{ name: 'bench', labels: { background: 0, lesion: 1 }, channelNames: { '0': 'CT' }, numTraining: 1, fileEnding: '.nii.gz' }],
    fingerprint: {
      numCases: 1,
      medianSpacing: SPACING,
      medianShapeAfterCrop: SHAPE,
      medianRelativeSizeAfterCropping: 1,
      foregroundIntensityPropertiesPerChannel: [{ ...CT, median: -300, min: -1024, max: 600 }],
      intensitySampling: { samplesPerCase: 0, seed: 1234, generator: 'bench' },
      cases: [],
    },
    configuration: {
      patchSize: [128, 128, 128],
      batchSize: 2,
      targetSpacing: TARGET,
      medianShape: [500, 460, 460],
      transpose: { forward: [0, 1, 2], backward: [0, 1, 2] },
      normalization: [{ channel: 'CT', scheme: 'ct', useMaskForNorm: false, ct: CT }],
      resampling: { data: { ...DATA_RESAMPLING }, segmentation: { ...SEGMENTATION_RESAMPLING } },
      network: {
        architecture: 'PlainConvUNet', nStages: 1, featuresPerStage: [32], kernelSizes: [[3, 3, 3]], strides: [[1, 1, 1]],
        nConvPerStage: 2, nConvPerStageDecoder: 2, convBias: true,
        norm: { kind: 'instance', eps: 1e-5, affine: true }, nonlin: { kind: 'leaky_relu', negativeSlope: 0.01 },
      },
      deepSupervision: true,
      batchDice: false,
      vramEstimate: 0,
    },
  };
}

const { image, label } = syntheticCt();
const affine = identityAffine([SPACING[2], SPACING[1], SPACING[0]]);
const start = performance.now();
const result = preprocessCase(
  [{ data: image, shape: SHAPE, spacing: SPACING, affine }],
  { data: label, shape: SHAPE, spacing: SPACING, affine },
  plan(),
  { caseId: 'bench', foregroundLabels: [1] },
);
const oursSeconds = (performance.now() - start) / 1000;
const report: Record<string, unknown> = {
  benchmark: 'preprocessCase 512x512x300 int16 CT',
  spacing: SPACING,
  targetSpacing: TARGET,
  bbox: result.properties.bboxUsedForCropping,
  outputShape: result.shape,
  seconds: { lesionseg: oursSeconds },
};

if (!process.argv.includes('--no-reference')) {
  const dir = mkdtempSync(join(tmpdir(), 'lesionseg-bench-'));
  try {
    writeNpy(join(dir, 'image.npy'), image, [...SHAPE]);
    writeNpy(join(dir, 'label.npy'), label, [...SHAPE]);
    const script = fileURLToPath(new URL('./preprocess_scipy.py', import.meta.url));
    const output = execFileSync(
      '/usr/bin/python3',
      [script, join(dir, 'image.npy'), join(dir, 'label.npy'), SPACING.join(','), TARGET.join(','),
        [CT.mean, CT.std, CT.percentile_00_5, CT.percentile_99_5].join(','), dir],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    const reference = JSON.parse(output) as { seconds: { total: number }; shape: number[]; resize: string };
    const refData = readNpy(join(dir, 'data.npy')).data as Float32Array;
    const refSeg = readNpy(join(dir, 'seg.npy')).data as Int8Array;
    let maxAbs = 0;
    for (let k = 0; k < refData.length; k++) maxAbs = Math.max(maxAbs, Math.abs(refData[k]! - result.data[k]!));
    let segMismatch = 0;
    for (let k = 0; k < refSeg.length; k++) if (refSeg[k] !== result.seg![k]) segMismatch++;
    report.reference = { ...reference, implementation: `numpy/scipy (${reference.resize})` };
    (report.seconds as Record<string, number>).reference = reference.seconds.total;
    report.ratio = oursSeconds / reference.seconds.total;
    report.agreement = { sameShape: JSON.stringify(reference.shape) === JSON.stringify(result.shape.slice(1)), maxAbsDifference: maxAbs, segVoxelsDiffering: segMismatch };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(JSON.stringify({ cpu: cpuInfo(), ...report }, null, 2));
