#!/usr/bin/env bash
# Run every benchmark, one process at a time, then regenerate benchmarks/RESULTS.md.
#
#   benchmarks/run_all.sh            # the full run (about half an hour on 2 cores); writes RESULTS.md
#   benchmarks/run_all.sh --quick    # a few minutes: checks everything runs; writes RESULTS.quick.md
#
# Extra arguments go to every script (e.g. --threads 2, --reps 3). Run it on a quiet machine:
# anything else busy on the CPU shows up in the figures (the load average is recorded).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
suffix=""
for arg in "$@"; do [ "$arg" = "--quick" ] && suffix=".quick"; done
mkdir -p benchmarks/results
for name in generate analyse tokenize app families; do
    echo "== $name" >&2
    "$PY" benchmarks/bench_$name.py "$@" --json-out "benchmarks/results/$name$suffix.json" | grep -v '^{'
done
"$PY" benchmarks/report.py ${suffix:+--quick} --command "benchmarks/run_all.sh${*:+ $*}"
