#!/usr/bin/env bash
# Idempotent dependency installer for hallo-cpp on Debian bookworm (12) and trixie (13).
# Installs only what is missing; safe to run on every `make`.
#   HALLO_SKIP_DEPS=1      skip entirely (e.g. offline machines already set up)
#   HALLO_DEPS_MINIMAL=1   only what the libtorch core + tests need (no media/data libs)
set -euo pipefail

[ "${HALLO_SKIP_DEPS:-0}" = "1" ] && exit 0

# Core: libtorch + the small header libraries the core uses, the fast BLAS, test tools.
CORE_PKGS=(
  build-essential cmake pkg-config ccache
  libtorch-dev libopenblas0-openmp libgloo-dev libssl-dev
  nlohmann-json3-dev libfmt-dev libspdlog-dev libcli11-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  clang libclang-rt-dev
  python3-torch python3-numpy
)
# Media / data: optional CMake parts (video, faces, HDF5 shards, threading).
DATA_PKGS=(
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libsndfile1-dev libhdf5-dev libtbb-dev
  libopencv-dev opencv-data libdlib-dev libdlib-data
  libblas-dev liblapack-dev   # dlib's CMake target links libblas.so / liblapack.so (trixie's libdlib-dev omits them)
  espeak-ng sox ffmpeg libx264-dev
  python3-h5py
)

pkgs=("${CORE_PKGS[@]}")
[ "${HALLO_DEPS_MINIMAL:-0}" = "1" ] || pkgs+=("${DATA_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The public-domain portrait used by `hallo synth` (skimage's astronaut.png) comes
# from the Debian package's files, extracted without installing it.
fetch_assets() {
  [ "${HALLO_DEPS_MINIMAL:-0}" = "1" ] && return 0
  local dest="${HALLO_ASSETS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/assets}"
  [ -s "$dest/astronaut.png" ] && return 0
  local tmp; tmp="$(mktemp -d)"
  if (cd "$tmp" && apt-get download -q python3-skimage >/dev/null 2>&1); then
    dpkg -x "$tmp"/python3-skimage_*.deb "$tmp/x"
    local png; png="$(find "$tmp/x" -name astronaut.png | head -1)"
    if [ -n "$png" ]; then
      mkdir -p "$dest" && cp "$png" "$dest/astronaut.png.tmp" && mv "$dest/astronaut.png.tmp" "$dest/astronaut.png"
      echo "[deps] portrait asset: $dest/astronaut.png"
    fi
  else
    echo "[deps] warning: could not download python3-skimage for astronaut.png (synthetic data will be unavailable)" >&2
  fi
  rm -rf "$tmp"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all ${#pkgs[@]} packages present"
  fetch_assets
  exit 0
fi

echo "[deps] installing ${#missing[@]} missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are absent or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mtime -1 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fetch_assets
echo "[deps] done"
