#!/usr/bin/env python3
"""`hallo convert`: bit-exact round trips, options, and safe failure."""
import glob
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402

hallo, fixtures = sys.argv[1], sys.argv[2]
results = []


def check(name, cond, detail=""):
    results.append(cond)
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))


def run(*args):
    return subprocess.run([hallo, *args], capture_output=True, text=True)


with tempfile.TemporaryDirectory() as tmp:
    # 1. Every torch.save fixture converts to the tensors python wrote, bit for bit.
    for src in sorted(glob.glob(os.path.join(fixtures, "*.pth")) + glob.glob(os.path.join(fixtures, "*.ckpt"))):
        base = os.path.basename(src)
        if base.startswith("malicious"):
            continue
        out = os.path.join(tmp, base + ".safetensors")
        r = run("convert", src, out)
        if r.returncode != 0:
            check(f"convert {base}", False, r.stderr)
            continue
        _, got = st.read(out)
        _, want = st.read(src + ".expected.safetensors")
        check(f"convert {base} bit-exact", got == want, f"{sorted(got)} vs {sorted(want)}")
        # convert(convert(x)) == convert(x): safetensors -> safetensors is lossless too.
        out2 = os.path.join(tmp, base + ".again.safetensors")
        run("convert", out, out2)
        check(f"re-convert {base} bit-exact", st.read(out2)[1] == got)

    # 2. Scalars of nested checkpoints survive as metadata; --prefix selects and strips.
    ck = os.path.join(fixtures, "nested_ckpt.ckpt")
    out = os.path.join(tmp, "sd.safetensors")
    r = run("convert", ck, out, "--prefix", "state_dict.")
    meta, got = st.read(out)
    check("--prefix keeps and strips", r.returncode == 0 and sorted(got) == sorted(
        k[len("state_dict."):] for k in st.read(ck + ".expected.safetensors")[1] if k.startswith("state_dict.")), sorted(got))
    check("checkpoint scalars kept as metadata", meta.get("epoch") == "3" and meta.get("format") == "pt", meta)
    r = run("convert", ck, os.path.join(tmp, "none.safetensors"), "--prefix", "nope.")
    check("--prefix matching nothing fails", r.returncode == 1 and "nope." in r.stderr, r.stderr)

    out = os.path.join(tmp, "strip.safetensors")
    r = run("convert", ck, out, "--strip-prefix", "state_dict.")
    _, got = st.read(out)
    check("--strip-prefix keeps the rest", "conv_in.weight" in got and "optimizer.state.0.exp_avg" in got, sorted(got))

    # 3. --dtype casts floating tensors only.
    out = os.path.join(tmp, "f16.safetensors")
    r = run("convert", os.path.join(fixtures, "dtypes.pth"), out, "--dtype", "f16")
    _, got = st.read(out)
    check("--dtype f16 casts floats", r.returncode == 0 and all(got[k][0] == "F16" for k in ("f64", "f32", "bf16", "scalar")), got.keys())
    check("--dtype keeps integers", got["i64"][0] == "I64" and got["bool"][0] == "BOOL" and got["u8"][0] == "U8")
    out = os.path.join(tmp, "bf16.safetensors")
    run("convert", os.path.join(fixtures, "dtypes.pth"), out, "--dtype", "bf16")
    _, got = st.read(out)
    # bf16 is the top half of f32: the cast of the f32 fixture must round to nearest-even of those bits.
    import struct as s
    f32 = s.unpack("<6f", st.read(os.path.join(fixtures, "dtypes.pth.expected.safetensors"))[1]["f32"][2])
    bf = s.unpack("<6H", got["f32"][2])
    def to_bf16(x):
        u = s.unpack("<I", s.pack("<f", x))[0]
        return (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    check("--dtype bf16 rounds to nearest even", list(bf) == [to_bf16(x) for x in f32], (bf, f32))

    # 4. Failures: non-zero exit, the reason named, no output and no temp file left.
    for bad, needle in (("malicious_os_system.pth", "posix.system"), ("malicious_eval.pth", "builtins.eval"),
                        ("malicious_legacy.pth", "os.system")):
        out = os.path.join(tmp, "evil", "o.safetensors")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        r = run("convert", os.path.join(fixtures, bad), out)
        check(f"refuses {bad}", r.returncode == 1 and needle in r.stderr and bad in r.stderr, r.stderr)
        check(f"no output for {bad}", os.listdir(os.path.dirname(out)) == [], os.listdir(os.path.dirname(out)))
    check("nothing executed", not os.path.exists("/tmp/hallo_pwned"))

    keep = os.path.join(tmp, "keep.safetensors")
    with open(keep, "wb") as f:
        f.write(b"precious")
    r = run("convert", os.path.join(fixtures, "malicious_eval.pth"), keep)
    check("existing output untouched on failure", open(keep, "rb").read() == b"precious")
    r = run("convert", os.path.join(tmp, "missing.pth"), os.path.join(tmp, "m.safetensors"))
    check("missing input named", r.returncode == 1 and "missing.pth" in r.stderr and "no such file" in r.stderr, r.stderr)
    r = run("convert", os.path.join(fixtures, "views.pth"), os.path.join(tmp, "x.bin"))
    check("output extension checked", r.returncode == 1 and ".safetensors" in r.stderr, r.stderr)
    r = run("convert", "--dtype", "f8", os.path.join(fixtures, "views.pth"), os.path.join(tmp, "x.safetensors"))
    check("bad --dtype is a usage error", r.returncode == 2, r.returncode)
    r = run("inspect", "--help")
    check("inspect --help", r.returncode == 0 and "--json" in r.stdout)

passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if all(results) else 1)
