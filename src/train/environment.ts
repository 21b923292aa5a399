/**
 * What a run's numbers depend on besides its seed and settings, recorded in results.json and in
 * each run's sidecar: the CPU (its model and the instruction-set flags by which oneDNN, ATen and
 * OpenBLAS pick their kernels), the versions of those libraries and the kernel sets they chose, and
 * the intra-op thread count (a training step's gradients are summed per thread: the same run at 1,
 * 2 and 4 threads ends with other weights; a forward pass gave the same bits at 1 to 4 threads).
 * Nothing else of the machine enters a result: not its load, not timing (README, "What a result
 * depends on").
 */
import { cpuInfo, type CpuInfo } from '../core/index.js';
import { getNumThreads, runtimeLibraries, type RuntimeLibraries } from '../tensor/index.js';

export interface RunEnvironment {
  cpu: CpuInfo;
  /** libtorch's intra-op threads of the computing steps. */
  threads: number;
  libraries: RuntimeLibraries;
}

/** This process's environment; `threads` defaults to libtorch's current count. */
export function runEnvironment(threads: number = getNumThreads()): RunEnvironment {
  return { cpu: cpuInfo(), threads, libraries: runtimeLibraries() };
}
