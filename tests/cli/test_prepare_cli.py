#!/usr/bin/env python3
"""`hallo synth` + `hallo prepare` through the real binary: the report's outcome
for every good and bad input, shards readable with plain h5py (checksums, JPEG
frames, mask levels), resume after a real SIGKILL mid-run, and clean failures on
bad command lines.

usage: test_prepare_cli.py HALLO REPO_ROOT   (exit 77 = skipped: a tool is missing)
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SYSTEM_PYTHON, check, finish, require, results, runner  # noqa: E402

hallo, repo = sys.argv[1], sys.argv[2]
config = os.path.join(repo, "configs", "data", "tiny_logmel.yaml")
portrait = os.path.join(repo, "assets", "astronaut.png")
system_python = SYSTEM_PYTHON

# The rejection each bad input must get (tests/prepare/test_prepare.cpp agrees).
BAD_REASONS = {"bad_truncated.mp4": "unreadable", "bad_zero.mp4": "empty file",
               "bad_truncated_faststart.mp4": "truncated", "bad_text.mp4": "unreadable",
               "bad_noaudio.mp4": "no audio stream", "bad_noface.mp4": "no face",
               "bad_twofaces.mp4": "two faces", "bad_silent.mp4": "silent"}
RESOLUTION = 128  # tiny_logmel.yaml


require(("espeak-ng", "ffmpeg"), portrait)
run = runner(hallo, 300)


def prepare_args(inputs, out, cfg=config):
    args = ["prepare"]
    for i in inputs:
        args += ["--input", i]
    return args + ["--out", out, "--config", cfg, "--jobs", "2"]


def load_json(path):
    with open(path) as f:
        return json.load(f)


def index_entries(dataset):
    """(shard file, clip entry) for every clip of index.json, in order."""
    index = load_json(os.path.join(dataset, "index.json"))
    return [(s["file"], c) for s in index["shards"] for c in s["clips"]]


def temp_files(dataset):
    return [p for p in glob.glob(os.path.join(dataset, "**", "*"), recursive=True) if ".tmp-" in p]


# Runs under /usr/bin/python3: every clip of every shard re-checksummed with
# read_with_h5py.py's helpers (the reader the format docs describe), each
# clip's frames written out as JPEG files, mask shapes per level reported.
H5_SCRIPT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import h5py
import read_with_h5py as r
dataset, out = sys.argv[2], sys.argv[3]
result = {}
for shard in sorted(f for f in os.listdir(dataset) if f.endswith(".h5")):
    with h5py.File(os.path.join(dataset, shard), "r") as f:
        for cid, g in f["clips"].items():
            frames, sums = g["frames"], g["frame_checksums"][()]
            jpegs = []
            for i in (0, len(frames) - 1):
                path = os.path.join(out, f"{cid}_{i}.jpg")
                with open(path, "wb") as fp:
                    fp.write(bytes(frames[i]))
                jpegs.append(path)
            masks = {k: [list(g[f"{k}_mask_{l}"].shape) if f"{k}_mask_{l}" in g else None
                         for l in range(5)] for k in ("lip", "face", "pose")}
            result[cid] = {
                "shard": shard,
                "num_frames": int(g.attrs["num_frames"]), "stored_frames": len(frames),
                "checksum_matches": r.clip_checksum(g) == int(g.attrs["checksum"]),
                "frame_checksums_match": all(r.fnv1a64(bytes(frames[i])) == int(sums[i])
                                             for i in range(len(frames))),
                "checksum": "%016x" % int(g.attrs["checksum"]),
                "face_region": list(g["face_region"].shape),
                "masks": masks, "jpegs": jpegs,
            }
json.dump(result, open(os.path.join(out, "h5.json"), "w"))
"""


