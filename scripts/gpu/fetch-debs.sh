#!/usr/bin/env bash
# Run on this (CPU) machine before a GPU check: downloads, without installing, the
# Debian packages of the header and small libraries the libtorch-only build needs
# (the GPU machine has CUDA, Python torch, CMake and a compiler, nothing else, and
# cannot download). They travel with the working tree as .gpu-debs/ (git-ignored;
# `carry` it) and device-check.sh unpacks them there.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.gpu-debs
mkdir -p "$dest"
pkgs=(nlohmann-json3-dev libfmt-dev libfmt9 libspdlog-dev libspdlog1.10 libcli11-dev libyaml-cpp-dev libyaml-cpp0.7
      libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian libgloo-dev)
(cd "$dest" && apt-get download "${pkgs[@]}")
du -sh "$dest"
