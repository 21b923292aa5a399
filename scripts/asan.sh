#!/usr/bin/env bash
# Build the addon under AddressSanitizer (native/build-asan; native/build and scripts/build.sh are
# untouched) and run a chosen set of test files against it. Usage:
#   bash scripts/asan.sh [test files...]   (default: the tensor op, allocator and distributed tests)
# node itself is not instrumented: libasan is preloaded (LD_PRELOAD) so that its malloc/free and
# memcpy interceptors see every allocation, and the addon's own code (compiled with
# -fsanitize=address) is checked on every access; the CPU arena (allocator.cpp) poisons its free
# blocks and the rounding tail of live ones for ASan. libtorch's kernels are not instrumented:
# an overrun inside an ATen kernel is caught only where it lands in a poisoned or freed block.
# Leak detection is off (detect_leaks=0): V8, node and libtorch keep allocations until exit by
# design (isolates, static op registries), and so do the addon's never-freed arena and process-group
# registry (freeing them at exit could block in Gloo's destructors); LeakSanitizer would report all
# of them. Reports go to native/build-asan/reports/asan.<pid> (child processes, such as the ranks a
# test starts, included); the script prints them and exits 1 if there is any, or if a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[asan] %s\n' "$*" >&2; }

out=native/build-asan
addon=$out/Release/lesionseg_native.node
if [ ! -f native/build/Release/lesionseg_native.node ]; then
  log "build the normal addon first (bash scripts/build.sh): the tests look for it before loading the ASan one"; exit 1
fi
cmake_args=()
if [ -n "${LIBTORCH:-}" ]; then cmake_args+=("--CDCMAKE_PREFIX_PATH=${LIBTORCH}"); fi
if [ -n "${Torch_DIR:-}" ]; then cmake_args+=("--CDTorch_DIR=${Torch_DIR}"); fi
# An addon that only links libasan checks nothing: its code must call ASan's checks.
instrumented() { [ -f "$addon" ] && case "$(nm -D --undefined-only "$addon")" in *__asan_report*) true ;; *) false ;; esac; }
if [ ! -f "$addon" ] || [ -n "$(find native/src native/CMakeLists.txt -newer "$addon" -print | head -n 1)" ] || ! instrumented; then
  log "building the addon with -fsanitize=address into $out (a minute or two)"
  (cd native && CMAKE_BUILD_PARALLEL_LEVEL=$(nproc 2>/dev/null || echo 2) npx --no-install cmake-js rebuild --out build-asan --log-level error \
    --CDLESIONSEG_SANITIZE=address "${cmake_args[@]}" >/dev/null) || {
    log "ASan build failed; rerun with: (cd native && npx cmake-js rebuild --out build-asan --CDLESIONSEG_SANITIZE=address) for the output"; exit 1; }
fi
if ! instrumented; then log "$addon is not instrumented (no __asan_report calls)"; exit 1; fi
libasan=$("${CXX:-c++}" -print-file-name=libasan.so)
if [ ! -f "$libasan" ]; then log "libasan.so not found (${CXX:-c++} -print-file-name=libasan.so)"; exit 1; fi

if [ $# -gt 0 ]; then files=("$@"); else
  files=(src/tensor/ops.test.ts src/tensor/tensor.test.ts src/tensor/allocator.test.ts src/tensor/distributed.test.ts)
fi
reports=$out/reports
rm -rf "$reports" && mkdir -p "$reports"
export LD_PRELOAD="$libasan${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:log_path=$PWD/$reports/asan:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
export NODE_OPTIONS="--require $PWD/scripts/asan-addon.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}"
# The tests must really run the instrumented addon: say which file the process mapped.
mapped=$(node --import tsx --input-type=module -e "await import('./src/tensor/index.ts'); const fs = await import('node:fs'); console.log(fs.readFileSync('/proc/self/maps', 'utf8').split('\n').find((l) => l.includes('lesionseg_native.node'))?.split(/\s+/).pop() ?? 'none')")
case "$mapped" in *build-asan*) log "loaded $mapped under $libasan" ;; *) log "the tests would load $mapped, not the ASan build"; exit 1 ;; esac
status=0
node --import tsx --test --test-reporter=spec "${files[@]}" || status=$?
found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
  for f in $found; do log "report $f:"; cat "$f" >&2; done
  log "AddressSanitizer reported $(echo "$found" | wc -l) error(s)"; exit 1
fi
log "no AddressSanitizer report ($(printf '%s ' "${files[@]}"))"
exit "$status"
