#!/usr/bin/env bash
# Identity fine-tuning, end to end, after `make demo`: a second identity (the demo
# portrait mirrored and reframed: another face to the tiny net, which learned the
# unmirrored one; colours are kept because the demo's tiny VAE was fitted on that
# portrait's palette and cannot draw others), its videos prepared
# like any training data, the demo's trained stage-2 net fine-tuned on it with LoRA and in
# full (recipes/personalize/{lora,full}.yaml, the demo-scale versions of
# configs/train/personalize{_lora,}.yaml), then the same held-out speech of that identity
# rendered before and after, and scored against the identity's real held-out video:
# PSNR / SSIM of the frames, lip-sync correlation, held-out loss, adapter vs full size, time.
# Usage: recipes/personalize.sh [BUILD_DIR]   (DEMO_OUT / PERSONALIZE_OUT move the folders)
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HALLO="$ROOT/$BUILD/bin/hallo"
DEMO_OUT=${DEMO_OUT:-$ROOT/$BUILD/demo}
OUT=${PERSONALIZE_OUT:-$ROOT/$BUILD/personalize}
CFG="$ROOT/recipes/personalize"
BASE="$DEMO_OUT/model"
[ -x "$HALLO" ] || { echo "no $HALLO: run make demo first" >&2; exit 1; }
[ -f "$BASE/model.json" ] || { echo "no trained demo model at $BASE: run make demo first" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"
START=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
secs() { echo $(( $(date +%s) - $1 )); }

step "1. A second identity: the portrait mirrored and reframed; 7 talking-head videos"
ffmpeg -loglevel error -y -i "$ROOT/assets/astronaut.png" -vf "crop=440:440:20:10,hflip,eq=saturation=1.15" \
  "$OUT/identity_b.png"
"$HALLO" synth --portrait "$OUT/identity_b.png" --out "$OUT/videos" --count 7 --seconds 6 --size 256 --seed 11
# The last video is held out: never trained on, its audio drives the renders, its frames are the truth.
mkdir -p "$OUT/heldout_video"
mv "$OUT/videos/synth_0006.mp4" "$OUT/videos/synth_0006.json" "$OUT/heldout_video/"

step "2. Prepare the identity's shards (training videos, and the held-out one for the held-out loss)"
"$HALLO" prepare --input "$OUT/videos" --out "$OUT/shards" --config "$ROOT/recipes/demo/data.yaml"
"$HALLO" prepare --input "$OUT/heldout_video" --out "$OUT/shards_val" --config "$ROOT/recipes/demo/data.yaml"

step "3. Ground truth: the held-out video framed as prepare framed it (its first segment's crop box)"
read -r X Y W H T0 T1 < <(/usr/bin/python3 - "$OUT/shards_val" <<'PY'
import glob, h5py, json, os, sys
d = sys.argv[1]
index = json.load(open(os.path.join(d, "index.json")))
clips = []
for s in index["shards"]:
    with h5py.File(os.path.join(d, s["file"]), "r") as f:
        for cid in f["clips"]:
            a = f["clips"][cid].attrs
            m = json.loads(a["meta"])
            clips.append((m["segment"], a["t_start"], a["t_end"], m["crop_xywh"]))
seg = min(c[0] for c in clips)
first = [c for c in clips if c[0] == seg]
x, y, w, h = first[0][3]
print(x, y, w, h, min(c[1] for c in first), max(c[2] for c in first))
PY
)
RES=$(python3 -c 'import re,sys; print(re.search(r"^resolution:\s*(\d+)", open(sys.argv[1]).read(), re.M).group(1))' \
  "$ROOT/recipes/demo/data.yaml")
SRC="$OUT/heldout_video/synth_0006.mp4"
mkdir -p "$OUT/truth"
ffmpeg -loglevel error -y -ss "$T0" -to "$T1" -i "$SRC" -vf "crop=$W:$H:$X:$Y,scale=$RES:$RES:flags=area" -an \
  -c:v libx264 -crf 12 -pix_fmt yuv420p "$OUT/truth/heldout.mp4"
ffmpeg -loglevel error -y -ss "$T0" -to "$T1" -i "$SRC" -vn -ac 1 -ar 16000 "$OUT/heldout_speech.wav"
ffmpeg -loglevel error -y -ss "$T0" -i "$SRC" -vf "crop=$W:$H:$X:$Y,scale=$RES:$RES:flags=area" -frames:v 1 \
  "$OUT/heldout_ref.png"
echo "held-out segment $T0-$T1 s, crop ${W}x${H}+$X+$Y -> $OUT/truth/heldout.mp4"

step "4. Fine-tune with LoRA (adapters only; the base net stays bitwise frozen)"
T=$(date +%s)
"$HALLO" train --config "$CFG/lora.yaml" --set "init.net=$BASE" --set "data.shards=[$OUT/shards]" \
  --set "val.shards=$OUT/shards_val" --out "$OUT/lora"
LORA_S=$(secs "$T")
"$HALLO" lora info "$OUT/lora/final_lora.safetensors"

step "5. Fine-tune in full (the denoising UNet, audio projection, reference attention)"
T=$(date +%s)
"$HALLO" train --config "$CFG/full.yaml" --set "init.net=$BASE" --set "data.shards=[$OUT/shards]" \
  --set "val.shards=$OUT/shards_val" --out "$OUT/full"
FULL_S=$(secs "$T")

step "6. Render the held-out speech from the held-out first frame: before, LoRA, full"
for m in base lora full; do
  case $m in base) MODEL=$BASE ;; lora) MODEL=$OUT/lora/final ;; full) MODEL=$OUT/full/final ;; esac
  mkdir -p "$OUT/render_$m"
  "$HALLO" animate --model "$MODEL" --ref "$OUT/heldout_ref.png" --audio "$OUT/heldout_speech.wav" \
    --out "$OUT/render_$m/heldout.mp4" --config "$ROOT/recipes/demo/animate.yaml"
