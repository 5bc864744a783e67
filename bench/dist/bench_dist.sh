#!/usr/bin/env bash
# Data parallel on CPU: tiny stage 2 with 2 Gloo ranks x 1 thread vs 1 process x 2
# threads at the same global batch (2 x train_bs), in the same run, alternating the
# variants; median samples/s over the timed steps (the first WARMUP skipped), the
# ratio, and how much of the gradient all-reduce backward hid.
#   bench/dist/bench_dist.sh [BUILD_DIR] [STEPS] [REPEATS]
set -euo pipefail
BUILD=${1:-build}
STEPS=${2:-30}
REPEATS=${3:-2}
WARMUP=5
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HALLO="$ROOT/$BUILD/bin/hallo"
W=$(mktemp -d /tmp/hallo_bench_dist.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$HALLO" synth --out "$W/videos" --count 4 --seconds 3 --size 256 >/dev/null 2>&1
"$HALLO" prepare --input "$W/videos" --out "$W/shards" --config "$ROOT/configs/data/tiny_logmel.yaml" >/dev/null 2>&1
BS=$(sed -n 's/^  train_bs: *//p' "$ROOT/configs/train/tiny_stage2.yaml")
COMMON=(train --config "$ROOT/configs/train/tiny_stage2.yaml" --set "data.shards=[$W/shards]"
        --set stage1_ckpt_dir= --set vae_model_path=
        --set "model.vae={block_out_channels: [32, 32, 64, 64], norm_num_groups: 8}"
        --set "model.unet={block_out_channels: [32, 32, 64, 64], norm_num_groups: 8, cross_attention_dim: 40, attention_head_dim: 8, layers_per_block: 2}"
        --set checkpointing_steps=0 --set val.loss_steps=0 --max-steps "$STEPS")
summary() {  # median samples/s, median all-reduce wait and step time, over the timed steps
  python3 - "$1/scalars.jsonl" "$WARMUP" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l][int(sys.argv[2]):]
med = lambda k: statistics.median(r[k] for r in rows) if rows and k in rows[0] else 0.0
print(f"{med('samples_per_s'):.3f} {med('allreduce_wait_s'):.4f} {med('step_time_s'):.4f} {rows[-1].get('buckets_started_in_backward', 0):.2f}")
PY
}
echo "threads: 2 ranks x 1 vs 1 process x 2; global batch $((2 * BS)); $STEPS steps ($WARMUP warm-up), $REPEATS repeats"
for i in $(seq "$REPEATS"); do
  HALLO_THREADS=2 "$HALLO" "${COMMON[@]}" --set "data.train_bs=$((2 * BS))" --out "$W/one$i" >/dev/null 2>&1
  "$HALLO" --threads 1 "${COMMON[@]}" --nproc 2 --out "$W/two$i" >/dev/null 2>&1
  # Small buckets: the tiny net's ~5 MB of trainable gradients fill one 25 MiB bucket,
  # which can only start after backward; 0.5 MiB buckets start while it runs.
  "$HALLO" --threads 1 "${COMMON[@]}" --nproc 2 --bucket-mb 0.5 --out "$W/small$i" >/dev/null 2>&1
  # ZeRO-2: each bucket's segments reduced to their owners only.
  "$HALLO" --threads 1 "${COMMON[@]}" --nproc 2 --bucket-mb 0.5 --set solver.zero_stage=2 --out "$W/zero$i" >/dev/null 2>&1
  read -r s1 _ t1 _ <<<"$(summary "$W/one$i")"
  read -r s2 wait t2 early <<<"$(summary "$W/two$i")"
  read -r s3 wait3 t3 early3 <<<"$(summary "$W/small$i")"
  read -r s4 wait4 t4 early4 <<<"$(summary "$W/zero$i")"
  echo "repeat $i: 1x2 threads $s1 samples/s ($t1 s/step) | 2 ranks x 1 thread $s2 samples/s ($t2 s/step), all-reduce wait $wait s/step, buckets started in backward $early | ratio $(python3 -c "print(f'{$s2/$s1:.2f}x')") | 0.5 MiB buckets: $s3 samples/s, wait $wait3 s/step, started in backward $early3 | ZeRO-2, 0.5 MiB: $s4 samples/s, wait $wait4 s/step, started in backward $early4"
done
