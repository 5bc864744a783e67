#!/usr/bin/env bash
# Runs every benchmark binary built into BUILD/bin (bench_*), 2 threads, as in bench/RESULTS.md.
set -euo pipefail
BUILD=${1:-build}
export HALLO_THREADS=${HALLO_THREADS:-2}
for b in "$BUILD"/bin/bench_*; do
  echo "== $(basename "$b")"
  "$b" --benchmark_counters_tabular=true
done
