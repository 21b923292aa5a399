#!/usr/bin/env bash
# Run every test file (src/**/*.test.ts) with node's test runner; extra arguments narrow the files.
# Under CI=true a skipped (or todo) test fails the run: set-up installs every package a reference
# test needs, so a skip there means a check that silently did not run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find src -name '*.test.ts' | sort); fi
# Test files run as many at a time as there are CPUs (node's default leaves one idle: on CI's two
# cores that is half the machine while a file waits on its child processes).
# Type-check the sources and the benchmarks (bench/ is not built, so this is where it is checked).
npx --no-install tsc -p tsconfig.bench.json
skipped=$(mktemp); trap 'rm -f "$skipped"' EXIT
status=0
node --import tsx --test --test-concurrency="$(nproc)" --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./scripts/test-skips-reporter.mjs --test-reporter-destination="$skipped" "${files[@]}" || status=$?
if [ -s "$skipped" ]; then
  echo "Skipped tests ($(wc -l < "$skipped")):"
  cat "$skipped"
  if [ "${CI:-}" = true ]; then echo "CI=true: a skipped test is a failure (install what it needs in scripts/setup.sh)"; [ "$status" != 0 ] || status=1; fi
fi
exit "$status"
