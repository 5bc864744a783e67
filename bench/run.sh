#!/usr/bin/env bash
# Runs every benchmark binary built into BUILD/bin (bench_*), 2 threads, as in bench/RESULTS.md.
# Google Benchmark binaries get tabular counters; the CLI benches run with their defaults.
set -euo pipefail
BUILD=${1:-build}
export HALLO_THREADS=${HALLO_THREADS:-2}
for b in "$BUILD"/bin/bench_*; do
  echo "== $(basename "$b")"
  if "$b" --help 2>&1 | grep -q -- "--benchmark_filter"; then
    "$b" --benchmark_counters_tabular=true
  else
    "$b"
  fi
done
