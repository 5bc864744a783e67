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

if [ -d "$OUT/shards" ]; then
  heldout() {  # held-out loss before and after training, from the run's scalar log
    python3 -c 'import json,sys; h=[json.loads(l) for l in open(sys.argv[1]) if "heldout_loss" in l]; print("held-out loss %.4f (step %d) -> %.4f (step %d)" % (h[0]["heldout_loss"], h[0]["step"], h[-1]["heldout_loss"], h[-1]["step"]))' "$1/scalars.jsonl"
  }
  step "10. Train tiny stage 1 on the shards (random tiny networks, CPU)"
  "$HALLO" train --config "$ROOT/configs/train/tiny_stage1.yaml" --set "data.shards=[$OUT/shards]" \
    --set val.loss_steps=20 --out "$OUT/stage1" --max-steps 60
  heldout "$OUT/stage1"

  step "11. Train tiny stage 2 from stage 1's model folder (audio + motion modules)"
  "$HALLO" train --config "$ROOT/configs/train/tiny_stage2.yaml" --set "data.shards=[$OUT/shards]" \
    --set "stage1_ckpt_dir=$OUT/stage1/final" --set "vae_model_path=$OUT/stage1/final/vae" \
    --set val.loss_steps=20 --set val.validation_steps=40 --out "$OUT/stage2" --max-steps 40
  heldout "$OUT/stage2"
  ls "$OUT/stage2/final" "$OUT/stage2/validation"
  ln -sfn stage2/final "$OUT/model"

  step "12. Animate the portrait with new speech through the trained model folder"
  if command -v espeak-ng >/dev/null 2>&1; then
    espeak-ng -v en -s 150 -w "$OUT/heldout_speech.wav" \
      "This sentence was never heard in training, and it is longer than one clip."
  else
    cp "$OUT/videos/synth_0000.mp4" "$OUT/heldout_speech.mp4"
  fi
  SPEECH=$(ls "$OUT"/heldout_speech.* | head -1)
  "$HALLO" animate --model "$OUT/model" --ref "$ROOT/assets/astronaut.png" --audio "$SPEECH" \
    --out "$OUT/talk.mp4" --steps 10
  ls -l "$OUT/talk.mp4"
fi

step "Results"
{
  echo "# hallo-cpp demo ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(( $(date +%s) - START )) s)"
  echo
  echo "- shards: $OUT/shards"
  echo "- training runs: $OUT/stage1, $OUT/stage2 (scalars.jsonl, TensorBoard events, validation/)"
  echo "- model folder: $OUT/model (\`hallo animate --model $OUT/model ...\`)"
  [ -f "$OUT/talk.mp4" ] && echo "- animated video: $OUT/talk.mp4"
  [ -d "$OUT/stage1" ] && echo "- stage 1 $(heldout "$OUT/stage1")"
  [ -d "$OUT/stage2" ] && echo "- stage 2 $(heldout "$OUT/stage2")"
  echo
  echo "Coming next: a fitted tiny VAE and the lip-sync score of talk.mp4 against a shuffled-audio control;"
  echo "hallo eval (FID / FVD / Sync); multi-GPU training; identity fine-tuning."
} > "$OUT/report.md"
cat "$OUT/report.md"
