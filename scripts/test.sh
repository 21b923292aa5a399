#!/usr/bin/env bash
# Run every test file (src/**/*.test.ts) with node's test runner; extra arguments narrow the files.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find src -name '*.test.ts' | sort); fi
npx --no-install tsc -p tsconfig.json --noEmit
exec node --import tsx --test --test-reporter=spec "${files[@]}"
