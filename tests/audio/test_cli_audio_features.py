#!/usr/bin/env python3
"""`hallo audio-features` as a user runs it: espeak-ng speech and an ffmpeg mp4 in,
.h5 / .safetensors out (read back with h5py and the stdlib reader tests/cli/st.py);
wav2vec2 from a HF folder holding a CTC-style pytorch_model.bin built here from the
golden weights; bad inputs fail with the path named and leave no file behind.

usage: test_cli_audio_features.py HALLO GOLDEN_DIR     (exit 77: tools missing)
"""
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import st  # noqa: E402

hallo, golden = sys.argv[1], sys.argv[2]
for tool in ("espeak-ng", "ffmpeg"):
    if shutil.which(tool) is None:
        print(f"SKIP: {tool} not installed")
        sys.exit(77)
try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))


def run(*args):
    return subprocess.run([hallo, "audio-features", *map(str, args)], capture_output=True, text=True)


def features(src, out, *extra):
    """Runs the command; returns (emb, windows or None, attrs) read from `out`."""
    r = run(src, "--out", out, *extra)
    if r.returncode != 0:
        check(f"audio-features {os.path.basename(src)} -> {os.path.basename(out)}", False, r.stderr)
        return None, None, {}
    if out.endswith(".h5"):
        with h5py.File(out, "r") as f:
            emb = f["audio_emb"][()]
            win = f["audio_emb_windows"][()] if "audio_emb_windows" in f else None
            attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
        return emb, win, attrs
    meta, tensors = st.read(out)
    def arr(name):
        dtype, shape, raw = tensors[name]
        assert dtype == "F32", dtype
        return np.frombuffer(raw, dtype="<f4").reshape(shape)
    return arr("audio_emb"), (arr("audio_emb_windows") if "audio_emb_windows" in tensors else None), meta


