#!/usr/bin/env bash
# ctest wrapper: hallo golden --check on one golden; skips (77) when the golden
# folder is absent (a fresh clone outside CI has no ../shared/golden).
set -u
hallo=$1 dir=$2 name=$3
if [ ! -f "$dir/$name.io.safetensors" ]; then
  echo "SKIP: $dir/$name.* not found (golden folder absent)"
  exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$hallo" golden --dir "$dir" --name "$name" --out "$out/$name.out.safetensors" --check
