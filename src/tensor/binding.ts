/**
 * The one door to the native addon: loads native/build/Release/lesionseg_native.node and declares
 * its surface. Nothing else in the tree imports the .node file (STYLE rule 1). Handles are opaque;
 * dtypes travel as libtorch ScalarType codes and devices as strings ('cpu', 'cuda:1').
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { addonEnvironment, LesionsegError } from '../core/index.js';

/** An at::Tensor owned by the addon (an ObjectWrap); only tensor.ts holds these. */
export interface NativeHandle {
  readonly __nativeTensorHandle: unique symbol;
}

type H = NativeHandle;
type Ints = readonly number[];
type TensorOrNumber = H | number | boolean;

/** Bytes in the CPU arena's blocks (allocator.cpp), now and at their peaks since the last reset. */
export interface CpuCacheStats {
  liveBytes: number;
  idleBytes: number;
  mappedBytes: number;
  peakLiveBytes: number;
  peakMappedBytes: number;
}

/** The addon's runtimeInfo(): libtorch's version and build configuration, oneDNN's and OpenBLAS's own (null where not visible). */
export interface NativeRuntimeInfo {
  torch: string;
  /** at::show_config(): compiler, BLAS, oneDNN, and the ATen CPU capability in use. */
  config: string;
  onednn: string | null;
  /** openblas_get_config(), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64". */
  openblas: string | null;
  openblasThreads: number | null;
}

