/**
 * The batches the loader makes, as SHA-1 digests of each batch's image and labels: run it before and
 * after a change to the loader and compare the two outputs (the same seeds and indices must give the
 * same digests, byte for byte). Also reports the CPU seconds per batch after `--warm` batches.
 *
 *   node --import tsx bench/loader-hash.ts --data DIR [--seeds 1,2,3] [--batches 16] [--workers 0]
 *     [--warm 4] [--out FILE]
 *
 * DIR is a folder bench/loader-compare.ts prepared (`--data DIR --prepare-only 1`): DIR/plan.json
 * and DIR/preprocessed.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createBatchLoader, loadPlan } from '../src/data/index.js';
import { setNumThreads } from '../src/tensor/index.js';
import { ints, median, option, report } from './support.js';

const dataDir = path.resolve(option('data', '/tmp/loader-data-h'));
const seeds = ints(option('seeds', '1,2,3'));
const batches = Number(option('batches', '16'));
const workers = Number(option('workers', '0'));
const warm = Number(option('warm', '4'));
setNumThreads(1);
const plan = loadPlan(path.join(dataDir, 'plan.json'));
const preprocessed = path.join(dataDir, 'preprocessed');
const caseIds = fs.readdirSync(preprocessed).filter((name) => name.endsWith('_seg.npy')).map((name) => name.slice(0, -'_seg.npy'.length)).sort();
const digest = (array: ArrayBufferView): string => createHash('sha1').update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength)).digest('hex');

const runs = [];
for (const seed of seeds) {
  const loader = createBatchLoader({ preprocessedDirs: [preprocessed], caseIds: [caseIds], plan, seed, augment: true, oversampleForeground: 0.33, workers });
  const digests: string[] = [];
  const cpuSeconds: number[] = [];
  try {
    for (let k = 0; k < batches; k++) {
      const cpu0 = process.cpuUsage();
      const batch = await loader.next();
      const cpu = process.cpuUsage(cpu0);
      if (k >= warm) cpuSeconds.push((cpu.user + cpu.system) / 1e6);
      digests.push(`${digest(batch.image)} ${digest(batch.seg)}`);
      loader.release?.(batch);
    }
  } finally {
    await loader.close();
  }
  runs.push({ seed, digests, medianCpuSecondsPerBatch: workers === 0 ? Number(median(cpuSeconds).toFixed(4)) : null });
}
report({ benchmark: 'loader-hash', data: dataDir, workers, batches, runs });
