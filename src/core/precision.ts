/**
 * Precision by capability. bf16 is fast on a CPU only where it computes it natively (AVX512-BF16 or
 * AMX: oneDNN has bf16 kernels there); elsewhere oneDNN emulates it and a U-Net training step took
 * over 16 minutes on an AVX2-only AMD EPYC (fp32: seconds). So `auto` means bf16 on such CPUs and
 * fp32 on the others, and fp16 on CUDA (nnU-Net's AMP). The CPU's name and flags are recorded in
 * benchmark JSON and run sidecars so that every number can be traced to its hardware.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { InputError } from './errors.js';
import type { Device } from './device.js';

export const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const;
/** What a computation runs in. */
export type Precision = (typeof PRECISIONS)[number];
/** What a user may ask for: a precision, or `auto` (chosen by the device's capability). */
export type PrecisionRequest = Precision | 'auto';
export const PRECISION_REQUESTS = ['auto', ...PRECISIONS] as const;

/**
 * The flags that decide which kernels oneDNN, ATen and OpenBLAS run (as /proc/cpuinfo names them),
 * and so how fast and in which order of sums: oneDNN's ISA levels are avx2, avx512_core (avx512f,
 * bw, vl, dq), avx512_core_vnni, avx512_core_bf16, avx512_core_fp16 and avx512_core_amx.
 */
const RELEVANT_FLAGS = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8', 'avx512_fp16'] as const;

export interface CpuInfo {
  /** `model name` of /proc/cpuinfo (or os.cpus()), e.g. "AMD EPYC 9R14" or "Intel(R) Xeon(R) Platinum 8488C". */
  model: string;
  /** The relevant flags this CPU has (subset of RELEVANT_FLAGS, in its order). */
  flags: string[];
  /** True where bf16 matmul/conv run in hardware (AVX512-BF16 or AMX-BF16). */
  nativeBf16: boolean;
  /** Logical cores Node can use. */
  cores: number;
}

/** Parses the text of /proc/cpuinfo (first processor's model name and flags). */
export function parseCpuInfo(text: string, fallbackModel = 'unknown'): CpuInfo {
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? fallbackModel;
  const flagLine = /^flags\s*:\s*(.+)$/m.exec(text)?.[1] ?? '';
  const present = new Set(flagLine.trim().split(/\s+/));
  const flags = RELEVANT_FLAGS.filter((flag) => present.has(flag));
  return { model, flags, nativeBf16: present.has('avx512_bf16') || present.has('amx_bf16'), cores: os.availableParallelism() };
}

let cached: CpuInfo | undefined;

/** This machine's CPU (read once). Outside Linux the flags are unknown, so bf16 is not taken as native. */
export function cpuInfo(): CpuInfo {
  if (cached === undefined) {
    let text = '';
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'latin1');
    } catch {
      text = '';
    }
    cached = parseCpuInfo(text, os.cpus()[0]?.model ?? 'unknown');
  }
  return cached;
}

export interface ResolvedPrecision {
  precision: Precision;
  /** Set when the choice deserves a warning (bf16 asked for on a CPU that emulates it). */
  warning: string | null;
}

/**
 * The precision to run: `auto` is bf16 on a CPU with native bf16, else fp32, and fp16 on CUDA.
 * fp16 on the CPU is refused (libtorch autocasts only to bf16 there). bf16 asked for on a CPU
 * without native support is kept, with a warning that it is emulated and many times slower.
 */
export function resolvePrecision(request: PrecisionRequest, device: Device, cpu: CpuInfo = cpuInfo()): ResolvedPrecision {
  if (device.type === 'cuda') return { precision: request === 'auto' ? 'fp16' : request, warning: null };
  if (request === 'auto') return { precision: cpu.nativeBf16 ? 'bf16' : 'fp32', warning: null };
  if (request === 'fp16') {
    throw new InputError('--precision fp16 needs a CUDA device (libtorch autocasts only to bfloat16 on the CPU): use bf16, fp32 or auto', { code: 'bad-precision' });
  }
  if (request === 'bf16' && !cpu.nativeBf16) {
    return {
      precision: 'bf16',
      warning: `this CPU (${cpu.model}) has no native bf16 (AVX512-BF16 or AMX): bf16 is emulated and many times slower than fp32; use --precision fp32 or auto`,
    };
  }
  return { precision: request, warning: null };
}
