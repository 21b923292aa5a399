#!/usr/bin/env bash
# Run every test file (src/**/*.test.ts) with node's test runner; extra arguments narrow the files.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find src -name '*.test.ts' | sort); fi
# Type-check the sources and the benchmarks (bench/ is not built, so this is where it is checked).
npx --no-install tsc -p tsconfig.bench.json
exec node --import tsx --test --test-reporter=spec "${files[@]}"
