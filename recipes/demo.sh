#!/usr/bin/env bash
# End-to-end demo of what exists today: weight I/O, one animated clip checked
# against upstream, and the data pipeline (synth -> prepare -> shards).
# Later issues extend this into train -> animate -> eval.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HALLO="$ROOT/$BUILD/bin/hallo"
FIX="$ROOT/tests/fixtures"
GOLDEN="$ROOT/../shared/golden"
OUT=$(mktemp -d /tmp/hallo-demo.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Inspect a nested torch.save checkpoint (zip pickle, read without Python)"
"$HALLO" inspect "$FIX/nested_ckpt.ckpt"

step "2. Convert its state_dict to fp16 safetensors (--prefix selects and strips)"
"$HALLO" convert "$FIX/nested_ckpt.ckpt" "$OUT/model.safetensors" --prefix state_dict. --dtype f16
"$HALLO" inspect "$OUT/model.safetensors"

step "3. A legacy (pre-1.6) torch.save file with views sharing one storage"
"$HALLO" inspect "$FIX/legacy_views.pth"

step "4. A malicious pickle is refused by name; nothing runs, nothing is written"
if "$HALLO" convert "$FIX/malicious_os_system.pth" "$OUT/evil.safetensors"; then
  echo "ERROR: malicious file was accepted" >&2; exit 1
fi
test ! -e "$OUT/evil.safetensors" && echo "(no output file was created)"

if [ -f "$GOLDEN/hallo_pipeline.weights.safetensors" ]; then
  step "5. Split a net.pth-layout Hallo checkpoint into its denoising UNet"
  "$HALLO" convert "$GOLDEN/hallo_pipeline.weights.safetensors" "$OUT/denoising_unet.safetensors" --prefix denoising_unet.
  "$HALLO" inspect --json "$OUT/denoising_unet.safetensors" | python3 -c \
    'import json,sys; j=json.load(sys.stdin); print(j["tensor_count"], "tensors,", j["total_bytes"], "bytes; e.g.", j["tensors"][0]["name"])'
fi

if [ -f "$GOLDEN/hallo_pipeline.io.safetensors" ]; then
  step "6. Animate one clip with tiny Hallo weights and check it against upstream"
  "$HALLO" golden --dir "$GOLDEN" --name hallo_pipeline --out "$OUT/clip.safetensors" --check
  "$HALLO" inspect "$OUT/clip.safetensors"
fi

if "$HALLO" synth --help >/dev/null 2>&1; then
  step "7. Synthesize talking heads (astronaut portrait + espeak-ng speech) and bad inputs"
  "$HALLO" synth --out "$OUT/videos" --count 2 --seconds 3 --size 384 --variants
  ls "$OUT/videos" "$OUT/videos/variants" 2>/dev/null | head -30

  step "8. Prepare training shards: clean, clip, masks, log-mel audio features, HDF5"
  "$HALLO" prepare --input "$OUT/videos" --input "$OUT/videos/variants" --out "$OUT/shards" \
    --config "$ROOT/configs/data/tiny_logmel.yaml"
  ls "$OUT/shards"

  if [ -f "$GOLDEN/wav2vec2.weights.safetensors" ]; then
    step "9. wav2vec2 audio features for one video (tiny golden wav2vec2 weights)"
    "$HALLO" audio-features "$OUT/videos/synth_0000.mp4" --out "$OUT/synth_0000.audio.safetensors" \
      --wav2vec2 "$GOLDEN/wav2vec2.weights.safetensors" --wav2vec2-config "$GOLDEN/wav2vec2.config.json" --windows
    "$HALLO" inspect "$OUT/synth_0000.audio.safetensors"
  fi
fi

step "Coming next"
cat <<TXT
  hallo train (stage 1, stage 2, identity fine-tuning) on these shards   (next issues)
  hallo animate (long audio, mp4 out) on top of the one-clip pipeline
  hallo eval (FID / FVD / Sync)
TXT
