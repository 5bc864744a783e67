#!/usr/bin/env bash
# Builds and tests hallo-cpp on Debian 13 "trixie" inside a debootstrap chroot, from the
# bookworm machine (needs root and deb.debian.org). Two roots, one per libtorch:
#
#   cpu   Debian's libtorch 2.6 (CPU) with trixie's FFmpeg 7.1, OpenCV 4.10, HDF5 1.14,
#         fmt 10, spdlog 1.15, gcc 14: the whole project set up by scripts/install-deps.sh,
#         built and tested (ctest) as on a fresh trixie machine.
#   cuda  libtorch-cuda 2.6 (contrib) with CUDA 12.4 and NCCL (non-free): the libtorch-only
#         targets built with HALLO_WITH_CUDA and USE_C10D_NCCL and linked against
#         libtorch_cuda, then their CPU tests run (there is no GPU here: the CUDA tests skip
#         and say so). This is the compile and link half of scripts/gpu/, without a GPU.
#
# usage: scripts/trixie/check.sh cpu|cuda [root|deps|build|test|all]   (default: all)
#   TRIXIE_DIR   where the roots go (default /work/trixie; cpu ~5 GB, cuda ~11 GB)
#   JOBS         parallel compile jobs (default: nproc)
#   CTEST_ARGS   extra ctest arguments for `cpu test` (e.g. "-R golden")
# Logs: <root>/check-<phase>.log and the terminal. The build folders (build-trixie/,
# build-trixie-cuda/) are inside the checkout, git-ignored.
#
# cuDNN: Debian ships it as a package that downloads NVIDIA's files at install time, which
# this machine cannot do. A stand-in package satisfies libtorch-cuda's dependency, and a stub
# libcudnn.so.9 (built here, the root's /opt/cudnn-stub) defines the functions libtorch_cuda
# imports, so the test binaries load; nothing can call them without a GPU.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
shared=$(cd "$repo/.." && pwd)/shared
kind=${1:?usage: check.sh cpu|cuda [root|deps|build|test|all]}
phase=${2:-all}
case $kind in cpu|cuda) ;; *) echo "check.sh: unknown kind '$kind' (cpu or cuda)" >&2; exit 2 ;; esac
TRIXIE_DIR=${TRIXIE_DIR:-/work/trixie}
root=$TRIXIE_DIR/$kind
JOBS=${JOBS:-$(nproc)}
[ "$(id -u)" = 0 ] || { echo "check.sh: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }

log() { echo "[trixie-$kind $(date +%T)] $*"; }

# Runs a command inside the root with a clean environment; output also in check-<phase>.log.
in_root() {
  local name=$1
  shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive OMP_WAIT_POLICY=PASSIVE bash -c "$*" 2>&1 | tee "$root/check-$name.log"
  return "${PIPESTATUS[0]}"
}

make_root() {
  if [ -f "$root/etc/debian_version" ] && grep -q '^13' "$root/etc/debian_version"; then
    log "root $root exists (Debian $(cat "$root/etc/debian_version"))"
    return 0
  fi
  if ! command -v debootstrap >/dev/null; then
    apt-get install -y -q --no-install-recommends debootstrap
  fi
  local components=main
  [ "$kind" = cuda ] && components=main,contrib,non-free
  log "debootstrap trixie ($components) into $root"
  mkdir -p "$TRIXIE_DIR"
  debootstrap --variant=minbase --components="$components" trixie "$root.tmp" http://deb.debian.org/debian
  mv "$root.tmp" "$root"
}

mounts() {
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mkdir -p "$root$repo" "$root$shared"
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
  mountpoint -q "$root$repo" || mount --bind "$repo" "$root$repo"
  if [ -d "$shared" ] && ! mountpoint -q "$root$shared"; then mount --bind "$shared" "$root$shared"; fi
}
unmount() {
  for m in "$root$shared" "$root$repo" "$root/dev" "$root/proc"; do
    mountpoint -q "$m" && umount "$m" || true
  done
}

deps() {
  if [ "$kind" = cpu ]; then
    in_root deps "bash '$repo/scripts/install-deps.sh'"
    return
  fi
  # The stand-in for the cuDNN downloader package (see the header).
  if ! chroot "$root" dpkg-query -W nvidia-cudnn >/dev/null 2>&1; then
    mkdir -p "$root/tmp/cudnn-standin/DEBIAN"
    printf '%s\n' "Package: nvidia-cudnn" "Version: 9.99.0~stand-in" "Architecture: amd64" \
      "Maintainer: hallo-cpp <none@localhost>" \
      "Description: stand-in for the cuDNN downloader (compile and link checks only)" \
      >"$root/tmp/cudnn-standin/DEBIAN/control"
    in_root standin "dpkg-deb --build /tmp/cudnn-standin /tmp/cudnn-standin.deb && dpkg -i /tmp/cudnn-standin.deb"
  fi
  in_root deps "apt-get update -q && echo 'nvidia-cuda-dev nvidia-cuda-dev/license-accepted boolean true' | debconf-set-selections &&
    apt-get install -y -q --no-install-recommends libtorch-cuda-dev libgloo-cuda-dev libnccl-dev nvidia-cuda-dev nvidia-cuda-toolkit \
      build-essential cmake ninja-build pkg-config libopenblas0-openmp libssl-dev nlohmann-json3-dev libfmt-dev \
      libspdlog-dev libcli11-dev libyaml-cpp-dev libgtest-dev libgmock-dev googletest libbenchmark-dev"
  # The stub libcudnn.so.9: every cudnn* symbol libtorch_cuda imports, as an empty function.
  in_root stub "set -e; mkdir -p /opt/cudnn-stub; cd /opt/cudnn-stub
    nm -D --undefined-only /usr/lib/x86_64-linux-gnu/libtorch_cuda.so | awk '\$2 ~ /^cudnn/ {sub(/@.*/, \"\", \$2); print \$2}' | sort -u >symbols.txt
    awk '{print \"void \" \$1 \"(void) {}\"}' symbols.txt >stub.c
    echo 'libcudnn.so.9 { global: *; };' >version.map  # libtorch_cuda imports them versioned
    gcc -shared -fPIC -Wl,-soname,libcudnn.so.9 -Wl,--version-script=version.map -o libcudnn.so.9 stub.c
    echo \"stub libcudnn.so.9: \$(wc -l <symbols.txt) functions\""
}

build() {
  if [ "$kind" = cpu ]; then
    in_root build "cd '$repo' && cmake -S . -B build-trixie && cmake --build build-trixie -j $JOBS"
  else
    # LD_LIBRARY_PATH: gtest_discover_tests runs the test binaries at build time.
    in_root build "cd '$repo' && export LD_LIBRARY_PATH=/opt/cudnn-stub && cmake -S . -B build-trixie-cuda -G Ninja \
        -DHALLO_WITH_MEDIA=OFF -DHALLO_FUZZ=OFF -DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,/opt/cudnn-stub \
        -DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath-link,/opt/cudnn-stub &&
      grep -q -- -DHALLO_WITH_CUDA=1 build-trixie-cuda/build.ninja && grep -q -- -DUSE_C10D_NCCL build-trixie-cuda/build.ninja &&
      echo 'configured: HALLO_WITH_CUDA and USE_C10D_NCCL are on' &&
      ninja -C build-trixie-cuda -j $JOBS hallo_tests hallo_train_tests hallo_dist_tests hallo bench_train bench_animate"
  fi
}

run_tests() {
  if [ "$kind" = cpu ]; then
    in_root test "cd '$repo/build-trixie' && ctest -j $JOBS --output-on-failure ${CTEST_ARGS:-}"
  else
    # The same selection as scripts/gpu/device-check.sh test, plus the whole CPU unit suite.
    in_root test "cd '$repo/build-trixie-cuda/tests' && export LD_LIBRARY_PATH=/opt/cudnn-stub && rc=0 &&
      for t in train/hallo_train_tests train/hallo_dist_tests hallo_tests; do ./\$t || rc=1; done; exit \$rc"
  fi
}

trap unmount EXIT
case $phase in
  root) make_root ;;
  deps) make_root; mounts; deps ;;
  build) mounts; build ;;
  test) mounts; run_tests ;;
  all) make_root; mounts; deps; build; run_tests ;;
  *) echo "check.sh: unknown phase '$phase' (root, deps, build, test or all)" >&2; exit 2 ;;
esac
log "$phase: done"
