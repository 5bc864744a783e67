"""What the CLI end-to-end scripts share: skipping (exit 77) when a tool or asset is
missing, named checks with a summary, and running the `hallo` binary."""
import os
import shutil
import subprocess
import sys
import time

SYSTEM_PYTHON = "/usr/bin/python3"  # has h5py + numpy; the CMake Python may not
# ctest runs tests side by side: idle OpenMP threads must sleep, not spin, or they starve
# the other test's threads (an animate beside a training run: 212 s instead of 11.5 s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

results = []
timings = []  # (seconds, command) of every `hallo` run: finish() names the slowest


def skip(why):
    print("skip: " + why)
    sys.exit(77)


def require(tools, portrait):
    """Skips unless every tool is on PATH, the portrait exists and the system Python has h5py."""
    for tool in tools:
        if shutil.which(tool) is None:
            skip(tool + " is not installed")
    if not os.path.isfile(portrait):
        skip("no portrait at " + portrait)
    if subprocess.run([SYSTEM_PYTHON, "-c", "import h5py, numpy"], capture_output=True).returncode != 0:
        skip(SYSTEM_PYTHON + " has no h5py/numpy")


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    sys.stdout.flush()


def runner(hallo, default_timeout):
    """run(*args, timeout=...) -> CompletedProcess of `hallo args` with text output."""
    def run(*args, timeout=default_timeout):
        t0 = time.monotonic()
        try:
            return subprocess.run([hallo, *args], capture_output=True, text=True, timeout=timeout)
        finally:
            out = args[args.index("--out") + 1] if "--out" in args[:-1] else ""
            timings.append((time.monotonic() - t0, " ".join(a for a in (args[0], out) if a)))
    return run


def tiny_shards(run, configs):
    """4 synthetic talking heads -> ./shards (12 clips of 25 frames at 128 px, log-mel)."""
    r = run("synth", "--out", "videos", "--count", "4", "--seconds", "3", "--size", "256")
    check("synth", r.returncode == 0, r.stderr[-2000:])
    r = run("prepare", "--input", "videos", "--out", "shards", "--config",
            os.path.join(configs, "data", "tiny_logmel.yaml"), "--jobs", "2")
    check("prepare", r.returncode == 0, r.stderr[-2000:])


def finish():
    total = sum(t for t, _ in timings)
    slowest = ", ".join(f"{name} {t:.0f} s" for t, name in sorted(timings, reverse=True)[:16])
    print(f"{len(timings)} hallo runs took {total:.0f} s; slowest: {slowest}")
    print(f"{sum(results)}/{len(results)} checks passed")
    sys.exit(0 if all(results) else 1)