def wav_seconds(path):
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def decoded_seconds(path):
    """Audio length as libav decodes it at 16 kHz (the ffmpeg CLI uses the same decoders)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return len(raw) / 4 / 16000


def leftovers(d, keep):
    return sorted(set(os.listdir(d)) - set(keep))


with tempfile.TemporaryDirectory() as tmp:
    speech = os.path.join(tmp, "speech.wav")
    subprocess.run(["espeak-ng", "-w", speech, "Hello, this is a short test of the audio features."],
                   check=True, capture_output=True)
    seconds = wav_seconds(speech)
    n = math.ceil(seconds * 25)

    # 1. Log-mel (no weights given) to .h5: [N, 1, 80], N = ceil(s * 25), metadata attributes.
    h5 = os.path.join(tmp, "speech.h5")
    emb, win, attrs = features(speech, h5)
    if emb is not None:
        check("h5 shape [N, 1, 80]", emb.shape == (n, 1, 80), f"{emb.shape} vs N={n} ({seconds:.3f} s)")
        check("h5 dtype float32", emb.dtype == np.float32, emb.dtype)
        check("h5 finite, not constant", np.isfinite(emb).all() and emb.std() > 0.1, emb.std())
        check("no windows unless asked", win is None)
        check("attr extractor", attrs.get("extractor", "").startswith("logmel"), attrs)
        check("attr audio_frames", attrs.get("audio_frames") == str(n), attrs)
        check("attr fps", float(attrs.get("fps", "nan")) == 25.0, attrs)
        check("attr sample_rate", attrs.get("sample_rate") == "16000", attrs)
        check("attr window_radius", attrs.get("window_radius") == "2", attrs)
        check("attr source", attrs.get("source") == speech, attrs)
        check("attr vocal_separation empty", attrs.get("vocal_separation") == "", attrs)
        # Speech and pauses: loud frames are far above the quiet ones.
        energy = emb[:, 0, :].mean(axis=1)
        check("speech frames louder than pauses", energy.max() - energy.min() > 3.0, (energy.min(), energy.max()))

    # 2. The same features through .safetensors, header parsed independently.
    sf = os.path.join(tmp, "speech.safetensors")
    emb_st, _, meta = features(speech, sf)
    if emb is not None and emb_st is not None:
        check("safetensors == h5", emb_st.shape == emb.shape and np.array_equal(emb_st, emb))
        check("safetensors metadata == h5 attrs", meta == attrs, (meta, attrs))

    # 3. --windows: [N, 5, 1, 80], row i holds frames i-2..i+2 clamped to the ends.
    wh5 = os.path.join(tmp, "windows.h5")
    emb_w, win, _ = features(speech, wh5, "--windows")
    if emb_w is not None:
        check("windows shape [N, 5, 1, 80]", win is not None and win.shape == (n, 5, 1, 80),
              None if win is None else win.shape)
        if win is not None and win.shape == (n, 5, 1, 80):
            idx = np.clip(np.arange(n)[:, None] + np.arange(-2, 3)[None, :], 0, n - 1)
            check("windows are clamped neighbours", np.array_equal(win, emb_w[idx]))
        wst = os.path.join(tmp, "windows.safetensors")
        _, win_st, _ = features(speech, wst, "--windows")
        check("windows in safetensors too", win_st is not None and np.array_equal(win_st, win))

    # 4. --clip-length pads N up to a multiple; audio_frames keeps the unpadded count.
    ch5 = os.path.join(tmp, "clip.h5")
    emb_c, _, attrs_c = features(speech, ch5, "--clip-length", 16)
    if emb_c is not None and emb is not None:
        padded = (n + 15) // 16 * 16
        check("clip-length pads N", emb_c.shape == (padded, 1, 80) and padded > n, (emb_c.shape, n))
        check("clip-length keeps audio_frames", attrs_c.get("audio_frames") == str(n), attrs_c)
        # Padding appends silence: frames well before the end are unchanged, padded ones are quiet.
        check("clip-length leaves early frames", np.allclose(emb_c[:n - 2], emb[:n - 2], atol=1e-5))
        check("padded frames are silent", emb_c[n + 1:].max() <= emb.min() + 1e-3, (emb_c[n + 1:].max(), emb.min()))
    ffps = os.path.join(tmp, "fps30.h5")
    emb_f, _, attrs_f = features(speech, ffps, "--fps", 30)
    if emb_f is not None:
        check("--fps 30 frame count", emb_f.shape[0] == math.ceil(seconds * 30), (emb_f.shape, seconds))
        check("--fps recorded", float(attrs_f.get("fps", "nan")) == 30.0, attrs_f)

    # 5. An mp4 with an AAC track: the audio stream is decoded; a 440 Hz tone peaks in a
    #    lower mel band than an 880 Hz one.
    peaks = {}
    for hz in (440, 880):
        mp4 = os.path.join(tmp, f"clip{hz}.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=25:duration=2",
                        "-f", "lavfi", "-i", f"sine=frequency={hz}:sample_rate=44100:duration=2",
                        "-c:v", "mpeg4", "-c:a", "aac", "-shortest", mp4], check=True, capture_output=True)
        emb_v, _, attrs_v = features(mp4, os.path.join(tmp, f"clip{hz}.h5"))
        if emb_v is None:
            continue
        nv = math.ceil(decoded_seconds(mp4) * 25)
        check(f"mp4 {hz} Hz shape", emb_v.shape == (nv, 1, 80) and 50 <= nv <= 52, (emb_v.shape, nv))
        check(f"mp4 {hz} Hz audio_frames", attrs_v.get("audio_frames") == str(nv), attrs_v)
        peaks[hz] = int(np.argmax(emb_v[5:-5, 0, :].mean(axis=0)))
    if len(peaks) == 2:
        check("tone peaks in the right mel band", 0 < peaks[440] < peaks[880], peaks)

    # 6. wav2vec2: a HF folder with a Wav2Vec2ForCTC-style pytorch_model.bin equals the golden file.
    gw = os.path.join(golden, "wav2vec2.weights.safetensors")
    gc = os.path.join(golden, "wav2vec2.config.json")
    have_torch = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
    if not (os.path.exists(gw) and os.path.exists(gc)):
        print(f"skip wav2vec2 checks: no golden in {golden}")
    elif not have_torch:
        print("skip wav2vec2 checks: python without torch")
    else:
        folder = os.path.join(tmp, "wav2vec2-ctc")
        os.makedirs(folder)
        shutil.copy(gc, os.path.join(folder, "config.json"))
        script = (
            "import sys, torch\n"
            f"sys.path.insert(0, {os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cli')!r})\n"
            "import st\n"
            "_, t = st.read(sys.argv[1])\n"
            "dt = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I64': torch.int64}\n"
            "sd = {'wav2vec2.' + k: torch.frombuffer(bytearray(raw), dtype=dt[d]).reshape(s).clone()\n"
            "      for k, (d, s, raw) in t.items()}\n"
            "h = sd['wav2vec2.encoder.layer_norm.weight'].numel()\n"
            "torch.manual_seed(0)\n"
            "sd['lm_head.weight'] = torch.randn(32, h)\n"
            "sd['lm_head.bias'] = torch.randn(32)\n"
            "torch.save(sd, sys.argv[2])\n")
        subprocess.run([sys.executable, "-c", script, gw, os.path.join(folder, "pytorch_model.bin")], check=True)
        e_dir, _, a_dir = features(speech, os.path.join(tmp, "w2v_dir.h5"), "--wav2vec2", folder)
        e_file, _, a_file = features(speech, os.path.join(tmp, "w2v_file.h5"), "--wav2vec2", gw,
                                     "--wav2vec2-config", gc)
        if e_dir is not None and e_file is not None:
            check("wav2vec2 shape [N, 4, 32]", e_dir.shape == (n, 4, 32), e_dir.shape)
            check("wav2vec2 CTC folder == golden file", e_dir.shape == e_file.shape and np.array_equal(e_dir, e_file),
                  float(np.abs(e_dir - e_file).max()) if e_dir.shape == e_file.shape else e_dir.shape)
            check("wav2vec2 extractor attr", a_dir.get("extractor", "").startswith("wav2vec2:all:4x32"), a_dir)
            check("wav2vec2 features vary", np.isfinite(e_dir).all() and e_dir.std() > 1e-3)
            e_last, _, a_last = features(speech, os.path.join(tmp, "w2v_last.safetensors"), "--wav2vec2", folder,
                                         "--layers", "last", "--clip-length", 4)
            if e_last is not None:
                padded = (n + 3) // 4 * 4
                check("--layers last shape", e_last.shape == (padded, 1, 32), e_last.shape)
                check("--layers last recorded", a_last.get("extractor", "").startswith("wav2vec2:last:1x32"), a_last)
            e_sel, _, _ = features(speech, os.path.join(tmp, "w2v_sel.h5"), "--wav2vec2", folder, "--layers", "1,3")
            if e_sel is not None:
                check("--layers 1,3 picks those layers", np.allclose(e_sel, e_dir[:, [0, 2]], atol=1e-6))

    # 7. Bad inputs: exit 1, the offending path in stderr, nothing left in the output folder.
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)
    notes = os.path.join(bad, "notes.txt")
    with open(notes, "w") as f:
        f.write("this is not audio\n" * 20)
    missing = os.path.join(bad, "missing.wav")
    for name, args, path in [
        ("missing input", [missing, "--out", os.path.join(bad, "m.h5")], missing),
        ("text file as input", [notes, "--out", os.path.join(bad, "t.h5")], notes),
        ("text file to safetensors", [notes, "--out", os.path.join(bad, "t.safetensors")], notes),
        ("bad output extension", [speech, "--out", os.path.join(bad, "out.txt")], os.path.join(bad, "out.txt")),
        ("missing wav2vec2", [speech, "--out", os.path.join(bad, "w.h5"), "--wav2vec2", os.path.join(bad, "nope")],
         os.path.join(bad, "nope")),
        ("missing separator", [speech, "--out", os.path.join(bad, "s.h5"), "--separator",
                               os.path.join(bad, "sep.onnx")], os.path.join(bad, "sep.onnx")),
        ("missing config", [speech, "--out", os.path.join(bad, "c.h5"), "--config", os.path.join(bad, "a.yaml")],
         os.path.join(bad, "a.yaml")),
    ]:
        r = run(*args)
        check(f"{name}: exit 1", r.returncode == 1, f"exit {r.returncode}: {r.stderr}")
        check(f"{name}: path in stderr", path in r.stderr, r.stderr)
        check(f"{name}: no output left", leftovers(bad, ["notes.txt"]) == [], leftovers(bad, ["notes.txt"]))

    # A failed run does not clobber an existing output.
    keep = os.path.join(bad, "keep.h5")
    with open(keep, "wb") as f:
        f.write(b"previous contents")
    r = run(notes, "--out", keep)
    with open(keep, "rb") as f:
        check("failed run keeps the old output", r.returncode == 1 and f.read() == b"previous contents")
    check("failed run leaves no temp file", leftovers(bad, ["notes.txt", "keep.h5"]) == [],
          leftovers(bad, ["notes.txt", "keep.h5"]))

print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if results and all(results) else 1)
