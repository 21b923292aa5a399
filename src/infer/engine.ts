/**
 * Engines: what runs one model's forward pass for the sliding window, called once per batch of
 * windows (and mirror pass) with float32 windows [B, C, z, y, x] and returning logits
 * [B, K, z, y, x]. The torch engine is our libtorch network, synchronous; other engines (the ONNX
 * one in src/export, over onnxruntime-node) may answer with a Promise and are built from a
 * checkpoint by an EngineFactory that the caller injects, so infer depends on no runtime but ours.
 */
import type { Tensor } from '../tensor/index.js';
import type { InferenceCheckpoint, SegmentationNetwork } from '../checkpoint/index.js';

export type EngineKind = 'torch' | 'onnx';
export const ENGINE_KINDS: readonly EngineKind[] = ['torch', 'onnx'];

export interface WindowEngine {
  readonly kind: EngineKind;
  readonly numClasses: number;
  readonly inputChannels: number;
  /** True when `run` never returns a Promise (the synchronous sliding window can drive it). */
  readonly synchronous: boolean;
  /** Logits [B, K, z, y, x] of windows [B, C, z, y, x] float32 on the compute device; the caller owns them. */
  run(windows: Tensor): Tensor | Promise<Tensor>;
  /** Release the engine's weights or session. */
  dispose(): void;
}

/** Builds the engine of one checkpoint (its weights, architecture and plan). */
export interface EngineFactory {
  readonly kind: EngineKind;
  create(checkpoint: InferenceCheckpoint): Promise<WindowEngine>;
}

/** A libtorch network as an engine: its full-resolution output. */
export class TorchEngine implements WindowEngine {
  readonly kind = 'torch';
  readonly synchronous = true;

  constructor(readonly network: SegmentationNetwork) {
    network.deepSupervision = false;
  }

  get numClasses(): number {
    return this.network.config.numClasses;
  }

  get inputChannels(): number {
    return this.network.config.inputChannels;
  }

  run(windows: Tensor): Tensor {
    return this.network.forward(windows)[0]!;
  }

  dispose(): void {
    this.network.dispose();
  }
}

export function isWindowEngine(value: unknown): value is WindowEngine {
  return typeof value === 'object' && value !== null && typeof (value as WindowEngine).run === 'function' && typeof (value as WindowEngine).kind === 'string';
}
