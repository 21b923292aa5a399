/**
 * A self-test of the whole engine: a small U-Net learns to segment random spheres in noise from a
 * few dozen SGD steps. Used by `lesionseg selftest` (and the demo until the study lands); its loss
 * must fall.
 */
import { fromArray, manualSeed, scope, setNumThreads, type Device } from '../tensor/index.js';
import { SGD, deepSupervisionTargets, deepSupervisionWeights } from '../nn/index.js';
import { PlainConvUNet, type UNetConfig } from '../models/index.js';
import { Rng, SILENT_PROGRESS, type ProgressReporter } from '../core/index.js';
import { trainStep, type Precision } from './step.js';

export interface SelfTestOptions {
  iterations: number;
  seed: number;
  device: Device;
  precision: Precision;
  threads: number;
  progress: ProgressReporter;
  /** Called after each step (tests use it to sample memory). */
  onStep?: (iteration: number, loss: number) => void;
}

export const SELFTEST_DEFAULTS: SelfTestOptions = { iterations: 60, seed: 1, device: { type: 'cpu' }, precision: 'fp32', threads: 2, progress: SILENT_PROGRESS };

const PATCH = [16, 32, 32] as const;

/** A batch of spheres (label 1) brighter than the background, with Gaussian noise. */
export function sphereBatch(rng: Rng, batchSize: number): { image: Float32Array; label: BigInt64Array } {
  const [z, y, x] = PATCH;
  const voxels = z * y * x;
  const image = new Float32Array(batchSize * voxels);
  const label = new BigInt64Array(batchSize * voxels);
  for (let b = 0; b < batchSize; b++) {
    const c = [rng.uniform(4, z - 4), rng.uniform(8, y - 8), rng.uniform(8, x - 8)];
    const r = rng.uniform(3, 7);
    for (let k = 0; k < z; k++) for (let j = 0; j < y; j++) for (let i = 0; i < x; i++) {
      const index = b * voxels + (k * y + j) * x + i;
      // Spacing 2 x 1 x 1: the sphere is round in mm.
      const inside = (2 * (k - c[0]!)) ** 2 + (j - c[1]!) ** 2 + (i - c[2]!) ** 2 < r * r;
      label[index] = inside ? 1n : 0n;
      image[index] = (inside ? 1 : 0) + 0.5 * rng.normal();
    }
  }
  return { image, label };
}

/** Lets the event loop turn, as a real training loop does while it awaits its next batch. */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function runSelfTest(options: Partial<SelfTestOptions> = {}): Promise<{ losses: number[]; params: number }> {
  const o = { ...SELFTEST_DEFAULTS, ...options };
  setNumThreads(o.threads);
  manualSeed(o.seed);
  const rng = new Rng(o.seed);
  const config: UNetConfig = {
    inputChannels: 1,
    numClasses: 2,
    featuresPerStage: [8, 16, 32],
    kernelSizes: [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
    strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
    deepSupervision: true,
  };
  const model = new PlainConvUNet(config, { device: o.device });
  const optimizer = new SGD(model.parameterDict());
  const weights = deepSupervisionWeights(config.featuresPerStage.length - 1);
  const parts = { model, optimizer, device: o.device, precision: o.precision, weights };
  const losses: number[] = [];
  o.progress.start('selftest', o.iterations);
  for (let i = 0; i < o.iterations; i++) {
    const batch = sphereBatch(rng, 2);
    const loss = scope(() => {
      const x = fromArray(batch.image, [2, 1, ...PATCH], { device: o.device });
      const y = fromArray(batch.label, [2, 1, ...PATCH], { device: o.device });
      return trainStep(parts, x, deepSupervisionTargets(y, config.strides, weights.length)).loss;
    });
    losses.push(loss);
    o.onStep?.(i, loss);
    // Node-API runs the finalizers of released tensor wrappers from the event loop; a loop that
    // never yields would pile them up (about 200 bytes per tensor op) until it does.
    await yieldToEventLoop();
    o.progress.tick(1, `loss ${loss.toFixed(4)}`);
  }
  o.progress.stop();
  const params = model.countParameters().total;
  optimizer.dispose();
  model.dispose();
  return { losses, params };
}
