/** Precision by capability: CPU flags parsed from /proc/cpuinfo text, and what `auto`, bf16 and fp16 resolve to. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuInfo, InputError, parseCpuInfo, resolvePrecision } from './index.js';

// Abridged /proc/cpuinfo lines of the three kinds of machine our CI has run on.
const AVX2_EPYC = 'processor\t: 0\nmodel name\t: AMD EPYC 7R13 Processor\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n';
const ZEN4_EPYC = 'processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni\n';
const SAPPHIRE_RAPIDS = 'processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8488C\nflags\t\t: avx2 fma avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8\n';
const CPU = { type: 'cpu' } as const;

test('CPU model and the relevant flags come from /proc/cpuinfo; bf16 is native with AVX512-BF16 or AMX only', () => {
  const avx2 = parseCpuInfo(AVX2_EPYC);
  assert.equal(avx2.model, 'AMD EPYC 7R13 Processor');
  assert.deepEqual(avx2.flags, ['avx2', 'fma']);
  assert.equal(avx2.nativeBf16, false);
  assert.deepEqual(parseCpuInfo(ZEN4_EPYC).flags, ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512_bf16']);
  assert.equal(parseCpuInfo(ZEN4_EPYC).nativeBf16, true);
  assert.deepEqual(parseCpuInfo(SAPPHIRE_RAPIDS).flags, ['avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8', 'avx512_fp16']);
  assert.equal(parseCpuInfo('', 'Apple M2').model, 'Apple M2', 'no /proc/cpuinfo: the fallback name, no flags');
  assert.equal(parseCpuInfo('', 'Apple M2').nativeBf16, false);
  const here = cpuInfo();
  assert.ok(here.model.length > 0 && here.cores >= 1);
});

test('auto is bf16 where native, fp32 elsewhere, fp16 on CUDA; emulated bf16 warns; fp16 on the CPU is refused', () => {
  const avx2 = parseCpuInfo(AVX2_EPYC);
  const amx = parseCpuInfo(SAPPHIRE_RAPIDS);
  assert.deepEqual(resolvePrecision('auto', CPU, avx2), { precision: 'fp32', warning: null });
  assert.deepEqual(resolvePrecision('auto', CPU, amx), { precision: 'bf16', warning: null });
  assert.deepEqual(resolvePrecision('auto', { type: 'cuda', index: 0 }, avx2), { precision: 'fp16', warning: null });
  assert.deepEqual(resolvePrecision('bf16', CPU, amx), { precision: 'bf16', warning: null });
  assert.deepEqual(resolvePrecision('fp32', CPU, amx), { precision: 'fp32', warning: null });
  const emulated = resolvePrecision('bf16', CPU, avx2);
  assert.equal(emulated.precision, 'bf16', 'the user asked for it: kept');
  assert.match(emulated.warning ?? '', /AMD EPYC 7R13 Processor.*no native bf16.*emulated/);
  assert.throws(() => resolvePrecision('fp16', CPU, amx), (e: unknown) => e instanceof InputError && e.code === 'bad-precision');
});
