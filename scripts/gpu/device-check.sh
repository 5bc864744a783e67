#!/usr/bin/env bash
# The GPU check of hallo-cpp, prepared so that a lent GPU machine's few minutes go to
# measuring, not to setting up. Runs ON that machine (x86-64, CUDA, Python torch 2.x,
# CMake, ninja, a compiler; no network), from the repository root:
#
#   bash scripts/gpu/device-check.sh configure  # the first part of build alone
#   bash scripts/gpu/device-check.sh build   # unpack .gpu-debs, configure against the
#                                            # Python torch (CUDA), build the libtorch-only
#                                            # targets (no media libraries)
#   bash scripts/gpu/device-check.sh test    # the CUDA tests (step, loop, autocast, SDPA,
#                                            # NCCL) and the 2.x build's CPU unit tests
#   bash scripts/gpu/device-check.sh bench   # issue 11 / 12 figures: anchor training step
#                                            # at 512^2 bf16, animate full512 bf16
#   bash scripts/gpu/device-check.sh all
#
# Before: scripts/gpu/fetch-debs.sh on the CPU machine (the deps travel as .gpu-debs/).
# Logs and a summary go to $OUT (the device tool brings them back). scripts/gpu/README.md
# has the exact `run` calls.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
B=${HALLO_GPU_BUILD:-build-gpu}
DEPS=${HALLO_GPU_DEPS:-/tmp/hallo-deps}
JOBS=${JOBS:-$(nproc)}
phase=${1:-all}

log() { echo "[$(date +%T)] $*" | tee -a "$OUT/summary.txt"; }
# Runs a step with a time limit, its output in $OUT/<name>.log, its tail and status in the summary.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  log "$name: exit $rc in $((SECONDS - t0)) s"
  tail -n 25 "$OUT/$name.log" | sed 's/^/    /' >>"$OUT/summary.txt"
  return $rc
}

unpack() {
  if [ ! -f "$DEPS/.done" ]; then
    ls .gpu-debs/*.deb >/dev/null 2>&1 || { log "no .gpu-debs/: run scripts/gpu/fetch-debs.sh here and carry .gpu-debs"; exit 2; }
    mkdir -p "$DEPS"
    for f in .gpu-debs/*.deb; do dpkg -x "$f" "$DEPS"; done
    touch "$DEPS/.done"
  fi
  export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

configure() {
  unpack
  nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
  python3 - >"$OUT/torch.txt" 2>&1 <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI)
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
print("cmake", torch.utils.cmake_prefix_path)
EOF
  log "$(tr '\n' ' ' <"$OUT/torch.txt")"
  local torch_cmake torch_dir nccl_inc gloo
  # TORCH_CMAKE_PREFIX / TORCH_DIR override the Python torch (a dry run of this script
  # against Debian's libtorch on the CPU machine).
  torch_cmake=${TORCH_CMAKE_PREFIX:-$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')}
  torch_dir=${TORCH_DIR:-$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')}
  # nccl.h of the wheel's NCCL (ProcessGroupNCCL.hpp includes it; its NCCL_* version macros
  # shape torch's classes, so the wheel's header, not another one).
  nccl_inc=$(python3 -c 'import importlib.util,os;s=importlib.util.find_spec("nvidia.nccl");print(os.path.join(list(s.submodule_search_locations)[0],"include") if s else "")' 2>/dev/null)
  if [ -z "$nccl_inc" ] || [ ! -f "$nccl_inc/nccl.h" ]; then
    nccl_inc=$(dirname "$(find "$(dirname "$torch_dir")/nvidia" /usr/include /usr/local/cuda/include -name nccl.h -not -path "*/torch/*" 2>/dev/null | head -1)" 2>/dev/null)
  fi
  log "nccl.h: ${nccl_inc:-not found}; $(nvcc --version 2>/dev/null | tail -1)"
  # A second's check that the c10d / CUDA headers compile with these paths, before a long build.
  local cuda_inc=${CUDA_HOME:-/usr/local/cuda}/include
  cat >"$OUT/headers.cpp" <<'EOF'
#if __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.h>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.h>
#else
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <c10/cuda/CUDACachingAllocator.h>
int main() {}
EOF
  if c++ -std=c++17 -fsyntax-only -DUSE_C10D_NCCL -I"$torch_dir/include" -I"$torch_dir/include/torch/csrc/api/include" \
      -I"$cuda_inc" ${nccl_inc:+-I"$nccl_inc"} "$OUT/headers.cpp" >"$OUT/headers.log" 2>&1; then
    log "headers: ProcessGroupNCCL and the CUDA allocator compile"
  else
    log "headers: ProcessGroupNCCL / CUDA headers do not compile with these paths (see headers.log); building anyway"
    head -5 "$OUT/headers.log" | sed 's/^/    /' >>"$OUT/summary.txt"
  fi
  # Gloo's headers as torch was built with them when it ships them, else Debian's.
  gloo=$torch_dir/include
  [ -f "$gloo/gloo/algorithm.h" ] || gloo=$DEPS/usr/include
  # The wheels' CUDA headers (cublas, cusparse, ...) as last-resort include paths, behind
  # the toolkit's own (-idirafter), for a machine whose toolkit lacks one of them.
  local fallback=""
  for d in "$(dirname "$torch_dir")"/nvidia/*/include; do [ -d "$d" ] && fallback="$fallback -idirafter $d"; done
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  step configure 300 cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHALLO_WITH_MEDIA=OFF -DHALLO_FUZZ=OFF \
    "-DCMAKE_PREFIX_PATH=$DEPS/usr;$torch_cmake" "-DGLOO_INCLUDE_DIR=$gloo" \
    "-DCMAKE_CXX_FLAGS=${nccl_inc:+-isystem $nccl_inc}$fallback" || return 1
  grep -E "hallo:|Gloo|CUDA|NCCL|Torch" "$OUT/configure.log" | head -20 >>"$OUT/summary.txt"
  grep -E "^(spdlog|fmt|yaml-cpp|GTest|benchmark|CLI11|nlohmann_json|Torch)_DIR|^GLOO_INCLUDE_DIR" "$B/CMakeCache.txt" >>"$OUT/summary.txt"
}

