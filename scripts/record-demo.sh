#!/usr/bin/env bash
# Runs `lesionseg demo` in a fresh folder and records what the README quotes under results/demo/:
# results.json (it names the CPU in `hardware`), tables 1-3, the demo's printed table and the CPU.
# Usage: bash scripts/record-demo.sh   (runs the set-up first; a few minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node bin/lesionseg.js demo --out "$work/demo" | tee "$work/stdout.txt"
mkdir -p results/demo
cp "$work/demo/results.json" results/demo/results.json
cp "$work/demo/tables/"*.md results/demo/
{
  echo '# `npm run demo`, as recorded by scripts/record-demo.sh'
  echo
  echo "Recorded $(date -u +%Y-%m-%d) on: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores."
  echo 'Other CPUs give other numbers (oneDNN picks other kernels); run `npm run demo` for yours.'
  echo
  echo 'What the demo printed:'
  echo
  echo '```'
  sed "s#$work/demo#DIR#g" "$work/stdout.txt"
  echo '```'
} > results/demo/README.md
echo "record-demo: wrote results/demo/"
