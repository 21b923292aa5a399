/**
 * The libraries a result depends on (runtimeLibraries): oneDNN's version and ATen's kernel set read
 * from at::show_config() texts of libtorch 1.13 (Debian) and 2.x (pip), and the live record checked
 * against libtorch's own configuration text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binding } from './binding.js';
import { parseTorchConfig, runtimeLibraries } from './state.js';

// Excerpts of at::show_config() as printed by Debian's libtorch 1.13.1 and a pip torch 2.1 wheel.
const DEBIAN_113 = 'PyTorch built with:\n  - GCC 12.2\n  - Intel(R) MKL-DNN v2.6.3 (Git Hash N/A)\n  - OpenMP 201511 (a.k.a. OpenMP 4.5)\n  - CPU capability usage: AVX2\n  - Build settings: BLAS_INFO=generic, TORCH_VERSION=1.13.0, USE_MKLDNN=ON,\n';
const PIP_21 = 'PyTorch built with:\n  - GCC 9.3\n  - Intel(R) oneAPI Math Kernel Library Version 2022.2-Product Build 20220804\n  - Intel(R) MKL-DNN v3.1.1 (Git Hash 64f6bcbcbab628e96f33a62c3e975f8535a7bde4)\n  - CPU capability usage: AVX512\n';

test('oneDNN version and ATen CPU capability come from the configuration text', () => {
  assert.deepEqual(parseTorchConfig(DEBIAN_113), { onednn: '2.6.3', atenCpuCapability: 'AVX2' });
  assert.deepEqual(parseTorchConfig(PIP_21), { onednn: '3.1.1', atenCpuCapability: 'AVX512' });
  assert.deepEqual(parseTorchConfig('PyTorch built with:\n  - GCC 12.2\n'), { onednn: null, atenCpuCapability: null });
});

test('without its own symbol, oneDNN\'s version is the one the configuration names', () => {
  const native = { torch: '1.13.0', config: DEBIAN_113, onednn: null, openblas: null, openblasThreads: null };
  assert.deepEqual(runtimeLibraries(native), { libtorch: '1.13.0', onednn: '2.6.3', openblas: null, openblasThreads: null, atenCpuCapability: 'AVX2' });
});

test("this process's libraries: libtorch's versions as its configuration names them", () => {
  const libraries = runtimeLibraries();
  const config = binding.runtimeInfo().config;
  assert.match(libraries.libtorch, /^\d+\.\d+\.\d+/);
  const built = /TORCH_VERSION=(\d+\.\d+\.\d+)/.exec(config)?.[1];
  if (built !== undefined) assert.equal(libraries.libtorch, built, "TORCH_VERSION of the headers = the library's build setting");
  const fromConfig = parseTorchConfig(config);
  if (fromConfig.onednn !== null) assert.equal(libraries.onednn, fromConfig.onednn, "oneDNN's own version = the one libtorch was built with");
  assert.equal(libraries.atenCpuCapability, fromConfig.atenCpuCapability);
  assert.match(libraries.atenCpuCapability ?? '', /^(DEFAULT|AVX2|AVX512|ZVECTOR|VSX|NEON|SVE\d*)$/);
  if (libraries.openblas !== null) {
    assert.match(libraries.openblas, /^OpenBLAS \d+\.\d+\.\d+/);
    assert.ok(Number.isInteger(libraries.openblasThreads) && libraries.openblasThreads! >= 1);
  }
});
