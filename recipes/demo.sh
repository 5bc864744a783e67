#!/usr/bin/env bash
# End-to-end demo of what exists today: weight I/O, one animated clip checked
# against upstream, the data pipeline (synth -> prepare -> shards), tiny two-stage
# training on those shards, and `hallo animate` with the trained model folder.
# Everything stays in build/demo/ (DEMO_OUT overrides); report.md lists it.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HALLO="$ROOT/$BUILD/bin/hallo"
FIX="$ROOT/tests/fixtures"
GOLDEN="$ROOT/../shared/golden"
OUT=${DEMO_OUT:-$ROOT/$BUILD/demo}
rm -rf "$OUT" && mkdir -p "$OUT"
START=$(date +%s)
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

DEMO="$ROOT/recipes/demo"
if "$HALLO" synth --help >/dev/null 2>&1; then
  step "7. Synthesize talking heads (astronaut portrait + espeak-ng speech) and bad inputs"
  "$HALLO" synth --out "$OUT/videos" --count 12 --seconds 6 --size 256 --variants
  ls "$OUT/videos" "$OUT/videos/variants" 2>/dev/null | head -40

  step "8. Prepare training shards: clean, clip, masks, log-mel audio features, HDF5"
  "$HALLO" prepare --input "$OUT/videos" --input "$OUT/videos/variants" --out "$OUT/shards" \
    --config "$DEMO/data.yaml"
  ls "$OUT/shards"

  if [ -f "$GOLDEN/wav2vec2.weights.safetensors" ]; then
    step "9. wav2vec2 audio features for one video (tiny golden wav2vec2 weights)"
    "$HALLO" audio-features "$OUT/videos/synth_0000.mp4" --out "$OUT/synth_0000.audio.safetensors" \
      --wav2vec2 "$GOLDEN/wav2vec2.weights.safetensors" --wav2vec2-config "$GOLDEN/wav2vec2.config.json" --windows
    "$HALLO" inspect "$OUT/synth_0000.audio.safetensors"
  fi
fi

heldout() {  # held-out loss before and after training, from the run's scalar log
  python3 -c 'import json,sys; h=[json.loads(l) for l in open(sys.argv[1]) if "heldout_loss" in l]; print("%s %.4f (step %d) -> %.4f (step %d)" % (sys.argv[2], h[0]["heldout_loss"], h[0]["step"], h[-1]["heldout_loss"], h[-1]["step"]))' "$1/scalars.jsonl" "$2"
}
if [ -d "$OUT/shards" ]; then
  SHARDS="data.shards=[$OUT/shards]"
  step "10. Fit the tiny VAE on the shards' frames (stage vae: reconstruction + KL)"
  "$HALLO" train --config "$DEMO/vae.yaml" --set "$SHARDS" --out "$OUT/vae"
  heldout "$OUT/vae" "held-out |x - x_hat|"

  step "11. Train tiny stage 1 (reference net + denoising UNet) with the fitted VAE"
  "$HALLO" train --config "$DEMO/stage1.yaml" --set "$SHARDS" --set "vae_model_path=$OUT/vae/final" --out "$OUT/stage1"
  heldout "$OUT/stage1" "held-out loss"

  step "12. Train tiny stage 2 from stage 1's model folder (audio + motion modules)"
  "$HALLO" train --config "$DEMO/stage2.yaml" --set "$SHARDS" --set "stage1_ckpt_dir=$OUT/stage1/final" \
    --set "vae_model_path=$OUT/stage1/final/vae" --out "$OUT/stage2"
  heldout "$OUT/stage2" "held-out loss"
  ln -sfn stage2/final "$OUT/model"

  step "13. Animate a held-out portrait crop with held-out speech, and the shuffled-audio control"
  # Held out: a mirrored, shifted crop of the portrait (training saw only the unmirrored
  # face) and a sentence no training video speaks.
  ffmpeg -loglevel error -y -i "$ROOT/assets/astronaut.png" -vf "crop=420:420:30:0,hflip" "$OUT/heldout_portrait.png"
  espeak-ng -v en -s 150 -w "$OUT/heldout_speech.wav" \
    "This sentence was never heard in training. Watch the lips open and close with every word."
  "$HALLO" animate --model "$OUT/model" --ref "$OUT/heldout_portrait.png" --audio "$OUT/heldout_speech.wav" \
    --out "$OUT/talk.mp4" --config "$DEMO/animate.yaml"
  "$HALLO" animate --model "$OUT/model" --ref "$OUT/heldout_portrait.png" --audio "$OUT/heldout_speech.wav" \
    --out "$OUT/control_shuffled.mp4" --config "$DEMO/animate.yaml" --shuffle-audio 10

  step "14. Lip-sync score: mouth opening vs loudness, best lag within +-3 frames"
  "$HALLO" eval --generated "$OUT/talk.mp4" --generated "$OUT/control_shuffled.mp4" --metrics lipsync \
    --out "$OUT/lipsync.json"
fi

step "Results"
SCORES=$(python3 - "$OUT/lipsync.json" <<'PY' 2>/dev/null || true
import json, sys
v = {e["generated"].rsplit("/", 1)[-1]: e for e in json.load(open(sys.argv[1]))["videos"]}
t, c = v["talk.mp4"]["lipsync_corr"], v["control_shuffled.mp4"]["lipsync_corr"]
ok = t >= 0.5 and t - c >= 0.3
print(f"| talk.mp4 (held-out speech) | {t:.3f} | {v['talk.mp4']['lipsync_lag']:+d} |")
print(f"| control_shuffled.mp4 (same speech, features shuffled in 0.4 s blocks) | {c:.3f} | {v['control_shuffled.mp4']['lipsync_lag']:+d} |")
print()
print(f"Lips follow the audio: {'YES' if ok else 'NO'} (target: >= 0.5 and >= 0.3 above the control; margin {t - c:+.3f})")
PY
)
{
  echo "# hallo-cpp demo ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(( $(date +%s) - START )) s)"
  echo
  if [ -n "$SCORES" ]; then
    echo "| video | lip-sync correlation | lag (frames) |"
    echo "|---|---|---|"
    echo "$SCORES"
    echo
  fi
  echo "- shards: $OUT/shards"
  echo "- training runs: $OUT/vae, $OUT/stage1, $OUT/stage2 (scalars.jsonl, TensorBoard events)"
  echo "- model folder: $OUT/model (\`hallo animate --model $OUT/model ...\`)"
  [ -f "$OUT/talk.mp4" ] && echo "- animated video: $OUT/talk.mp4; control: $OUT/control_shuffled.mp4"
  [ -d "$OUT/vae" ] && echo "- VAE: $(heldout "$OUT/vae" "held-out |x - x_hat|")"
  [ -d "$OUT/stage1" ] && echo "- stage 1: $(heldout "$OUT/stage1" "held-out loss")"
  [ -d "$OUT/stage2" ] && echo "- stage 2: $(heldout "$OUT/stage2" "held-out loss")"
  echo
  echo "Scale it up: recipes/demo/*.yaml (resolution, steps, network widths). Next: recipes/personalize.sh"
  echo "fine-tunes this model on a second identity (LoRA and full); \`hallo eval --metrics fid,fvd,sync,...\`"
  echo "scores against real videos (eval/README.md)."
} > "$OUT/report.md"
cat "$OUT/report.md"