def decode_jpeg(path):
    """(is a JPEG file, RGB bytes decoded by ffmpeg or None)."""
    with open(path, "rb") as f:
        magic = f.read(3)
    r = subprocess.run(["ffmpeg", "-v", "error", "-f", "image2", "-c:v", "mjpeg", "-i", path,
                        "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True)
    return magic == b"\xff\xd8\xff", (r.stdout if r.returncode == 0 else None)


def wait_and_kill(proc, out, timeout=300):
    """SIGKILLs the prepare run (its whole process group) once it has committed
    3 videos or a shard. Returns (still running when killed, journal lines, shards)."""
    journal = os.path.join(out, "prepare_journal.jsonl")
    index = os.path.join(out, "index.json")
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        lines = 0
        try:
            with open(journal) as f:
                lines = sum(1 for line in f if line.strip())
        except OSError:
            pass
        shards = 0
        try:
            shards = len(load_json(index).get("shards", []))
        except (OSError, ValueError):
            pass  # not there yet, or caught mid-replace
        if lines >= 3 or shards > 0:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return proc.returncode == -signal.SIGKILL, lines, shards
        time.sleep(0.01)
    proc.wait()
    return False, 0, 0


with tempfile.TemporaryDirectory(prefix="hallo_prepare_cli_") as tmp:
    videos = os.path.join(tmp, "D")
    variants = os.path.join(videos, "variants")
    r = run("synth", "--out", videos, "--count", "3", "--seconds", "3.9", "--size", "384", "--variants")
    check("synth exits 0", r.returncode == 0, r.stderr[-2000:])
    goods = sorted(os.path.basename(p) for p in glob.glob(os.path.join(videos, "synth_*.mp4")))
    check("synth wrote 3 videos", len(goods) == 3, goods)
    for bad in BAD_REASONS:
        check(f"synth wrote variants/{bad}", os.path.exists(os.path.join(variants, bad)))
    if not all(results):
        sys.exit(1)

    # 1. An uninterrupted run.
    s1 = os.path.join(tmp, "S1")
    cmd = prepare_args([videos, variants], s1)
    t0 = time.time()
    r = run(*cmd)
    full_seconds = time.time() - t0
    check("prepare exits 0", r.returncode == 0, r.stderr[-3000:])
    report = load_json(os.path.join(s1, "prepare_report.json"))
    by_file = {os.path.basename(v["video"]): v for v in report["videos"]}
    for good in goods:
        v = by_file.get(good, {})
        check(f"{good} accepted with >= 2 clips",
              v.get("status") == "accepted" and v.get("clips", 0) >= 2, v)
    for bad, reason in BAD_REASONS.items():
        v = by_file.get(bad, {})
        check(f"{bad} rejected: {reason}",
              v.get("status") == "rejected" and v.get("reason") == reason and v.get("clips") == 0, v)
    t = report["totals"]
    videos_seen = list(by_file.values())
    by_reason = {}
    for v in videos_seen:
        if v["status"] == "rejected":
            by_reason[v["reason"]] = by_reason.get(v["reason"], 0) + 1
    check("totals: video counts", t["videos"] == len(videos_seen) == len(goods) + len(BAD_REASONS) + 1
          and t["accepted"] == sum(v["status"] == "accepted" for v in videos_seen)
          and t["rejected"] == sum(v["status"] == "rejected" for v in videos_seen)
          and t["accepted"] + t["rejected"] + t["errors"] == t["videos"] and t["errors"] == 0, t)
    check("totals: clips", t["clips"] == sum(v["clips"] for v in videos_seen), t)
    check("totals: rejected by reason", t["videos_rejected_by_reason"] == by_reason,
          (t["videos_rejected_by_reason"], by_reason))
    check("totals: kept seconds", abs(t["seconds_kept"] - sum(v["kept_seconds"] for v in videos_seen)) < 1e-6
          and abs(t["hours_kept"] * 3600 - t["seconds_kept"]) < 1e-6 and t["seconds_kept"] > 0, t)
    with open(os.path.join(s1, "prepare_report.txt")) as f:
        text = f.read()
    check("prepare_report.txt non-empty and names reasons", text.strip() and "two faces" in text, text[:500])
    entries = index_entries(s1)
    check("index.json lists every reported clip", len(entries) == t["clips"],
          (len(entries), t["clips"]))

    # 2. The shards through plain h5py.
    h5_out = os.path.join(tmp, "h5")
    os.makedirs(h5_out)
    r = subprocess.run([system_python, "-c", H5_SCRIPT, os.path.join(repo, "tests", "shard"), s1, h5_out],
                       capture_output=True, text=True, timeout=300)
    check("h5py reads every shard", r.returncode == 0, r.stderr[-2000:])
    clips = load_json(os.path.join(h5_out, "h5.json")) if r.returncode == 0 else {}
    check("h5py sees the clips of index.json",
          sorted(clips) == sorted(c["id"] for _, c in entries), (sorted(clips), len(entries)))
    index_by_id = {c["id"]: (shard, c) for shard, c in entries}
    # The kill/resume below must cover the layout with remainder clips too.
    lengths = sorted(c.get("num_frames") for _, c in entries)
    check("whole 25-frame clips and at least one shorter remainder clip (>= 20 frames)",
          lengths and lengths[-1] == 25 and any(20 <= n < 25 for n in lengths), lengths)
    frame_bytes = RESOLUTION * RESOLUTION * 3
    want_masks = [[RESOLUTION >> (3 + l)] * 2 for l in range(4)] + [None]
    for cid, c in sorted(clips.items()):
        shard, entry = index_by_id.get(cid, (None, {}))
        check(f"{cid}: clip and frame checksums verify",
              c["checksum_matches"] and c["frame_checksums_match"] and c["checksum"] == entry.get("checksum")
              and c["shard"] == shard, (c, entry))
        check(f"{cid}: frames stored", c["stored_frames"] == c["num_frames"] == entry.get("num_frames"), c)
        decoded = [decode_jpeg(p) for p in c["jpegs"]]
        check(f"{cid}: frames decode to {RESOLUTION}x{RESOLUTION} JPEG",
              all(is_jpeg and rgb is not None and len(rgb) == frame_bytes for is_jpeg, rgb in decoded),
              [(j, None if b is None else len(b)) for j, b in decoded])
        check(f"{cid}: masks have 4 levels", c["face_region"] == [RESOLUTION] * 2 and
              all(c["masks"][k] == want_masks for k in ("lip", "face", "pose")), c["masks"])

    # 3. Resume after a real kill: same clips, order and checksums as S1, no temp files.
    s2 = os.path.join(tmp, "S2")
    cmd2 = prepare_args([videos, variants], s2)
    proc = subprocess.Popen([hallo, *cmd2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # own process group: the kill takes everything
    killed, lines, shards = wait_and_kill(proc, s2)
    print(f"     killed after {lines} journal lines, {shards} shards listed, "
          f"{len(glob.glob(os.path.join(s2, '*.tmp-spool')))} parked clip spool file(s) left (the rerun removes them)")
    check("prepare was SIGKILLed mid-run", killed,
          f"it exited with {proc.returncode} first (full run took {full_seconds:.1f} s); "
          "give it more or longer videos")
    check("the killed run left no report", not os.path.exists(os.path.join(s2, "prepare_report.json")))
    with open(os.path.join(s2, "prepare_journal.jsonl")) as f:
        committed = sum(1 for line in f if line.strip())
    check("the killed run left videos to do", committed < len(report["videos"]), committed)
    try:
        complete = load_json(os.path.join(s2, "index.json")).get("complete")
    except OSError:
        complete = None  # killed before the first shard
    check("the killed run left no complete index", complete is not True, complete)
    r = run(*cmd2)
    check("rerun after the kill exits 0", r.returncode == 0, r.stderr[-3000:])
    resumed = index_entries(s2)
    check("resumed index lists the same clips in the same order",
          [c["id"] for _, c in resumed] == [c["id"] for _, c in entries],
          ([c["id"] for _, c in resumed], [c["id"] for _, c in entries]))
    check("resumed index has the same checksums",
          [c["checksum"] for _, c in resumed] == [c["checksum"] for _, c in entries])
    check("resumed index entries equal (clips and shards)", resumed == entries)
    check("resumed index is complete", load_json(os.path.join(s2, "index.json")).get("complete") is True)
    check("no temp files remain", not temp_files(s2) and not temp_files(s1), temp_files(s2) + temp_files(s1))
    report2 = load_json(os.path.join(s2, "prepare_report.json"))
    check("resumed report has the same totals", report2["totals"] == report["totals"],
          (report2["totals"], report["totals"]))

    # 4. Bad command lines fail cleanly, naming the culprit.
    missing = os.path.join(tmp, "no_such_videos")
    r = run(*prepare_args([missing], os.path.join(tmp, "S3")))
    check("missing --input: exit 1 naming it", r.returncode == 1 and missing in r.stderr + r.stdout,
          (r.returncode, r.stderr))
    bad_cfg = os.path.join(tmp, "unknown_key.yaml")
    with open(config) as f, open(bad_cfg, "w") as g:
        g.write(f.read() + "\nbogus_setting: 3\n")
    r = run(*prepare_args([videos], os.path.join(tmp, "S4"), cfg=bad_cfg))
    msg = r.stderr + r.stdout
    check("unknown config key: exit 1 naming key and file",
          r.returncode == 1 and "bogus_setting" in msg and bad_cfg in msg, (r.returncode, r.stderr))
    check("failed runs wrote no dataset", not os.path.exists(os.path.join(tmp, "S4", "index.json")))

finish()
