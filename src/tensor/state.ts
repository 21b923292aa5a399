/**
 * Global libtorch switches, each scoped to a synchronous callback and restored on the way out:
 * grad mode, autocast; plus seed, intra-op threads and CUDA queries, the switch of the addon's bf16
 * kernels and an op profile for benchmark scripts.
 */
import { formatDevice, type Device } from '../core/index.js';
import { binding, type CpuCacheStats, type NativeRuntimeInfo } from './binding.js';
import { dtypeCode } from './dtype.js';

function refusePromise(what: string, result: unknown): void {
  if (result instanceof Promise) {
    throw new TypeError(`${what}(fn): fn returned a Promise; the setting is synchronous, never await inside it`);
  }
}

/** Runs fn with gradient recording off (like torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const previous = binding.setGradEnabled(false);
  try {
    const result = fn();
    refusePromise('noGrad', result);
    return result;
  } finally {
    binding.setGradEnabled(previous);
  }
}

/** Runs fn with gradient recording on (inside a noGrad, e.g. for a module that must train). */
export function enableGrad<T>(fn: () => T): T {
  const previous = binding.setGradEnabled(true);
  try {
    const result = fn();
    refusePromise('enableGrad', result);
    return result;
  } finally {
    binding.setGradEnabled(previous);
  }
}

export function isGradEnabled(): boolean {
  return binding.isGradEnabled();
}

/**
 * Mixed precision like torch.autocast: CPU takes bfloat16, CUDA float16 or bfloat16. Nested
 * autocasts restore the outer setting; the cast cache is cleared when the outermost one exits.
 */
export function autocast<T>(options: { device: Device; dtype: 'bfloat16' | 'float16'; enabled?: boolean }, fn: () => T): T {
  const deviceType = options.device.type;
  if (deviceType !== 'cpu' && deviceType !== 'cuda') {
    throw new TypeError(`autocast: unsupported device ${formatDevice(options.device)}`);
  }
  const [previousEnabled, previousDtype] = binding.autocastEnter(deviceType, dtypeCode(options.dtype), options.enabled ?? true);
  try {
    const result = fn();
    refusePromise('autocast', result);
    return result;
  } finally {
    binding.autocastExit(deviceType, previousEnabled, previousDtype);
  }
}

/** Seeds torch's CPU and CUDA generators (randn, rand, dropout). */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new TypeError(`manualSeed: seed must be a non-negative integer, got ${seed}`);
  binding.manualSeed(seed);
}

/** Intra-op threads libtorch uses (at::set_num_threads). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`setNumThreads: n must be a positive integer, got ${n}`);
  binding.setNumThreads(n);
}

/**
 * Keep training's activations on glibc's heap, untrimmed (addon.cpp TuneAllocator: a U-Net step
 * was 1.3x slower with glibc's defaults). Training calls it; prediction does not (its peak RSS
 * would grow ~15% for no measurable speed). Once per process; false where not glibc or
 * LESIONSEG_MALLOC_TUNING=0.
 */
export function tuneAllocatorForTraining(): boolean {
  return binding.tuneAllocator();
}

/**
 * Hand the idle pages of the addon's CPU arena back to the kernel (allocator.cpp: blocks of 1 MiB
 * and more keep their pages when their tensor dies, for the next tensors of the loop). Call it when
 * a loop of same-sized work ends (the sliding window does), so the idle pages leave the RSS.
 * Returns bytes.
 */
export function emptyCpuCache(): number {
  return binding.emptyCpuCache();
}

/**
 * The CPU arena's bytes: live (held by tensors), idle (free, may still be resident), mapped (the
 * extent that may be resident: its high-water mark since the last emptyCpuCache) and the peaks of
 * live and mapped since the last call with `reset`; null when the arena is off
 * (LESIONSEG_CPU_BLOCK_CACHE=0). Blocks under 1 MiB are not counted.
 */
export function cpuCacheStats(reset = false): CpuCacheStats | null {
  return binding.cpuCacheStats(reset);
}

export function getNumThreads(): number {
  return binding.getNumThreads();
}

