#!/usr/bin/env python3
"""`hallo train` with several processes (c10d, Gloo on CPU), through the real binary:

- `--nproc 2` trains tiny stage 1: one log line per step (rank 0 writes), ranks'
  stderr prefixed, a final model folder;
- the torchrun environment by hand (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
  MASTER_PORT on two processes started separately) gives the same bits as `--nproc 2`,
  and so does joining torchrun's agent store (TORCHELASTIC_USE_AGENT_STORE) where python3
  has torch to serve one;
- SIGKILL of the whole 2-rank run after checkpoint 4, then `--resume auto`: the same
  weights and loss log as the uninterrupted 2-rank run;
- resume with another world size (1 process from the 2-rank checkpoint) works and
  says it is not bit-identical;
- ZeRO-1 (`solver.zero_stage=1`) gives the same bits as unsharded, writes one optimizer
  shard per rank, resumes sharded bit-exactly and unsharded in one process;
- ZeRO-2 (`solver.zero_stage=2`, gradients sharded too) gives the same bits, keeps the
  learnt bucket order in its checkpoints and resumes bit-exactly;
- killing one rank: the launcher exits non-zero within 60 s naming that rank.

usage: test_dist_cli.py HALLO REPO_ROOT   (exit 77 = skipped: a tool is missing)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, finish, require, runner, tiny_shards  # noqa: E402

hallo, repo = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
configs = os.path.join(repo, "configs")
require(("espeak-ng",), os.path.join(repo, "assets", "astronaut.png"))
run = runner(hallo, 900)


def log_of(run_dir):
    with open(os.path.join(run_dir, "scalars.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def losses(run_dir):
    return [(e["step"], e["loss"], e["grad_norm"]) for e in log_of(run_dir) if "loss" in e]


def weights(run_dir):
    return open(os.path.join(run_dir, "final", "net.trainable.safetensors"), "rb").read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


work = tempfile.mkdtemp(prefix="hallo_dist_cli_")
try:
    os.chdir(work)
    tiny_shards(run, configs)
    tiny1 = os.path.join(configs, "train", "tiny_stage1.yaml")
    common = ["train", "--config", tiny1, "--set", "data.shards=[shards]", "--set", "checkpointing_steps=4",
              "--set", "val.loss_steps=0", "--max-steps", "8"]

    # --- --nproc 2 ------------------------------------------------------------------------
    r = run(*common, "--nproc", "2", "--out", "dp")
    check("--nproc 2 trains", r.returncode == 0 and os.path.exists("dp/final/model.json"), r.stderr[-3000:])
    check("ranks' output is prefixed", "[rank 0]" in r.stderr and "[rank 1]" in r.stderr, r.stderr[-1500:])
    check("rank 1 of 2 joined", "rank 1 of 2" in r.stderr, r.stderr[-1500:])
    ld = losses("dp")
    check("one log line per step (rank 0 logs)", [s for s, _, _ in ld] == list(range(1, 9)), ld)
    decisions = [len(e["decisions"]) for e in log_of("dp") if "decisions" in e]
    check("dropout decisions of both ranks are logged", decisions == [2] * 8, decisions)

    # --- the torchrun environment, two processes started by hand ----------------------------
    port = free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), HALLO_THREADS="1")
        procs.append(subprocess.Popen([hallo, *common, "--out", "byhand"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
    errs = [p.communicate(timeout=600)[1] for p in procs]
    check("torchrun env: both ranks finish", all(p.returncode == 0 for p in procs), [e[-1500:] for e in errs])
    check("torchrun env: same bits as --nproc 2", os.path.exists("byhand/final") and weights("byhand") == weights("dp"))
    check("torchrun env: same loss log", losses("byhand") == ld)

    # --- torchrun's agent store ---------------------------------------------------------------
    # torchrun's agent serves the TCPStore at MASTER_PORT itself and tells its workers so
    # (TORCHELASTIC_USE_AGENT_STORE=True): rank 0 must join that store, not serve a second
    # one on the same port. torch's own TCPStore stands in for the agent where python3 has
    # torch (Debian's torchrun cannot start at all: 1.13's fails on Python 3.11, 2.6's asks
    # for libuv, which that build lacks).
    agent_py = ("import sys, time, datetime, torch.distributed as d\n"
                "a = ('127.0.0.1', int(sys.argv[1]), 1, True, datetime.timedelta(seconds=60))\n"
                "try:\n    s = d.TCPStore(*a, wait_for_workers=False, use_libuv=False)\n"
                "except TypeError:\n    s = d.TCPStore(*a, wait_for_workers=False)\n"
                "print('serving', flush=True)\ntime.sleep(900)\n")
    if subprocess.run([sys.executable, "-c", "import torch.distributed"], capture_output=True).returncode == 0:
        port = free_port()
        agent = subprocess.Popen([sys.executable, "-c", agent_py, str(port)], stdout=subprocess.PIPE, text=True)
        check("agent store: serving", agent.stdout.readline().strip() == "serving")
        procs = []
        for rank in range(2):
            env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port), HALLO_THREADS="1", TORCHELASTIC_USE_AGENT_STORE="True",
                       TORCHELASTIC_RESTART_COUNT="0")
            procs.append(subprocess.Popen([hallo, *common, "--out", "agent"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
        errs = [p.communicate(timeout=600)[1] for p in procs]
        agent.kill()
        agent.wait()
        check("agent store: both ranks join it and finish", all(p.returncode == 0 for p in procs),
              [e[-1500:] for e in errs])
        check("agent store: same bits as --nproc 2", os.path.exists("agent/final") and weights("agent") == weights("dp"))
    else:
        print("note: python3 has no torch; the torchrun agent-store launch is not checked")

    # --- SIGKILL of the whole run after checkpoint 4, then --resume auto ---------------------
    p = subprocess.Popen([hallo, *common, "--nproc", "2", "--out", "killed"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    marker = "killed/checkpoints/checkpoint-000004/checkpoint.json"
    deadline = time.time() + 600
    while not os.path.exists(marker) and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    check("killed after checkpoint 4, before the end", os.path.exists(marker) and not os.path.exists("killed/final"))
    r = run(*common, "--nproc", "2", "--out", "killed", "--resume", "auto")
    check("2-rank resume runs", r.returncode == 0 and "resumed from" in r.stderr, r.stderr[-2000:])
    check("2-rank resume is bit-exact", os.path.exists("killed/final") and weights("killed") == weights("dp"))
    check("2-rank resume: same loss log", losses("killed") == ld, (losses("killed")[:3], ld[:3]))

    # --- another world size ------------------------------------------------------------------
    shutil.copytree("dp/checkpoints/checkpoint-000004", "one_ckpt")
    r = run(*common, "--out", "one", "--resume", "one_ckpt")
    check("resume 2 ranks -> 1 process works, with a warning", r.returncode == 0 and "not bit-identical" in r.stderr,
          r.stderr[-2000:])
    check("resume 2 ranks -> 1 process: steps 5..8 logged", [s for s, _, _ in losses("one")] == [5, 6, 7, 8],
          losses("one"))

    # --- ZeRO-1: optimizer state sharded, the same bits; shards resume anywhere ---------------
    r = run(*common, "--nproc", "2", "--out", "zero", "--set", "solver.zero_stage=1")
    check("ZeRO-1 trains", r.returncode == 0, r.stderr[-2000:])
    check("ZeRO-1 equals unsharded (bits)", os.path.exists("zero/final") and weights("zero") == weights("dp"))
    ck = "zero/checkpoints/checkpoint-000004"
    check("ZeRO-1 checkpoint holds both shards", os.path.exists(f"{ck}/optimizer.safetensors") and
          os.path.exists(f"{ck}/optimizer.rank1.safetensors") and
          os.path.getsize(f"{ck}/optimizer.safetensors") < os.path.getsize("dp/checkpoints/checkpoint-000004/optimizer.safetensors"))
    r = run(*common, "--nproc", "2", "--out", "zero_resumed", "--resume", ck, "--set", "solver.zero_stage=1")
    check("ZeRO-1 resume (2 ranks) is bit-exact", r.returncode == 0 and weights("zero_resumed") == weights("dp"),
          r.stderr[-2000:])
    r = run(*common, "--out", "zero_one", "--resume", ck)
    check("a sharded checkpoint resumes unsharded in 1 process", r.returncode == 0, r.stderr[-2000:])

    # --- ZeRO-2: gradients sharded too, still the same bits -----------------------------------
    r = run(*common, "--nproc", "2", "--out", "zero2", "--set", "solver.zero_stage=2")
    check("ZeRO-2 trains", r.returncode == 0, r.stderr[-2000:])
    check("ZeRO-2 equals unsharded (bits)", os.path.exists("zero2/final") and weights("zero2") == weights("dp"))
    ck2 = "zero2/checkpoints/checkpoint-000004"
    with open(f"{ck2}/trainer_state.json") as f:
        order = json.load(f).get("bucket_order", [])
    check("ZeRO-2 checkpoint keeps the learnt bucket order (a permutation)",
          len(order) > 0 and sorted(order) == list(range(len(order))), order[:10])
    r = run(*common, "--nproc", "2", "--out", "zero2_resumed", "--resume", ck2, "--set", "solver.zero_stage=2")
    check("ZeRO-2 resume (2 ranks) is bit-exact", r.returncode == 0 and weights("zero2_resumed") == weights("dp"),
          r.stderr[-2000:])
    r = run(*common, "--nproc", "2", "--dry-run", "--set", "solver.zero_stage=2")
    check("--dry-run --nproc 2 ZeRO-2: gradients per rank are a share",
          r.returncode == 0 and "per rank, 2 ranks (data parallel, ZeRO-2)" in r.stdout and
          "solver.zero_stage 2)" in r.stdout, r.stdout[-1500:] + r.stderr[-500:])

    r = run(*common, "--nproc", "2", "--device", "cuda:0", "--out", "onegpu")
    check("--nproc 2 --device cuda:0: refused before launching (every rank on one GPU)",
          r.returncode == 1 and "every rank on one GPU" in r.stderr and not os.path.exists("onegpu"), r.stderr[-800:])
    r = run(*common, "--nproc", "2", "--dist-backend", "nccl", "--out", "nccl_cpu")
    check("--dist-backend nccl on CPU ranks: each rank names the problem, the run fails",
          r.returncode != 0 and "--dist-backend nccl" in r.stderr, r.stderr[-800:])

    r = run(*common, "--nproc", "2", "--dry-run", "--set", "solver.zero_stage=1")
    check("--dry-run --nproc 2: per-rank estimate with the sharded AdamW state",
          r.returncode == 0 and "per rank, 2 ranks (data parallel, ZeRO-1)" in r.stdout and "1/2 of" in r.stdout and
          "expected peak" in r.stdout and "GiB per rank (at most)" in r.stdout,
          r.stdout[-1500:] + r.stderr[-500:])

    # --- one rank killed: the run fails within 60 s and names it -------------------------------
    long = [a if a != "8" else "100000" for a in common]
    p = subprocess.Popen([hallo, *long, "--nproc", "2", "--out", "dies", "--set", "checkpointing_steps=0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        if os.path.exists("dies/scalars.jsonl") and len(log_of("dies")) >= 2:
            break
        time.sleep(0.1)
    victim = None
    for child in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split():
        with open(f"/proc/{child}/environ", "rb") as f:
            if b"RANK=1\0" in f.read().replace(b"LOCAL_RANK=1\0", b""):
                victim = int(child)
    check("found rank 1's process", victim is not None)
    t0 = time.time()
    if victim:
        os.kill(victim, signal.SIGKILL)
    try:
        err = p.communicate(timeout=90)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        err = p.communicate()[1]
    took = time.time() - t0
    check("killed rank: the launcher fails within 60 s", p.returncode not in (0, None) and took < 60, (p.returncode, took))
    check("killed rank: named with its signal", "rank 1 of 2 was killed by signal 9" in err, err[-2000:])
finally:
    os.chdir("/")
    shutil.rmtree(work, ignore_errors=True)

finish()
