/**
 * Benchmark: NIfTI read and write of a 512x512x300 int16 CT-like .nii.gz, src/io against nibabel
 * (bench/nifti_nibabel.py, Debian's /usr/bin/python3) on the same files in the same run. The sides
 * alternate over the rounds; prints one JSON object with median seconds and ours/nibabel ratios.
 *
 *   node --import tsx bench/nifti-read-write.ts [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { cpuInfo, Rng, type Shape3, type Affine } from '../src/core/index.js';
import { readNifti, writeNifti } from '../src/io/index.js';

const SHAPE: Shape3 = [300, 512, 512];
const SPACING_MM: Shape3 = [1.0, 0.7, 0.7];
const PYTHON_SIDE = fileURLToPath(new URL('./nifti_nibabel.py', import.meta.url));

/** A chest-like volume: air, an elliptic body, two lungs, a spine, smooth shading, CT noise (sigma 25 HU). */
function ctLikeVolume(rng: Rng): Int16Array {
  const [nz, ny, nx] = SHAPE;
  const data = new Int16Array(nz * ny * nx);
  const noise = new Float32Array(1 << 20);
  for (let i = 0; i < noise.length; i++) noise[i] = rng.normal(0, 25);
  let cursor = rng.int(0, noise.length);
  for (let z = 0; z < nz; z++) {
    const taper = 1 - 0.25 * Math.abs(z / nz - 0.5);
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const bx = (x - 256) / (220 * taper);
        const by = (y - 256) / (150 * taper);
        let value = -1000;
        if (bx * bx + by * by < 1) {
          value = 40 + 15 * Math.sin(x / 37) * Math.cos(y / 23);
          for (const side of [-1, 1]) {
            const lx = (x - 256 - side * 100) / (75 * taper);
            const ly = (y - 240) / (105 * taper);
            if (lx * lx + ly * ly < 1) value = -850 + 40 * Math.cos(z / 17);
          }
          const sx = (x - 256) / 28;
          const sy = (y - 380) / 28;
          if (sx * sx + sy * sy < 1) value = 700;
        }
        cursor = (cursor + 7919) & (noise.length - 1);
        data[(z * ny + y) * nx + x] = Math.round(value + noise[cursor]!);
      }
    }
  }
  return data;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function nibabel(args: string[]): { seconds: number; sum: number } {
  return JSON.parse(execFileSync('/usr/bin/python3', [PYTHON_SIDE, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 })) as {
    seconds: number;
    sum: number;
  };
}

async function main(): Promise<void> {
  const roundsFlag = process.argv.indexOf('--rounds');
  const rounds = roundsFlag > 0 ? Number(process.argv[roundsFlag + 1]) : 3;
  const dir = mkdtempSync(join(tmpdir(), 'bench-nifti-'));
  try {
    const affine: Affine = [
      [-SPACING_MM[2], 0, 0, 180],
      [0, -SPACING_MM[1], 0, 180],
      [0, 0, SPACING_MM[0], -300],
      [0, 0, 0, 1],
    ];
    const source = join(dir, 'ct.nii.gz');
    await writeNifti(source, { data: ctLikeVolume(new Rng(7)), shape: SHAPE, spacing: SPACING_MM, affine });
    const times = { oursRead: [] as number[], oursWrite: [] as number[], nibabelRead: [] as number[], nibabelWrite: [] as number[] };
    let sums: { ours: number; nibabel: number } = { ours: 0, nibabel: 0 };
    for (let round = 0; round < rounds; round++) {
      const ours = async () => {
        let start = performance.now();
        const image = await readNifti(source);
        times.oursRead.push((performance.now() - start) / 1000);
        let sum = 0;
        for (let i = 0; i < image.data.length; i++) sum += image.data[i] as number;
        sums.ours = sum;
        start = performance.now();
        await writeNifti(join(dir, 'ours-out.nii.gz'), image, { compressionLevel: 1 });
        times.oursWrite.push((performance.now() - start) / 1000);
      };
      const theirs = () => {
        const read = nibabel(['read', source]);
        times.nibabelRead.push(read.seconds);
        sums.nibabel = read.sum;
        times.nibabelWrite.push(nibabel(['write', source, join(dir, 'nibabel-out.nii.gz')]).seconds);
      };
      if (round % 2 === 0) {
        await ours();
        theirs();
      } else {
        theirs();
        await ours();
      }
    }
    const result = {
      benchmark: 'nifti-read-write',
      shapeZyx: SHAPE,
      datatype: 'int16',
      fileBytes: statSync(source).size,
      rounds,
      gzipLevelWrite: 1,
      seconds: {
        oursRead: median(times.oursRead),
        nibabelRead: median(times.nibabelRead),
        oursWrite: median(times.oursWrite),
        nibabelWrite: median(times.nibabelWrite),
      },
      ratio: {
        read: median(times.oursRead) / median(times.nibabelRead),
        write: median(times.oursWrite) / median(times.nibabelWrite),
      },
      outputBytes: { ours: statSync(join(dir, 'ours-out.nii.gz')).size, nibabel: statSync(join(dir, 'nibabel-out.nii.gz')).size },
      sumsAgree: sums.ours === sums.nibabel,
      allSeconds: times,
      notes: 'ours write includes fsync + rename (atomic); nibabel write does not fsync',
    };
    console.log(JSON.stringify({ cpu: cpuInfo(), ...result }, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