build() {
  configure || return 1
  step build 1500 ninja -C "$B" -j "$JOBS" hallo_tests hallo_train_tests hallo_dist_tests bench_train bench_animate
}

run_tests() {
  unpack
  local t=$B/tests
  # The GPU tests (each skips loudly where it cannot run) and their CPU neighbours.
  step test_cuda_train 400 "$t/train/hallo_train_tests" \
    --gtest_filter='TrainStep.*:TrainerLoop.*:GradCheckpoint.*:LossScaler.*:Device.*:Autocast.*:TrainConfig.*'
  step test_cuda_model 300 "$t/hallo_tests" --gtest_filter='Attention.*:Resnet.*'
  step test_dist 300 "$t/train/hallo_dist_tests"
  grep -hE "^\[  (SKIPPED|FAILED)|^\[  PASSED" "$OUT"/test_*.log >>"$OUT/summary.txt"
  # libtorch 2.x on the CPU: the rest of the unit tests (goldens skip: ../shared is not here).
  step test_unit_2x 300 "$t/hallo_tests"
}

run_bench() {
  unpack
  local bin=$B/bin
  step bench_train_tiny 300 "$bin/bench_train" --tiny --device cuda --tiny-steps 5
  step bench_train_tiny_bf16 300 "$bin/bench_train" --tiny --device cuda --mixed-precision bf16 --tiny-steps 5
  # Issue 12: the full-size stage-2 step (512^2, 14 + 2 frames, batch 1), bf16 + checkpointing.
  step bench_train_anchor512 500 "$bin/bench_train" --anchor --device cuda --mixed-precision bf16 --size 512 \
    --frames 14 --motion 2 --variants ckpt-stored,ckpt-vae --steps 3
  # ... with the frozen weights in bf16 (solver.frozen_dtype: 3.4 GB less)
  step bench_train_anchor512_frozen_bf16 300 "$bin/bench_train" --anchor --device cuda --mixed-precision bf16 \
    --frozen-dtype bf16 --size 512 --frames 14 --motion 2 --variants ckpt-stored --steps 3
  # Issue 11: animate at 512^2 (16 frames per clip), bf16 weights, SDPA; 40 steps extrapolated.
  step bench_animate512 600 "$bin/bench_animate" --cases full512 --device cuda --dtype bf16 --steps-a 2 --steps-b 4
}

case "$phase" in
  configure) configure ;;
  build) build ;;
  test) run_tests ;;
  bench) run_bench ;;
  all) build && { run_tests; run_bench; } ;;
  *) echo "usage: $0 configure|build|test|bench|all" >&2; exit 2 ;;
esac
log "phase $phase done"
