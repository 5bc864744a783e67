#!/usr/bin/env python3
"""`hallo eval` through the real binary on synthetic talking heads, with every network
in the file format users download:

- FID from a legacy torch pickle named pt_inception-2015-12-05-6726825d.pth, FVD from a
  TorchScript i3d_torchscript.pt (StyleGAN-V's interface) and from a VideoGPT-style
  state dict i3d_pretrained_400.pt, Sync from a legacy pickle syncnet_v2.model, CSIM
  from an ArcFace-shaped ONNX, E-FID from an expression ONNX (weights: the metric
  goldens' procedural rule, or seeded tiny ONNX models);
- `--metrics all` writes the JSON report and the Markdown table, every metric filled;
- a second run takes the real-set statistics from the cache and gives the same numbers;
- missing weights name the file and where upstream publishes it, the rest still runs;
- list files, unknown metrics and a non-video input are handled with clear errors.

usage: test_eval_cli.py HALLO REPO_ROOT GOLDEN_DIR   (exit 77 = skipped)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SYSTEM_PYTHON, check, finish, require, runner, skip  # noqa: E402


def main():
    hallo, repo, golden = (os.path.abspath(a) for a in sys.argv[1:4])
    require(["ffmpeg", "espeak-ng"], os.path.join(repo, "assets", "astronaut.png"))
    if not os.path.isfile(os.path.join(golden, "fid_inception.config.json")):
        skip("no metric goldens in " + golden)
    if subprocess.run([SYSTEM_PYTHON, "-c", "import torch, torch.onnx"], capture_output=True).returncode != 0:
        skip(SYSTEM_PYTHON + " has no torch")
    run = runner(hallo, 900)
    py = lambda *a: subprocess.run([SYSTEM_PYTHON, *a], capture_output=True, text=True, timeout=600)  # noqa: E731
    tmp = tempfile.mkdtemp(prefix="hallo_eval_cli_")
    os.chdir(tmp)
    try:
        # Two real and two generated talking heads with the same names (synth_0000/0001).
        r = run("synth", "--out", "real", "--count", "2", "--seconds", "3", "--size", "256", "--seed", "3")
        check("synth real", r.returncode == 0, r.stderr[-1000:])
        r = run("synth", "--out", "gen", "--count", "2", "--seconds", "3", "--size", "256", "--seed", "4")
        check("synth generated", r.returncode == 0, r.stderr[-1000:])

        # Weights in the upstream formats.
        os.makedirs("w")
        os.makedirs("st")
        for name in ("fid_inception", "syncnet", "i3d"):
            r = run("golden", "--dir", golden, "--name", name, "--weights-out", f"st/{name}.safetensors")
            check(f"golden --weights-out {name}", r.returncode == 0, r.stderr[-500:])
        mdir = os.path.join(repo, "tests", "metrics")
        steps = [
            (os.path.join(mdir, "make_pickle_weights.py"), "st/fid_inception.safetensors",
             "w/pt_inception-2015-12-05-6726825d.pth", "legacy"),
            (os.path.join(mdir, "make_syncnet_pickle.py"), "st/syncnet.safetensors", "w/syncnet_v2.model"),
            (os.path.join(mdir, "make_i3d_torchscript.py"), "st/i3d.safetensors", "i3d_files"),
            (os.path.join(repo, "tests", "face", "make_tiny_arcface.py"), "export", "w/arcface.onnx"),
            (os.path.join(repo, "tests", "cli", "make_tiny_expression.py"), "w/expression.onnx"),
        ]
        for s in steps:
            r = py(*s)
            check("fixture " + os.path.basename(s[0]), r.returncode == 0, r.stderr[-1000:])
        shutil.copy("i3d_files/i3d_torchscript.pt", "w/i3d_torchscript.pt")

        # Everything, through the user's command.
        args = ["eval", "--generated", "gen", "--real", "real", "--metrics", "all", "--weights-dir", "w",
                "--cache-dir", "cache", "--out", "out/report.json"]
        r = run(*args)
        check("eval --metrics all exits 0", r.returncode == 0, r.stderr[-3000:])
        rep = json.load(open("out/report.json"))
        check("markdown table printed and written", "| synth_0000.mp4 |" in r.stdout and os.path.isfile("out/report.md"),
              r.stdout[-1500:])
        check("FVD detector is the TorchScript file", rep["settings"].get("fvd_detector") == "torchscript", rep["settings"])
        for m in ("fid", "fvd", "efid"):
            v = rep["set"].get(m, {}).get("value")
            check(f"{m} computed", isinstance(v, float) and v >= 0, rep["set"].get(m))
        check("nothing unavailable", not rep["unavailable"], rep["unavailable"])
        rows = rep["videos"]
        want = ("sync_c", "sync_d", "av_offset", "lipsync_corr", "lmd_mouth", "lmd_face", "psnr", "ssim", "csim")
        check("per-video rows have every metric", len(rows) == 2 and all(all(k in row for k in want) for row in rows),
              json.dumps(rows)[:2000])
        check("CSIM is a cosine", all(-1 <= row["csim"] <= 1 for row in rows), [row["csim"] for row in rows])
        check("real stats computed and cached", "cached to" in rep["set"]["fid"]["real_stats"], rep["set"]["fid"])

        r = run(*args)
        rep2 = json.load(open("out/report.json"))
        check("second run exits 0", r.returncode == 0, r.stderr[-2000:])
        check("second run reads the real-set cache",
              all(rep2["set"][m]["real_stats"].startswith("cache") for m in ("fid", "fvd", "efid")), rep2["set"])
        check("second run gives the same numbers",
              all(rep2["set"][m]["value"] == rep["set"][m]["value"] for m in ("fid", "fvd", "efid")) and
              [x["sync_c"] for x in rep2["videos"]] == [x["sync_c"] for x in rows], (rep["set"], rep2["set"]))

        # FVD from a VideoGPT-style state dict (torch zip pickle), listed in a .txt file.
        os.makedirs("w2")
        shutil.copy("i3d_files/i3d_state_dict.pt", "w2/i3d_pretrained_400.pt")
        with open("gen.txt", "w") as f:
            f.write("# generated clips\ngen/synth_0000.mp4\ngen/synth_0001.mp4\n")
        r = run("eval", "--generated", "gen.txt", "--real", "real", "--metrics", "fvd", "--weights-dir", "w2",
                "--no-cache", "--fvd-protocol", "clips16", "--out", "out/fvd.json")
        rep3 = json.load(open("out/fvd.json")) if os.path.isfile("out/fvd.json") else {}
        check("FVD from i3d_pretrained_400.pt (clips16, list file)",
              r.returncode == 0 and rep3.get("settings", {}).get("fvd_detector") == "state-dict" and
              isinstance(rep3["set"]["fvd"].get("value"), float), r.stderr[-2000:])

        # Missing weights: named with their source, the weight-free metrics still run.
        os.makedirs("empty")
        r = run("eval", "--generated", "gen", "--real", "real", "--metrics", "fid,sync,psnr", "--weights-dir", "empty")
        check("missing weights: exit 0 with the rest computed", r.returncode == 0 and "PSNR" in r.stdout, r.stderr[-1500:])
        check("missing FID weights named with their source",
              "pt_inception-2015-12-05-6726825d.pth" in r.stdout and "github.com/mseitzer/pytorch-fid" in r.stdout,
              r.stdout[-1500:])
        check("missing SyncNet weights named", "syncnet_v2.model" in r.stdout, r.stdout[-1500:])

        # Errors.
        with open("notvideo.mp4", "w") as f:
            f.write("not a video\n")
        r = run("eval", "--generated", "notvideo.mp4", "--metrics", "lipsync")
        check("a non-video input is named", r.returncode != 0 and "notvideo.mp4" in r.stderr, r.stderr[-800:])
        r = run("eval", "--generated", "gen", "--metrics", "fid,bogus")
        check("an unknown metric is named", r.returncode != 0 and "bogus" in r.stderr, r.stderr[-800:])
        r = run("eval", "--generated", "missing_dir", "--metrics", "lipsync")
        check("a missing input is named", r.returncode != 0 and "missing_dir" in r.stderr, r.stderr[-800:])
    finally:
        os.chdir("/")
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
