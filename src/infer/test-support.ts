/**
 * Test helpers for infer: the tiny U-Net and plan of the PyTorch fixtures
 * (test/fixtures/infer/make_infer_fixtures.py), a 1x1x1-conv network whose output is
 * translation-equivariant, and a checkpoint set written the way the trainer writes one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { atomicWriteJsonSync, type Device } from '../core/index.js';
import { DATA_RESAMPLING, SEGMENTATION_RESAMPLING, type Plan } from '../data/index.js';
import { readSafetensors, writeSafetensors } from '../io/index.js';
import { PlainConvUNet, type UNetConfig } from '../models/index.js';
import { Conv3d, loadStateDict, Module, stateDict } from '../nn/index.js';
import type { Tensor } from '../tensor/index.js';
import { CHECKPOINT_FORMAT, type SegmentationNetwork } from '../checkpoint/index.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/infer');

export const TINY_CONFIG: UNetConfig = {
  inputChannels: 1,
  numClasses: 3,
  featuresPerStage: [4, 8],
  kernelSizes: [[1, 3, 3], [3, 3, 3]],
  strides: [[1, 1, 1], [1, 2, 2]],
  deepSupervision: false,
};

export const TINY_PATCH: [number, number, number] = [8, 16, 16];

/** The fixture's tiny PlainConvUNet with the PyTorch weights of tiny_unet.safetensors. */
export function fixtureUNet(device: Device = { type: 'cpu' }): PlainConvUNet {
  const network = new PlainConvUNet(TINY_CONFIG, { device });
  const report = loadStateDict(network, readSafetensors(path.join(FIXTURES, 'tiny_unet.safetensors')).tensors);
  if (report.missing.length + report.unexpected.length + report.shapeMismatch.length > 0) throw new Error('tiny_unet.safetensors does not fit TINY_CONFIG');
  return network;
}

/** A plan for the tiny U-Net: one CT channel, 3 classes, target spacing [2, 1, 1], patch 8x16x16. */
export function tinyInferencePlan(overrides: { transpose?: { forward: [number, number, number]; backward: [number, number, number] }; targetSpacing?: [number, number, number] } = {}): Plan {
  return {
    version: 1,
    preset: 'tiny',
    datasets: [{ name: 'Phantom', labels: { background: 0, lesion: 1, effusion: 2 }, channelNames: { '0': 'CT' }, numTraining: 4, fileEnding: '.nii.gz' }],
    fingerprint: {
      numCases: 4,
      medianSpacing: [2, 1, 1],
      medianShapeAfterCrop: [12, 18, 20],
      medianRelativeSizeAfterCropping: 1,
      foregroundIntensityPropertiesPerChannel: [{ mean: 40, median: 40, std: 20, min: -20, max: 100, percentile_00_5: -10, percentile_99_5: 90 }],
      intensitySampling: { samplesPerCase: 10, seed: 1234, generator: 'test' },
      cases: [],
    },
    configuration: {
      patchSize: TINY_PATCH,
      batchSize: 2,
      targetSpacing: overrides.targetSpacing ?? [2, 1, 1],
      medianShape: [12, 18, 20],
      transpose: overrides.transpose ?? { forward: [0, 1, 2], backward: [0, 1, 2] },
      normalization: [{ channel: 'CT', scheme: 'ct', useMaskForNorm: false, ct: { mean: 40, std: 20, percentile_00_5: -10, percentile_99_5: 90 } }],
      resampling: { data: { ...DATA_RESAMPLING }, segmentation: { ...SEGMENTATION_RESAMPLING } },
      network: {
        architecture: 'PlainConvUNet',
        nStages: 2,
        featuresPerStage: [4, 8],
        kernelSizes: [[1, 3, 3], [3, 3, 3]],
        strides: [[1, 1, 1], [1, 2, 2]],
        nConvPerStage: 2,
        nConvPerStageDecoder: 2,
        convBias: true,
        norm: { kind: 'instance', eps: 1e-5, affine: true },
        nonlin: { kind: 'leaky_relu', negativeSlope: 0.01 },
      },
      deepSupervision: true,
      batchDice: true,
      vramEstimate: 0,
    },
  };
}

/** A network of one 1x1x1 conv: each output voxel depends on its input voxel only, so tiling cannot change it. */
export class PointwiseNetwork extends Module implements SegmentationNetwork {
  readonly head: Conv3d;
  deepSupervision = false;
  constructor(readonly config: UNetConfig, device: Device = { type: 'cpu' }) {
    super();
    this.head = this.addModule('head', new Conv3d(config.inputChannels, config.numClasses, 1, { bias: true, device }));
  }
  forward(x: Tensor): Tensor[] {
    return [this.head.forward(x)];
  }
}

function digest(file: string): { file: string; bytes: number; sha256: string } {
  const bytes = fs.readFileSync(file);
  return { file: path.basename(file), bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Write `<dir>/<name>.safetensors` + `<name>.json` with the fields src/train's writeCheckpoint records. */
export function writeTestCheckpoint(
  dir: string,
  name: string,
  model: Module,
  config: UNetConfig,
  plan: Plan | null,
  architecture = 'PlainConvUNet',
  extra: { hybrid?: { fuseLevels: 'all' | 'bottleneck' }; strategyDetails?: Record<string, unknown> } = {},
): string {
  fs.mkdirSync(dir, { recursive: true });
  const weights = path.join(dir, `${name}.safetensors`);
  writeSafetensors(weights, stateDict(model), { format: 'pt', producer: 'lesionseg' });
  atomicWriteJsonSync(path.join(dir, `${name}.json`), {
    format: CHECKPOINT_FORMAT,
    version: 1,
    name: 'final',
    architecture: { name: architecture, config, taskClasses: null, ...(extra.hybrid !== undefined ? { hybrid: extra.hybrid } : {}) },
    plan,
    planDigest: null,
    strategy: { name: 'scratch', pretrained: null, details: extra.strategyDetails ?? {} },
    files: { weights: digest(weights), optimizer: null },
    writtenAt: new Date(0).toISOString(),
  });
  return weights;
}