done

step "7. Score against the identity's real held-out video"
for m in base lora full; do
  # A metric that fails (no face found for lip-sync) is "n/a" in the table; the rest still count.
  "$HALLO" eval --generated "$OUT/render_$m" --real "$OUT/truth" --metrics psnr,ssim,lipsync \
    --out "$OUT/eval_$m.json" --no-cache >/dev/null || echo "(eval of $m: some metrics failed, see $OUT/eval_$m.json)"
done

step "Results"
python3 - "$OUT" "$BASE" "$LORA_S" "$FULL_S" "$(secs "$START")" <<'PY' | tee "$OUT/report.md"
import json, os, sys
out, base, lora_s, full_s, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def heldout(run):
    h = [json.loads(l) for l in open(os.path.join(out, run, "scalars.jsonl")) if "heldout_loss" in l]
    return h[0]["heldout_loss"], min(e["heldout_loss"] for e in h)
def score(m):
    v = json.load(open(os.path.join(out, f"eval_{m}.json")))["videos"][0]
    return v.get("psnr"), v.get("ssim"), v.get("lipsync_corr")
def mib(paths):
    return sum(os.path.getsize(p) for p in paths) / 2**20
full_size = mib([os.path.join(base, f) for f in ("net.frozen.safetensors", "net.trainable.safetensors")])
tuned_full = mib([os.path.join(out, "full", "final", "net.trainable.safetensors")])
lora_size = mib([os.path.join(out, "lora", "final_lora.safetensors")])
l0, l_lora = heldout("lora")
_, l_full = heldout("full")
rows = [("before (demo net)", score("base"), l0, "-", full_size, "-"),
        ("LoRA fine-tuned", score("lora"), l_lora, f"{lora_size:.2f} MiB adapters", full_size, f"{lora_s} s"),
        ("full fine-tuned", score("full"), l_full, f"{tuned_full:.2f} MiB trained weights", full_size, f"{full_s} s")]
print(f"# Identity fine-tuning on a second identity ({total} s in all)\n")
print("| model | PSNR (dB) | SSIM | lip-sync corr | held-out loss | what it adds | time |")
print("|---|---|---|---|---|---|---|")
for name, (p, s, c), loss, size, _, t in rows:
    f = lambda x, d: "n/a" if x is None else f"{x:.{d}f}"  # noqa: E731
    print(f"| {name} | {f(p, 2)} | {f(s, 4)} | {f(c, 3)} | {loss:.4f} | {size} | {t} |")
print(f"\nfull net: {full_size:.2f} MiB; held-out loss margin on the identity's held-out clip: "
      f"LoRA {l0 - l_lora:+.4f} ({(l0 - l_lora) / l0:+.1%}), full {l0 - l_full:+.4f} ({(l0 - l_full) / l0:+.1%})")
(pb, sb, _), (pl, sl, _), (pf, sf, _) = score("base"), score("lora"), score("full")
better = all(x is not None for x in (pb, pl, pf)) and pl > pb and pf > pb
margin_ok = l_lora < 0.5 * l0 and l_full < 0.5 * l0
print(f"fine-tuned better on the held-out frames (PSNR): {'YES' if better else 'NO'}; "
      f"held-out loss at least halved: {'YES' if margin_ok else 'NO'}")
print(f"\nfolders: {out}/lora (final/, final_lora.safetensors), {out}/full, renders {out}/render_*/heldout.mp4, "
      f"truth {out}/truth/heldout.mp4")
sys.exit(0 if better and margin_ok else 1)  # the recipe is also the check that fine-tuning works
PY