/** Everything the addon exports. Argument order is positional; `null` means "use the default". */
export interface TorchBinding {
  // handles, metadata and autograd
  dispose(h: H): void;
  liveHandles(): number;
  /** Handles whose tensor the GC finalizer released (never disposed). */
  finalizedHandles(): number;
  shape(h: H): number[];
  dtype(h: H): number;
  device(h: H): string;
  requiresGrad(h: H): boolean;
  setRequiresGrad(h: H, flag: boolean): void;
  isLeaf(h: H): boolean;
  grad(h: H): H | null;
  zeroGrad(h: H): void;
  backward(h: H, gradient: H | null, retainGraph: boolean | null): void;
  detach(h: H): H;
  // host copies
  fromTypedArray(data: ArrayBufferView, shape: Ints, dtype: number, device: string): H;
  toTypedArray(h: H): Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;
  toFloat32Array(h: H): Float32Array;
  copyInto(h: H, target: ArrayBufferView): void;
  item(h: H): number;
  // creation
  zeros(shape: Ints, dtype: number, device: string): H;
  ones(shape: Ints, dtype: number, device: string): H;
  full(shape: Ints, value: number | boolean, dtype: number, device: string): H;
  randn(shape: Ints, dtype: number, device: string): H;
  rand(shape: Ints, dtype: number, device: string): H;
  arange(start: number, end: number, step: number, dtype: number, device: string): H;
  zerosLike(h: H): H;
  onesLike(h: H): H;
  // global state
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  autocastEnter(deviceType: 'cpu' | 'cuda', dtype: number, enabled: boolean): [boolean, number];
  autocastExit(deviceType: 'cpu' | 'cuda', previousEnabled: boolean, previousDtype: number): void;
  manualSeed(seed: number | bigint): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  runtimeInfo(): NativeRuntimeInfo;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  // opt-in op profile (bench scripts only): [name, calls, total µs, self µs] per op name
  profilerStart(detailed: boolean): void;
  profilerStop(): [string, number, number, number][];
  // bf16 kernels (conv_bf16.cpp): off -> ATen's path everywhere; active = on and the CPU has AVX512-BF16
  setBf16Kernels(enabled: boolean): boolean;
  bf16KernelsActive(): boolean;
  tuneAllocator(): boolean;
  // the batch loader's host loops (host_kernels.cpp), in place on typed arrays
  cropInto(source: Float32Array | Int8Array, channels: number, caseShape: Ints, lowerBound: Ints, patch: Ints, padValue: number, target: Float32Array | Int8Array): void;
  planeLabels(seg: Int8Array, planes: number, height: number, width: number, offset: Int32Array, weights: Float32Array, inside: Uint8Array, outside: Uint8Array, out: Int8Array): void;
  gammaPrepare(x: Float32Array, sign: number): [number, number, number, number];
  gammaFinish(x: Float32Array, sign: number, mean: number, std: number, low: number, scaleUp: number): void;
  flipInPlace(data: Float32Array | Int8Array, volumes: number, shape: Ints, flips: Ints): void;
  contrastInPlace(x: Float32Array, factor: number): void;
  zeroNegative(labels: Int8Array): void;
  blurAxis(input: Float32Array, shape: Ints, axis: number, kernel: Float32Array, out: Float32Array): boolean;
  emptyCpuCache(): number;
  cpuCacheStats(reset: boolean): CpuCacheStats | null;
  // element-wise
  neg(x: H): H; exp(x: H): H; log(x: H): H; sqrt(x: H): H; rsqrt(x: H): H; abs(x: H): H; square(x: H): H;
  sigmoid(x: H): H; relu(x: H): H; tanh(x: H): H; logicalNot(x: H): H; sign(x: H): H; floor(x: H): H; round(x: H): H;
  add(a: H, b: TensorOrNumber, alpha: number | null): H;
  sub(a: H, b: TensorOrNumber, alpha: number | null): H;
  mul(a: H, b: TensorOrNumber): H; div(a: H, b: TensorOrNumber): H; pow(a: H, b: TensorOrNumber): H;
  eq(a: H, b: TensorOrNumber): H; ne(a: H, b: TensorOrNumber): H; gt(a: H, b: TensorOrNumber): H;
  ge(a: H, b: TensorOrNumber): H; lt(a: H, b: TensorOrNumber): H; le(a: H, b: TensorOrNumber): H;
  maximum(a: H, b: TensorOrNumber): H; minimum(a: H, b: TensorOrNumber): H;
  logicalAnd(a: H, b: H): H; logicalOr(a: H, b: H): H;
  clamp(x: H, min: number | null, max: number | null): H;
  leakyRelu(x: H, negativeSlope: number): H;
  where(condition: H, a: TensorOrNumber, b: TensorOrNumber): H;
  addInPlace(target: H, other: TensorOrNumber, alpha: number | null): void;
  leakyReluInPlace(x: H, negativeSlope: number): void;
  mulInPlace(target: H, other: TensorOrNumber): void;
  addcmulInPlace(target: H, a: H, b: H, value: number): void;
  copyInPlace(target: H, source: H): void;
  zeroInPlace(target: H): void;
  fillInPlace(target: H, value: number | boolean): void;
  // nn
  conv3d(x: H, w: H, bias: H | null, stride: Ints, padding: Ints, dilation: Ints, groups: number): H;
  convTranspose3d(x: H, w: H, bias: H | null, stride: Ints, padding: Ints, outputPadding: Ints, groups: number, dilation: Ints): H;
  instanceNorm(x: H, weight: H | null, bias: H | null, eps: number): H;
  instanceNormLeakyRelu(x: H, weight: H | null, bias: H | null, eps: number, negativeSlope: number): H;
  layerNorm(x: H, normalizedShape: Ints, weight: H | null, bias: H | null, eps: number): H;
  linear(x: H, w: H, bias: H | null): H;
  matmul(a: H, b: H): H;
  softmax(x: H, dim: number): H;
  logSoftmax(x: H, dim: number): H;
  crossEntropy(logits: H, target: H, weight: H | null, reduction: string, ignoreIndex: number, labelSmoothing: number): H;
  nllLoss(logProbabilities: H, target: H, weight: H | null, reduction: string, ignoreIndex: number): H;
  interpolate(x: H, size: Ints, mode: string, alignCorners: boolean | null): H;
  gridSample(x: H, grid: H, mode: string, paddingMode: string, alignCorners: boolean): H;
  pad(x: H, pads: Ints, mode: string, value: number): H;
  avgPool3d(x: H, kernel: Ints, stride: Ints | null, padding: Ints | null): H;
  maxPool3d(x: H, kernel: Ints, stride: Ints | null, padding: Ints | null): H;
  adaptiveAvgPool3d(x: H, outputSize: Ints): H;
  dropout(x: H, p: number, train: boolean): H;
  // reductions, shapes, indexing, moves
  sum(x: H, dims: Ints | null, keepDim: boolean): H;
  mean(x: H, dims: Ints | null, keepDim: boolean): H;
  amax(x: H, dims: Ints, keepDim: boolean): H;
  amin(x: H, dims: Ints, keepDim: boolean): H;
  max(x: H): H; min(x: H): H; norm(x: H): H;
  argmax(x: H, dim: number | null, keepDim: boolean): H;
  cat(xs: readonly H[], dim: number): H;
  stack(xs: readonly H[], dim: number): H;
  narrow(x: H, dim: number, start: number, length: number): H;
  slice(x: H, dim: number, start: number, end: number | null, step: number): H;
  indexSelect(x: H, dim: number, index: H): H;
  gather(x: H, dim: number, index: H): H;
  oneHot(labels: H, numClasses: number): H;
  flip(x: H, dims: Ints): H;
  permute(x: H, dims: Ints): H;
  reshape(x: H, shape: Ints): H;
  contiguous(x: H): H;
  unsqueeze(x: H, dim: number): H;
  squeeze(x: H, dim: number | null): H;
  expand(x: H, shape: Ints): H;
  transpose(x: H, dim0: number, dim1: number): H;
  to(x: H, device: string | null, dtype: number | null): H;
  cast(x: H, dtype: number): H;
  clone(x: H): H;
  // data-parallel collectives (native/src/distributed.cpp); the Promises settle off the JS thread
  distInfo(): { available: boolean; reason: string; nccl: boolean; initialized: boolean };
  distInit(rank: number, worldSize: number, host: string, port: number, timeoutMs: number, backend: 'gloo' | 'nccl', networkInterface: string | null): Promise<number>;
  /** In place; resolves to the seconds the collectives took. */
  distAllReduce(tensors: readonly H[], op: 'sum' | 'max', bucketBytes: number): Promise<number>;
  distBroadcast(tensors: readonly H[], root: number, bucketBytes: number): Promise<number>;
  /** Blocks the JS thread: only for a few numbers inside a forward pass. */
  distAllReduceSync(x: H, op: 'sum' | 'max'): H;
  distStoreSet(key: string, value: string): void;
  distStoreTryGet(key: string): string | null;
  /** Resolves once the collectives queued before it are done and the group is freed. */
  distShutdown(): Promise<number>;
  setParentDeathSignal(expectedParentPid: number): boolean;
}

