#!/usr/bin/env bash
# `npm run bench`: runs each benchmark of a fixed list that exists under bench/ and prints its JSON.
# Each benchmark prints one JSON object (its numbers side by side with its reference); this script
# prints one compact line per benchmark, {"bench": NAME, "result": <that object>}, or
# {"bench": NAME, "error": ...} when a benchmark fails or prints something else (the others still
# run; the exit status is then 1). Progress goes to stderr.
set -uo pipefail
cd "$(dirname "$0")/.."

BENCHMARKS=(metrics nifti-read-write train-step-compare preprocess loader predict data-parallel dicomweb-retrieve)

# The reference side of each benchmark runs in Debian's Python (torch, nibabel, scipy).
if ! /usr/bin/python3 -c 'import torch, nibabel, scipy' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "run-all: installing python3-torch python3-nibabel python3-scipy (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-nibabel python3-scipy >/dev/null
  else
    echo "run-all: the references need Debian's python3-torch python3-nibabel python3-scipy; install them as root" >&2
    exit 1
  fi
fi
# Wraps the JSON on stdin as {"bench": NAME, "result": ...} on one line; fails on anything else.
WRAP='let s="";process.stdin.on("data",(d)=>{s+=d}).on("end",()=>{const name=process.argv[1];try{process.stdout.write(JSON.stringify({bench:name,result:JSON.parse(s)})+"\n")}catch(e){process.stdout.write(JSON.stringify({bench:name,error:"output is not one JSON value",output:s.slice(-2000)})+"\n");process.exit(1)}})'

status=0
for name in "${BENCHMARKS[@]}"; do
  file="bench/${name}.ts"
  if [ ! -f "$file" ]; then
    echo "run-all: skipping ${name} (no ${file})" >&2
    continue
  fi
  echo "run-all: ${name} ..." >&2
  if output=$(node --import tsx "$file"); then
    printf '%s' "$output" | node -e "$WRAP" "$name" || status=1
  else
    code=$?
    printf '{"bench":"%s","error":"exit status %s"}\n' "$name" "$code"
    status=1
  fi
done
exit $status
