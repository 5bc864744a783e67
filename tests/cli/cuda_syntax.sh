#!/usr/bin/env bash
# The CUDA-only branches (HALLO_WITH_CUDA in core/device.cpp, USE_C10D_NCCL in
# trainer/dist/comm.cpp) never compile in the CPU build. Where a CUDA toolkit's headers
# (cuda_runtime_api.h, nccl.h) are installed, compile them here with -fsyntax-only
# against this libtorch's c10/cuda and c10d headers, so a typo there is found before a
# GPU machine is lent. Debian's CPU libtorch lacks one generated header
# (c10/cuda/impl/cuda_cmake_macros.h): a one-line stand-in is supplied.
# usage: cuda_syntax.sh REPO_ROOT TORCH_INCLUDE_DIR   (exit 77: no CUDA headers here)
set -euo pipefail
repo=$1 torch_inc=$2
cuda=${CUDA_HOME:-/usr/local/cuda}/include
for h in "$cuda/cuda_runtime_api.h" "$cuda/nccl.h" "$torch_inc/c10/cuda/CUDACachingAllocator.h"; do
  [ -f "$h" ] || { echo "skipped: $h not found"; exit 77; }
done
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
mkdir -p "$shim/c10/cuda/impl"
[ -f "$torch_inc/c10/cuda/impl/cuda_cmake_macros.h" ] || printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$shim/c10/cuda/impl/cuda_cmake_macros.h"
for f in core/device.cpp trainer/dist/comm.cpp; do
  ${CXX:-c++} -std=c++17 -fsyntax-only -DHALLO_WITH_CUDA=1 -DUSE_C10D_NCCL -DUSE_C10D_GLOO -I"$repo" -I"$shim" \
    -I"$torch_inc" -I"$torch_inc/torch/csrc/api/include" -I"$cuda" "$repo/$f"
  echo "ok: $f compiles with its CUDA / NCCL branches"
done
