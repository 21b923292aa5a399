/**
 * `predict --engine onnx`: each checkpoint is exported to ONNX in memory (onnx.ts) and run by
 * onnxruntime-node on its CPU execution provider, under our sliding window (infer's engine
 * interface: windows [B, C, z, y, x] in, logits [B, K, z, y, x] out). onnxruntime-node (~45 MB of
 * native library for linux/x64) is imported only here and only when such an engine is built, so
 * no other command pays for loading it.
 */
import { InputError } from '../core/index.js';
import type { EngineFactory, InferenceCheckpoint, WindowEngine } from '../infer/index.js';
import { fromArray, type Tensor } from '../tensor/index.js';
import { onnxModelBytes } from './onnx.js';
import { ONNX_INPUT, ONNX_OUTPUT } from './onnxGraph.js';

type OnnxRuntime = typeof import('onnxruntime-node');
type InferenceSession = Awaited<ReturnType<OnnxRuntime['InferenceSession']['create']>>;

export interface OnnxEngineOptions {
  /** onnxruntime's intra-op threads (default: its own, one per physical core). */
  threads?: number;
}

let runtime: Promise<OnnxRuntime> | null = null;

/** onnxruntime-node, loaded on first use. */
export function loadOnnxRuntime(): Promise<OnnxRuntime> {
  runtime ??= import('onnxruntime-node').catch((cause: unknown) => {
    runtime = null;
    throw new InputError(`--engine onnx needs the npm package onnxruntime-node, which did not load (${(cause as Error).message}); run npm ci`, { code: 'missing-dependency', cause });
  });
  return runtime;
}

/** An onnxruntime session over one exported network. */
export class OnnxEngine implements WindowEngine {
  readonly kind = 'onnx';
  readonly synchronous = false;
  private disposed = false;

  private constructor(
    private readonly ort: OnnxRuntime,
    private readonly session: InferenceSession,
    readonly numClasses: number,
    readonly inputChannels: number,
  ) {}

  /** A session over an ONNX model (bytes as onnx.ts writes them). */
  static async fromBytes(model: Uint8Array, shape: { numClasses: number; inputChannels: number }, options: OnnxEngineOptions = {}): Promise<OnnxEngine> {
    const ort = await loadOnnxRuntime();
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      ...(options.threads !== undefined ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
    });
    return new OnnxEngine(ort, session, shape.numClasses, shape.inputChannels);
  }

  async run(windows: Tensor): Promise<Tensor> {
    if (this.disposed) throw new Error('the ONNX engine was disposed');
    if (windows.dtype !== 'float32') throw new RangeError(`the ONNX engine takes float32 windows, got ${windows.dtype}`);
    const input = new this.ort.Tensor('float32', windows.toFloat32Array(), [...windows.shape]);
    const outputs = await this.session.run({ [ONNX_INPUT]: input });
    const logits = outputs[ONNX_OUTPUT];
    if (logits === undefined || logits.type !== 'float32') throw new Error(`the ONNX model returned no float32 '${ONNX_OUTPUT}'`);
    try {
      return fromArray(logits.data as Float32Array, [...logits.dims], { device: windows.device });
    } finally {
      logits.dispose();
      input.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // release() only frees the native session; its promise settles at once.
    this.session.release().catch(() => undefined);
  }
}

/** The EngineFactory of `predict --engine onnx`: export each checkpoint in memory, open a session on it. */
export function onnxEngineFactory(options: OnnxEngineOptions = {}): EngineFactory {
  return {
    kind: 'onnx',
    create: async (checkpoint: InferenceCheckpoint) => {
      const bytes = onnxModelBytes(checkpoint);
      const config = checkpoint.architecture.config;
      return OnnxEngine.fromBytes(bytes, { numClasses: config.numClasses, inputChannels: config.inputChannels }, options);
    },
  };
}
