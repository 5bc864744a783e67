#!/usr/bin/env bash
# Wall time of `hallo eval` on ten 10-second 512^2 talking heads (generated vs real:
# two `hallo synth` sets with the same names), every network metric on the metric
# goldens' procedural weights (speed does not depend on the values) plus the
# weight-free ones. Run 1: cold (real set decoded and featurised, statistics
# cached); run 2: warm (real-set FID/FVD statistics from the cache; the paired
# metrics still decode the real videos). Prints the report's per-metric seconds.
#   bench/eval/bench_eval.sh BUILD_DIR [COUNT] [SECONDS] [SIZE]
set -euo pipefail
BUILD=$(cd "$1" && pwd)
COUNT=${2:-10} SECONDS_PER=${3:-10} SIZE=${4:-512}
HALLO="$BUILD/bin/hallo"
GOLDEN=${HALLO_GOLDEN_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/golden}
WORK=$(mktemp -d /tmp/hallo_bench_eval.XXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$HALLO" --quiet synth --out real --count "$COUNT" --seconds "$SECONDS_PER" --size "$SIZE" --seed 1 >/dev/null
"$HALLO" --quiet synth --out gen --count "$COUNT" --seconds "$SECONDS_PER" --size "$SIZE" --seed 2 >/dev/null
mkdir -p w
for n in fid_inception i3d syncnet; do "$HALLO" golden --dir "$GOLDEN" --name "$n" --weights-out "w/$n.safetensors" >/dev/null; done
METRICS=fid,fvd,sync,lipsync,lmd,psnr,ssim
for run in cold warm; do
  start=$(date +%s.%N)
  "$HALLO" --quiet eval --generated gen --real real --metrics "$METRICS" --weights-dir w --cache-dir cache \
    --out "$run.json" >/dev/null
  end=$(date +%s.%N)
  python3 - "$run" "$run.json" "$start" "$end" "$COUNT" "$SECONDS_PER" "$SIZE" <<'PY'
import json, sys
run, path, t0, t1, n, sec, size = sys.argv[1:]
r = json.load(open(path))
t = r.get("timing_s", {})
frames = sum(v["frames"] for v in r["videos"])
print(f"{run}: {float(t1) - float(t0):.1f} s wall for {n} x {sec} s videos at {size}^2 ({frames} generated frames); "
      + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(t.items()))
      + f"; FID {r['set']['fid']['value']:.3f} FVD {r['set']['fvd']['value']:.3f}")
PY
done