/** Path of the addon relative to the package root (src/tensor and dist/tensor both sit two levels down). */
const ADDON_URL = new URL('../../native/build/Release/lesionseg_native.node', import.meta.url);

/**
 * Load the addon at `addonPath`. A missing file is a LesionsegError with code 'addon-missing' and one
 * that is there but does not load (a libtorch library not found, another Node ABI) one with code
 * 'addon-unloadable'; both messages name the file and the set-up command, and the CLI prints them
 * as one line with exit status 1 (the set-up's to fix, not the input's). A malformed value of a
 * variable the addon reads (LESIONSEG_CPU_BLOCK_CACHE*, LESIONSEG_MALLOC_TUNING) is an InputError
 * with code 'bad-environment', thrown before the addon loads. Exported for its tests.
 */
export function loadBinding(addonPath: string): TorchBinding {
  const setUp = 'run `npm run setup` (or `bash scripts/build.sh`) in the checkout';
  if (!existsSync(addonPath)) {
    throw new LesionsegError('addon-missing', `the libtorch addon is not built: ${addonPath} is missing; ${setUp} first`);
  }
  // Refuses a malformed LESIONSEG_* value the addon reads (getenv would take it as the default),
  // and sets libgomp's and OpenBLAS's idle waits, read once when libtorch loads them (see there).
  Object.assign(process.env, addonEnvironment(process.env));
  const require = createRequire(import.meta.url);
  try {
    return require(addonPath) as TorchBinding;
  } catch (error) {
    const reason = String((error as Error).message ?? error).split('\n')[0];
    throw new LesionsegError('addon-unloadable', `could not load the libtorch addon ${addonPath} (${reason}); ${setUp} to rebuild it`, {
      cause: error,
    });
  }
}

let loaded: TorchBinding | undefined;

/**
 * The addon, loaded on its first use rather than on import: a command that computes nothing
 * (`--help`, a refused option, `info`) never pays for loading libtorch (0.6 s of CPU), and the
 * set-up errors above still reach the CLI's handler as one line, from wherever the first call is.
 */
export const binding: TorchBinding = new Proxy({} as TorchBinding, {
  get(_target, key) {
    loaded ??= loadBinding(fileURLToPath(ADDON_URL));
    return Reflect.get(loaded, key);
  },
});
