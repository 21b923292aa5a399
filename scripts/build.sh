#!/usr/bin/env bash
# Build the native addon (only when its sources or the libtorch choice changed) and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[build] %s\n' "$*" >&2; }

addon=native/build/Release/lesionseg_native.node
torch_key="LIBTORCH=${LIBTORCH:-} Torch_DIR=${Torch_DIR:-}"
stamp=native/build/.torch-stamp
rebuild=0
if [ ! -f "$addon" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$torch_key" ]; then
  rebuild=1
elif [ -n "$(find native -path native/build -prune -o -type f -newer "$addon" -print | head -n 1)" ]; then
  rebuild=1
fi
if [ "$rebuild" = 1 ]; then
  log "building the libtorch addon (native/)"
  cmake_args=()
  if [ -n "${LIBTORCH:-}" ]; then
    if [ ! -d "${LIBTORCH}" ]; then log "LIBTORCH=${LIBTORCH} is not a folder"; exit 1; fi
    cmake_args+=("--CDCMAKE_PREFIX_PATH=${LIBTORCH}")
    if [ -z "${Torch_DIR:-}" ] && [ -f "${LIBTORCH}/share/cmake/Torch/TorchConfig.cmake" ]; then
      cmake_args+=("--CDTorch_DIR=${LIBTORCH}/share/cmake/Torch")
    fi
  fi
  if [ -n "${Torch_DIR:-}" ]; then
    if [ ! -f "${Torch_DIR}/TorchConfig.cmake" ]; then log "Torch_DIR=${Torch_DIR} holds no TorchConfig.cmake"; exit 1; fi
    cmake_args+=("--CDTorch_DIR=${Torch_DIR}")
  fi
  # Another libtorch than last time: start from an empty CMake cache, or the old Torch_DIR sticks.
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$torch_key" ]; then rm -rf native/build; fi
  jobs=$(nproc 2>/dev/null || echo 2)
  (cd native && CMAKE_BUILD_PARALLEL_LEVEL=$jobs npx --no-install cmake-js compile --log-level error "${cmake_args[@]}" >/dev/null) || {
    log "addon build failed; rerun with: (cd native && npx cmake-js compile) to see the compiler output"; exit 1; }
  mkdir -p native/build && echo "$torch_key" > "$stamp"
  # Say whether data-parallel training (c10d) made it into this build, and why not.
  node -e 'const i = require(process.argv[1]).distInfo(); console.error(i.available ? `[build] data-parallel training: on (${i.reason}${i.nccl ? ", NCCL" : ""})` : `[build] data-parallel training: OFF (${i.reason}); --nproc > 1 and srun ranks will be refused`)' "$PWD/$addon" || true
fi

if [ -f dist/.tsbuildinfo ] && [ -z "$(find src -name '*.ts' -newer dist/.tsbuildinfo -print | head -n 1)" ] \
   && [ ! tsconfig.json -nt dist/.tsbuildinfo ]; then
  exit 0
fi
log "compiling TypeScript"
npx --no-install tsc -p tsconfig.build.json