/** The libraries whose kernels compute: their versions decide the numbers as much as the CPU does. */
export interface RuntimeLibraries {
  /** libtorch's version (TORCH_VERSION of its headers). */
  libtorch: string;
  /** oneDNN (MKL-DNN), which runs the convolutions: its own version, else the one at::show_config names. */
  onednn: string | null;
  /** OpenBLAS's configuration (version, kernel set it chose for this CPU, e.g. "Cooperlake"); null if not linked. */
  openblas: string | null;
  /** OpenBLAS's own thread count (its pool, apart from libtorch's OpenMP threads). */
  openblasThreads: number | null;
  /** ATen's vectorised kernels in use ("AVX2", "AVX512", "DEFAULT"; ATEN_CPU_CAPABILITY changes it). */
  atenCpuCapability: string | null;
}

/** oneDNN's version and ATen's CPU capability from the text of at::show_config() (null where absent). */
export function parseTorchConfig(text: string): { onednn: string | null; atenCpuCapability: string | null } {
  const onednn = /(?:MKL-DNN|oneDNN)\s+v(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1] ?? null;
  const atenCpuCapability = /CPU capability usage:\s*(\S+)/.exec(text)?.[1] ?? null;
  return { onednn, atenCpuCapability };
}

export function runtimeLibraries(info: NativeRuntimeInfo = binding.runtimeInfo()): RuntimeLibraries {
  const fromConfig = parseTorchConfig(info.config);
  return { libtorch: info.torch, onednn: info.onednn ?? fromConfig.onednn, openblas: info.openblas, openblasThreads: info.openblasThreads, atenCpuCapability: fromConfig.atenCpuCapability };
}

export function cudaIsAvailable(): boolean {
  return binding.cudaIsAvailable();
}

export function cudaDeviceCount(): number {
  return binding.cudaDeviceCount();
}

/** Live at::Tensor handles as the addon counts them (all threads together). */
export function nativeLiveTensors(): number {
  return binding.liveHandles();
}

/** Native handles released by the GC finalizer instead of dispose() since the addon loaded (should stay 0 in loops). */
export function nativeFinalizedTensors(): number {
  return binding.finalizedHandles();
}

/** One op name's share of a profile (profileOps): calls, summed duration, and that less nested ops (self). */
export interface OpProfileRow {
  name: string;
  calls: number;
  totalMs: number;
  selfMs: number;
}

/**
 * Runs fn under libtorch's legacy autograd profiler (CPU ranges of every ATen op and autograd
 * node on this thread, aggregated per name, most self time first). For benchmark scripts
 * (bench/train-step-profile.ts): nothing records outside it, and it slows the ops it records.
 * `detailed`: rows per two enclosing ops, op and input shapes ("grandparent > parent > name [(2,16,32,96,96)...]").
 */
export function profileOps<T>(fn: () => T, detailed = false): { result: T; ops: OpProfileRow[] } {
  binding.profilerStart(detailed);
  let rows: [string, number, number, number][] = [];
  let result: T;
  try {
    result = fn();
    refusePromise('profileOps', result);
  } finally {
    rows = binding.profilerStop();
  }
  const ops = rows.map(([name, calls, totalUs, selfUs]) => ({ name, calls, totalMs: totalUs / 1e3, selfMs: selfUs / 1e3 }));
  return { result, ops: ops.sort((a, b) => b.selfMs - a.selfMs) };
}

/**
 * The addon's bf16 kernels (conv_bf16.cpp: the weight gradient of bf16 3x3x3 convolutions;
 * ops_fused_bf16.cpp: instance norm + leaky ReLU of a bf16 activation) on or off; returns the
 * previous setting. Off, every op takes ATen's path, as on a CPU without AVX-512: tests compare the
 * two, and bench/train-step-profile.ts measures them. Whether they run also needs the CPU's
 * AVX512-BF16 (bf16KernelsActive).
 */
export function setBf16Kernels(enabled: boolean): boolean {
  return binding.setBf16Kernels(enabled);
}

/** Whether the addon's bf16 kernels run: on (setBf16Kernels) and the CPU has AVX512-BF16. */
export function bf16KernelsActive(): boolean {
  return binding.bf16KernelsActive();
}
