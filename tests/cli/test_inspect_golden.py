#!/usr/bin/env python3
"""`hallo inspect --json` on every golden safetensors file matches its header exactly."""
import glob
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402

hallo, golden = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(golden, "*.safetensors")))
if not files:
    print(f"SKIP: no golden files in {golden}")
    sys.exit(77)

failures = 0
for path in files:
    meta, tensors = st.read(path)
    out = subprocess.run([hallo, "inspect", "--json", path], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"FAIL {path}: exit {out.returncode}: {out.stderr.strip()}")
        failures += 1
        continue
    j = json.loads(out.stdout)
    want = [{"name": k, "dtype": tensors[k][0], "shape": tensors[k][1]} for k in sorted(tensors)]
    ok = (j["format"] == "safetensors" and j["tensors"] == want and j["metadata"] == meta
          and j["tensor_count"] == len(want) and j["total_bytes"] == sum(len(t[2]) for t in tensors.values()))
    if not ok:
        print(f"FAIL {path}: inspect output differs from the header")
        failures += 1
print(f"{len(files) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
